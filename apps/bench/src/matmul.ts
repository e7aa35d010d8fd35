// matmul: C[M, N] = A[M, K] @ B[K, N], squares 256…2048 and GPT-2 shapes: the MLP's
// 1600x768x3072 and the LM head h[1600, 768] @ wte[50257, 768]ᵀ (transB; wte and the
// output exceed one storage binding, so the kernel chunks). Shape keys are M x K x N.
// Work: 2·M·N·K flops. Validation: odd small shapes in full, then sampled rows of each
// timed shape against matmulRef.
import { device, matmul, matmulRef, randnArray, tensor } from "@llms-eye/tensor";
import type { Family, OurCase, Preset } from "./bench.js";
import { compare, pickRows, sampleIndices, shapeKey } from "./harness.js";

type Mm = { m: number; k: number; n: number; transB: boolean; note?: string };

const SHAPES: Record<Preset, Mm[]> = {
  full: [
    ...[256, 512, 1024, 2048].map((s) => ({ m: s, k: s, n: s, transB: false })),
    { m: 1600, k: 768, n: 3072, transB: false, note: "GPT-2 MLP" },
    { m: 1600, k: 768, n: 50257, transB: true, note: "transB: LM head h @ wteᵀ" },
  ],
  quick: [],
  tiny: [
    { m: 33, k: 17, n: 45, transB: false },
    { m: 20, k: 16, n: 37, transB: true },
  ],
};
SHAPES.quick = SHAPES.full;

/** f32 dot products of K terms of O(1) values: error grows with K. */
const tolFor = (k: number) => ({ abs: 2e-5 * k, rel: 1e-4 });

/** The `a` and `b` operands' values and shapes for one case (seeded). */
function operands(c: Mm, seed: number) {
  const aShape = [c.m, c.k];
  const bShape = c.transB ? [c.n, c.k] : [c.k, c.n];
  return { aShape, bShape, a: randnArray(c.m * c.k, seed), b: randnArray(c.k * c.n, seed + 1) };
}

/** Runs our matmul on `c` and checks `rows` of the output (all rows when omitted). */
export async function checkMatmul(c: Mm, seed: number, rows?: number[], impl = matmul): Promise<void> {
  const o = operands(c, seed);
  const [ta, tb] = [tensor(o.a, o.aShape), tensor(o.b, o.bShape)];
  const out = impl(ta, tb, { transB: c.transB });
  try {
    const got = await out.toArray();
    const rs = rows ?? [...Array(c.m).keys()];
    const want = matmulRef(pickRows(o.a, c.k, rs), [rs.length, c.k], o.b, o.bShape, { transB: c.transB });
    compare(`matmul ${shapeKey(c.m, c.k, c.n)}${c.transB ? " transB" : ""} rows [${rs.join(", ")}]`, pickRows(got, c.n, rs), want, tolFor(c.k));
  } finally {
    ta.dispose();
    tb.dispose();
    out.dispose();
  }
}

export function matmulCase(c: Mm, impl = matmul): OurCase {
  return {
    op: "matmul",
    shape: shapeKey(c.m, c.k, c.n),
    work: { flops: 2 * c.m * c.n * c.k },
    ...(c.note ? { note: c.note } : {}),
    spec: { op: "matmul", ...c },
    setup(keep) {
      const o = operands(c, 7);
      const a = keep(tensor(o.a, o.aShape));
      const b = keep(tensor(o.b, o.bShape));
      let host: typeof o | undefined = o;
      return {
        async validate() {
          const out = impl(a, b, { transB: c.transB });
          try {
            const got = await out.toArray();
            const rs = sampleIndices(c.m, 3);
            const want = matmulRef(pickRows(host!.a, c.k, rs), [rs.length, c.k], host!.b, host!.bShape, { transB: c.transB });
            compare(`matmul ${shapeKey(c.m, c.k, c.n)} rows [${rs.join(", ")}]`, pickRows(got, c.n, rs), want, tolFor(c.k));
          } finally {
            out.dispose();
            host = undefined; // the host copies can be large (wte: 154 MB)
          }
        },
        async step() {
          const out = impl(a, b, { transB: c.transB });
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
