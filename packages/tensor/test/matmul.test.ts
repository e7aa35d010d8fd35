// matmul: both variants against the float64 reference over random shapes (transposes,
// broadcast batches, bias + activation), the chunked paths (small forced binding limit, and
// one real tensor above 128 MiB), the 65535-workgroup split, and bad input.
import fc from "fast-check";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  DTypeError,
  ReleasedError,
  ShapeError,
  device,
  matmul,
  matmulRef,
  matmulTuning,
  planChunks,
  tensor,
  zeros,
  type MatmulVariant,
} from "../src/index.js";
import type { Activation } from "../src/ops/activation.js";
import { EDGE_DIMS, FC, TOL, assertClose, checkOp, dimArb, randomValues, ready } from "./helpers.js";

beforeAll(async () => {
  await ready;
  // compile every pipeline on tiny problems first: a first dispatch includes its shader's
  // compile time (seconds for the unrolled cpu kernel), which must not feed the recorder's
  // wait estimate through a large-cost batch
  // (31 rows: C rows of an odd width are padded to vec4 only from 32 rows on)
  const tiny = [
    [[32, 4], [4, 4], false],
    [[31, 4], [4, 3], false],
    [[4, 32], [4, 4], true],
    [[4, 31], [4, 3], true],
  ] as const;
  for (const [as, bs, transA] of tiny) {
    for (const variant of VARIANTS) {
      const out = matmul(zeros([...as]), zeros([...bs]), { transA, variant, bias: zeros([bs[1]]), activation: "gelu" });
      await out.toArray();
      out.dispose();
    }
  }
}, 300_000);
afterEach(() => {
  matmulTuning.maxBindingElems = 0;
  matmulTuning.splitKWorkgroups = 256;
  matmulTuning.cpuKernel = "auto";
  matmulTuning.maxTextureRows = 0;
});

const VARIANTS: MatmulVariant[] = ["cpu", "gpu"];

interface Case {
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  aBatch?: number[];
  bBatch?: number[];
  bias?: boolean;
  activation?: Activation;
}

function runCase(c: Case, variant: MatmulVariant, seed = 1): Promise<void> {
  const { M, N, K, transA = false, transB = false, aBatch = [], bBatch = [] } = c;
  const aShape = [...aBatch, ...(transA ? [K, M] : [M, K])];
  const bShape = [...bBatch, ...(transB ? [N, K] : [K, N])];
  const n = Math.max(aBatch.length, bBatch.length);
  const batch = Array.from({ length: n }, (_, i) => Math.max(aBatch[aBatch.length - n + i] ?? 1, bBatch[bBatch.length - n + i] ?? 1));
  const size = (s: number[]) => s.reduce((x, y) => x * y, 1);
  const inputs = [
    { shape: aShape, data: randomValues(size(aShape), seed) },
    { shape: bShape, data: randomValues(size(bShape), seed + 1) },
  ];
  if (c.bias) inputs.push({ shape: [N], data: randomValues(N, seed + 2) });
  return checkOp({
    what: `${variant} ${JSON.stringify(c)}`,
    inputs,
    gpu: ([a, b, bias]) => matmul(a!, b!, { transA, transB, bias, activation: c.activation, variant }),
    ref: ([a, b, bias]) => matmulRef(a!, aShape, b!, bShape, { transA, transB, bias, activation: c.activation }),
    tol: TOL.matmul,
    shape: [...batch, M, N],
  });
}

// odd sizes, tile edges +-1, transposes, broadcasts, epilogues
const CASES: Case[] = [
  { M: 1, N: 1, K: 1 },
  { M: 45, N: 65, K: 33 },
  { M: 64, N: 64, K: 64, bias: true, activation: "gelu" },
  { M: 63, N: 65, K: 129, transA: true },
  { M: 65, N: 63, K: 127, transB: true, bias: true },
  { M: 17, N: 31, K: 7, transA: true, transB: true, activation: "quickGelu" },
  { M: 7, N: 129, K: 16, aBatch: [3], bBatch: [3], activation: "relu" },
  { M: 5, N: 9, K: 13, aBatch: [2, 3], transB: true, bias: true },
  { M: 13, N: 4, K: 5, bBatch: [4], transA: true },
  { M: 3, N: 5, K: 8, aBatch: [2, 1], bBatch: [1, 3] },
  { M: 8, N: 8, K: 300, aBatch: [1, 2], bBatch: [3, 1], transA: true, transB: true },
  // the cpu tile kernel's four pipelines: vec4 or scalar A rows x vec4 or scalar C rows
  { M: 40, N: 37, K: 36, bias: true },
  { M: 33, N: 20, K: 12, transA: true, activation: "gelu" },
  // the cpu tex kernel's 4 rows a lane (256-row tiles) and a partial last tile, both C layouts
  { M: 300, N: 45, K: 130, bias: true },
  { M: 530, N: 36, K: 70, transA: true, transB: true, activation: "gelu" },
];

describe("matmul", () => {
  for (const variant of VARIANTS) {
    it(`${variant}: case table`, async () => {
      for (const c of CASES) await runCase(c, variant);
    });

    it(`${variant}: random shapes, transposes, batches and epilogues`, async () => {
      const caseArb = fc.record({
        M: dimArb(70),
        N: dimArb(70),
        K: dimArb(70),
        transA: fc.boolean(),
        transB: fc.boolean(),
        batch: fc.constantFrom("none", "both", "a", "b"),
        nb: fc.integer({ min: 2, max: 3 }),
        bias: fc.boolean(),
        activation: fc.constantFrom<Activation>("none", "gelu", "quickGelu", "relu"),
      });
      await fc.assert(
        fc.asyncProperty(caseArb, async (r) => {
          const aBatch = r.batch === "both" || r.batch === "a" ? [r.nb] : [];
          const bBatch = r.batch === "both" || r.batch === "b" ? [r.nb] : [];
          await runCase({ ...r, aBatch, bBatch }, variant, r.M * 7 + r.N);
        }),
        { ...FC, numRuns: 15 },
      );
    });

    it(`${variant}: chunks M, N, K and batch when operands exceed the binding limit`, async () => {
      // each of these forces a different split (rows of C, K with accumulation, B rows, batch)
      matmulTuning.maxBindingElems = 700;
      for (const c of [
        { M: 40, N: 33, K: 20, bias: true, activation: "gelu" as const },
        { M: 3, N: 5, K: 1000, bias: true, activation: "relu" as const },
        { M: 9, N: 200, K: 45, transB: true },
        { M: 30, N: 6, K: 250, transA: true, activation: "quickGelu" as const },
        { M: 4, N: 5, K: 6, aBatch: [50], bBatch: [50] },
        // cpu: C rows padded to a multiple of 4, then copied out (rows, K and batch split)
        { M: 36, N: 7, K: 130, aBatch: [2], bBatch: [2], transB: true, bias: true },
      ]) {
        await runCase(c, variant);
      }
    });
  }

  it("cpu: split-K (long K, few workgroups) in every orientation, alone and under K chunks", async () => {
    for (const c of [
      // LM head dX's shape, scaled: dlogits [M, V] @ wte [V, D]; K not a multiple of 64 or 4
      { M: 70, N: 64, K: 5003 },
      { M: 70, N: 64, K: 5003, transA: true, transB: true },
      // swapped orientation (M < 32): C written transposed
      { M: 5, N: 40, K: 1000, transB: true, bias: true, activation: "gelu" as const },
      // vec4 A rows (K % 4 == 0) and a grid of one workgroup
      { M: 8, N: 3, K: 4096, transA: false },
      // two chunks: the first K chunk writes C, the second adds to it
      { M: 3, N: 5, K: 1000, bias: true, activation: "relu" as const, limit: 700 },
    ]) {
      matmulTuning.maxBindingElems = c.limit ?? 0;
      await runCase(c, "cpu", c.K);
    }
    // the dispatch count falls from one per 64 of K to about one per chunk slice
    matmulTuning.maxBindingElems = 0;
    const count = async (splitK: number): Promise<number> => {
      matmulTuning.splitKWorkgroups = splitK;
      const d0 = device().recorder.dispatches;
      const out = matmul(zeros([70, 6400]), zeros([6400, 64]), { variant: "cpu" });
      await out.toArray();
      out.dispose();
      return device().recorder.dispatches - d0;
    };
    expect(await count(0)).toBe(2 + 100); // (2 zeros fills; A reaches the texture by a copy, no dispatch)
    expect(await count(256)).toBeLessThan(10);
  });

  it("cpu: each kernel forced (tile: the fallback past the texture limits; tex: every pack path, row blocks)", async () => {
    matmulTuning.cpuKernel = "tile";
    for (const c of [...CASES.slice(0, 8), ...CASES.slice(-4)]) await runCase(c, "cpu");
    await runCase({ M: 70, N: 64, K: 5003 }, "cpu");
    matmulTuning.cpuKernel = "tex";
    for (const c of CASES) await runCase(c, "cpu");
    await runCase({ M: 70, N: 64, K: 5003, transA: true }, "cpu");
    await fc.assert(
      fc.asyncProperty(fc.record({ M: dimArb(300), N: dimArb(70), K: dimArb(140), transA: fc.boolean(), transB: fc.boolean() }), (r) => runCase(r, "cpu", r.K)),
      { ...FC, numRuns: 8 },
    );
    // A copied as it is (contiguous, K % 64 == 0), packed by texels (K % 64 != 0), packed by rows (A^T)
    for (const c of [{ M: 280, N: 260, K: 128 }, { M: 280, N: 260, K: 70, bias: true }, { M: 280, N: 260, K: 70, transA: true }]) {
      matmulTuning.cpuKernel = "auto";
      await runCase(c, "cpu");
    }
    matmulTuning.cpuKernel = "tex";
    // stacked rows past the texture's height: rows cut into blocks, batches into groups
    matmulTuning.maxTextureRows = 300;
    await runCase({ M: 600, N: 40, K: 70, bias: true }, "cpu");
    await runCase({ M: 130, N: 9, K: 20, aBatch: [5], bBatch: [5], transB: true }, "cpu");
    await runCase({ M: 40, N: 64, K: 2003, transA: true }, "cpu");
  });

  it("plans chunks that fit the limit and the grid (GPT-2 LM head and its gradients)", () => {
    const limit = 128 * 2 ** 20 / 4 - 64;
    for (const g of [
      { M: 1600, N: 50257, K: 768, transA: false, transB: true }, // h @ wte^T
      { M: 50257, N: 768, K: 1600, transA: true, transB: false }, // dlogits^T @ h
      { M: 1600, N: 768, K: 50257, transA: false, transB: false }, // dlogits @ wte
    ]) {
      const ch = planChunks({ ...g, nb: 1, sa: 0, sb: 0 }, limit, { tm: 32, tn: 32 }, 65535);
      const { M, N, K } = g;
      const spans = [
        g.transA ? (ch.kc - 1) * M + ch.mc : (ch.mc - 1) * K + ch.kc,
        g.transB ? (ch.nc - 1) * K + ch.kc : (ch.kc - 1) * N + ch.nc,
        (ch.mc - 1) * N + ch.nc,
      ];
      for (const s of spans) expect(s).toBeLessThanOrEqual(limit);
      expect(Math.ceil(N / ch.nc) * Math.ceil(M / ch.mc) * Math.ceil(K / ch.kc)).toBeLessThan(16);
    }
    const b = planChunks({ M: 2, N: 2, K: 2, nb: 200000, sa: 4, sb: 4, transA: false, transB: false }, 1000, { tm: 8, tn: 8 }, 65535);
    expect(b.bc * 4).toBeLessThanOrEqual(1000);
    expect(b.bc).toBeLessThanOrEqual(65535);
  });

  it("multiplies operands larger than one storage binding (LM-head layout, B^T chunked)", async () => {
    // B = [N, K] with N*K*4 > 128 MiB (transB, like h @ wte^T); a few rows of A keep it cheap
    const dev = device();
    const K = 768;
    const N = Math.ceil(dev.maxBinding / 4 / K) + 1000;
    const M = 5;
    const a = randomValues(M * K, 3);
    const b = new Float32Array(N * K);
    for (let i = 0; i < b.length; i++) b[i] = ((i * 2654435761) % 2001) / 1000 - 1;
    const ta = tensor(Float32Array.from(a), [M, K]);
    const tb = tensor(b, [N, K]);
    const out = matmul(ta, tb, { transB: true });
    const got = await out.toArray();
    // reference on a sample of columns, including both sides of every chunk edge
    const limit = Math.floor(dev.maxBinding / 4) - dev.limits.minStorageBufferOffsetAlignment / 4;
    const { nc } = planChunks({ M, N, K, nb: 1, sa: 0, sb: 0, transA: false, transB: true }, limit, { tm: 32, tn: 32 }, 65535);
    expect(nc).toBeLessThan(N);
    const cols = [0, 1, 2, nc - 1, nc, nc + 1, 2 * nc - 1, 2 * nc, N - 2, N - 1].filter((c) => c < N);
    const sub = new Float32Array(cols.length * K);
    cols.forEach((c, i) => sub.set(b.subarray(c * K, (c + 1) * K), i * K));
    const want = matmulRef(Float32Array.from(a), [M, K], sub, [cols.length, K], { transB: true });
    const gotCols = new Float64Array(M * cols.length);
    for (let m = 0; m < M; m++) cols.forEach((c, i) => (gotCols[m * cols.length + i] = got[m * N + c]!));
    assertClose(gotCols, want, TOL.matmul, "big transB");
    for (const t of [ta, tb, out]) t.dispose();
  });

  it("splits K when only a K split fits (A^T rows above one binding)", async () => {
    // A stored [K, M] (transA) with K*M*4 > 128 MiB: dlogits^T @ h layout, tiny M, N
    const dev = device();
    const M = 64;
    const K = Math.ceil(dev.maxBinding / 4 / M) + 777;
    const N = 3;
    const a = new Float32Array(K * M);
    for (let i = 0; i < a.length; i++) a[i] = (((i * 40503) >>> 0) % 1999) / 999.5 - 1;
    const b = Float32Array.from(randomValues(K * N, 9));
    const ta = tensor(a, [K, M]);
    const tb = tensor(b, [K, N]);
    const out = matmul(ta, tb, { transA: true, activation: "relu" });
    const got = await out.toArray();
    const rows = [0, 31, 63];
    const sub = new Float32Array(K * rows.length);
    for (let k = 0; k < K; k++) rows.forEach((r, i) => (sub[k * rows.length + i] = a[k * M + r]!));
    const want = matmulRef(sub, [K, rows.length], b, [K, N], { transA: true, activation: "relu" });
    const gotRows = new Float64Array(rows.length * N);
    rows.forEach((r, i) => gotRows.set(Array.from(got.subarray(r * N, (r + 1) * N)), i * N));
    assertClose(gotRows, want, { abs: 2e-3, rel: 1e-4 }, "K-split"); // K ~ 524k terms of O(1) values
    for (const t of [ta, tb, out]) t.dispose();
  });

  it("splits batches above 65535 workgroups per dimension", async () => {
    const nb = 65535 + 7;
    const a = randomValues(nb * 2, 5);
    const b = randomValues(nb * 2, 6);
    const out = matmul(tensor(Float32Array.from(a), [nb, 1, 2]), tensor(Float32Array.from(b), [nb, 2, 1]));
    expect(out.shape).toEqual([nb, 1, 1]);
    assertClose(await out.toArray(), matmulRef(Float32Array.from(a), [nb, 1, 2], Float32Array.from(b), [nb, 2, 1]), TOL.matmul);
    out.dispose();
  });

  it("rejects bad input naming the op and both shapes", () => {
    const a = zeros([4, 5]);
    const b = zeros([6, 7]);
    const v = zeros([5]);
    const ids = zeros([5, 7], "i32");
    expect(() => matmul(a, b)).toThrow(ShapeError);
    expect(() => matmul(a, b)).toThrow(/matmul: .*K.* 5 and 6 .*a=\[4, 5\], b=\[6, 7\]/);
    expect(() => matmul(v, b)).toThrow(/matmul: expected rank >= 2 for a, got 1/);
    expect(() => matmul(zeros([2, 4, 5]), zeros([3, 5, 7]))).toThrow(/broadcastable batch.*a=\[2, 4, 5\], b=\[3, 5, 7\]/);
    expect(() => matmul(a, zeros([5, 7]), { bias: zeros([6]) })).toThrow(/expected shape \[7\] for bias, got \[6\].*a=\[4, 5\]/);
    expect(() => matmul(a, ids)).toThrow(DTypeError);
    expect(() => matmul(a, ids)).toThrow(/matmul: expected dtype f32 for b, got i32/);
    const gone = zeros([5, 7]);
    gone.dispose();
    expect(() => matmul(a, gone)).toThrow(ReleasedError);
    expect(EDGE_DIMS.length).toBeGreaterThan(0);
  });
});
