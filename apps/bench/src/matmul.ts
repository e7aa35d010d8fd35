// matmul: C[M, N] = A[M, K] @ B[K, N], squares 256…2048 and GPT-2 shapes in every orientation
// training uses: the MLP's 1600x768x3072 (NN; transA: its weight gradient xᵀ @ dy; batched A
// [8, 200, 768] against a shared B), the LM head h[1600, 768] @ wte[50257, 768]ᵀ (transB; wte
// and the output exceed one storage binding, so the kernel chunks). Shape keys are M x K x N.
// On a software adapter the cpu variant's older tile kernel (matmul-cpu.ts) is timed beside the
// default one at the same shapes ("tile kernel" rows: before / after in one run).
// Work: 2·M·N·K flops. Validation: odd small shapes in full, then sampled rows of each
// timed shape against matmulRef.
import { device, matmul, matmulRef, matmulTuning, randnArray, tensor, type Tensor } from "@llms-eye/tensor";
import type { Family, OurCase, Preset } from "./bench.js";
import { compare, pickRows, sampleIndices, shapeKey } from "./harness.js";

/** batch: A is [batch, m / batch, k] against a shared B (a Linear on [B, T, D]). */
type Mm = { m: number; k: number; n: number; transB: boolean; transA?: boolean; batch?: number; note?: string; tile?: boolean };

const MAIN: Mm[] = [
  ...[256, 512, 1024, 2048].map((s) => ({ m: s, k: s, n: s, transB: false })),
  { m: 1600, k: 768, n: 3072, transB: false, note: "GPT-2 MLP" },
  { m: 768, k: 1600, n: 3072, transB: false, transA: true, note: "transA: MLP weight gradient xᵀ @ dy" },
  { m: 1600, k: 768, n: 3072, transB: false, batch: 8, note: "batched A [8, 200, 768] @ shared B" },
  { m: 1600, k: 768, n: 50257, transB: true, note: "transB: LM head h @ wteᵀ" },
];
const SHAPES: Record<Preset, Mm[]> = {
  full: [...MAIN, ...[MAIN[3]!, MAIN[4]!, MAIN[5]!, MAIN[7]!].map((c) => ({ ...c, tile: true, note: `tile kernel${c.note ? `: ${c.note}` : ""}` }))],
  quick: [],
  tiny: [
    { m: 33, k: 17, n: 45, transB: false },
    { m: 20, k: 16, n: 37, transB: true },
    { m: 21, k: 9, n: 13, transB: false, transA: true },
    { m: 24, k: 10, n: 7, transB: false, batch: 3, tile: true },
  ],
};
SHAPES.quick = SHAPES.full;

/** Runs `f` with the cpu variant's tile kernel when `tile`. */
function withKernel<T>(tile: boolean | undefined, f: () => T): T {
  const was = matmulTuning.cpuKernel;
  if (tile) matmulTuning.cpuKernel = "tile";
  try {
    return f();
  } finally {
    matmulTuning.cpuKernel = was;
  }
}

/** f32 dot products of K terms of O(1) values: error grows with K. */
const tolFor = (k: number) => ({ abs: 2e-5 * k, rel: 1e-4 });

/** The `a` and `b` operands' values and shapes for one case (seeded). */
function operands(c: Mm, seed: number) {
  const aShape = c.transA ? [c.k, c.m] : c.batch ? [c.batch, c.m / c.batch, c.k] : [c.m, c.k];
  const bShape = c.transB ? [c.n, c.k] : [c.k, c.n];
  return { aShape, bShape, a: randnArray(c.m * c.k, seed), b: randnArray(c.k * c.n, seed + 1) };
}

/** Runs our matmul on `c` and checks `rows` of the output (all rows when omitted). */
export async function checkMatmul(c: Mm, seed: number, rows?: number[], impl = matmul): Promise<void> {
  const o = operands(c, seed);
  const [ta, tb] = [tensor(o.a, o.aShape), tensor(o.b, o.bShape)];
  const out = withKernel(c.tile, () => impl(ta, tb, { transA: c.transA, transB: c.transB }));
  try {
    const got = await out.toArray();
    const rs = rows ?? [...Array(c.m).keys()];
    const want = matmulRef(rowsOfA(c, o.a, rs), [rs.length, c.k], o.b, o.bShape, { transB: c.transB });
    compare(`matmul ${shapeKey(c.m, c.k, c.n)}${c.transB ? " transB" : ""} rows [${rs.join(", ")}]`, pickRows(got, c.n, rs), want, tolFor(c.k));
  } finally {
    ta.dispose();
    tb.dispose();
    out.dispose();
  }
}

/** Rows `rs` of op(A) as an [rs.length, K] row-major array (A^T's rows are A's columns). */
function rowsOfA(c: Mm, a: Float32Array, rs: number[]): Float64Array {
  if (!c.transA) return pickRows(a, c.k, rs);
  const out = new Float64Array(rs.length * c.k);
  rs.forEach((r, i) => {
    for (let k = 0; k < c.k; k++) out[i * c.k + k] = a[k * c.m + r]!;
  });
  return out;
}

export function matmulCase(c: Mm, impl = matmul): OurCase {
  const run = (a: Tensor, b: Tensor): Tensor => withKernel(c.tile, () => impl(a, b, { transA: c.transA, transB: c.transB }));
  return {
    op: "matmul",
    shape: shapeKey(c.m, c.k, c.n),
    work: { flops: 2 * c.m * c.n * c.k },
    ...(c.note ? { note: c.note } : {}),
    // the tile kernel's rows compare our kernels; the peers ran at the same shape above
    ...(c.tile ? {} : { spec: { op: "matmul" as const, m: c.m, k: c.k, n: c.n, transB: c.transB, transA: c.transA ?? false } }),
    setup(keep) {
      const o = operands(c, 7);
      const a = keep(tensor(o.a, o.aShape));
      const b = keep(tensor(o.b, o.bShape));
      let host: typeof o | undefined = o;
      return {
        async validate() {
          const out = run(a, b);
          try {
            const got = await out.toArray();
            const rs = sampleIndices(c.m, 3);
            const want = matmulRef(rowsOfA(c, host!.a, rs), [rs.length, c.k], host!.b, host!.bShape, { transB: c.transB });
            compare(`matmul ${shapeKey(c.m, c.k, c.n)} rows [${rs.join(", ")}]`, pickRows(got, c.n, rs), want, tolFor(c.k));
          } finally {
            out.dispose();
            host = undefined; // the host copies can be large (wte: 154 MB)
          }
        },
        async step() {
          const out = run(a, b);
          await device().sync();
          out.dispose();
        },
      };
    },
  };
}

export const family: Family = {
  name: "matmul",
  async validate() {
    await checkMatmul({ m: 45, k: 65, n: 33, transB: false }, 1);
    await checkMatmul({ m: 31, k: 129, n: 17, transB: true }, 2);
  },
  cases: (preset) => SHAPES[preset].map((c) => matmulCase(c)),
};
