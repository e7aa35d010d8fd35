import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { DTypeError, LimitError, ReleasedError, ShapeError, attention, dispose, matmul, softmax, tensor, type Tensor } from "../src/index.js";
import { attentionRef } from "../src/ops/attention.js";
import { FC, TOL, assertClose, dimArb, randomValues, readRange, ready } from "./helpers.js";

beforeAll(async () => {
  await ready;
});

interface Case {
  B: number;
  H: number;
  Tq: number;
  Tk: number;
  Dh: number;
  causal?: boolean;
  /** [B, Tk] of 0/1, or undefined */
  mask?: number[];
  scale?: number;
  seed?: number;
}

/** attention on f32-rounded random inputs vs the float64 reference: out and lse. */
async function check(c: Case): Promise<void> {
  const { B, H, Tq, Tk, Dh } = c;
  const seed = c.seed ?? 1;
  const qa = Float32Array.from(randomValues(B * H * Tq * Dh, seed, 2));
  const ka = Float32Array.from(randomValues(B * H * Tk * Dh, seed + 1, 2));
  const va = Float32Array.from(randomValues(B * H * Tk * Dh, seed + 2, 1));
  const q = tensor(qa, [B, H, Tq, Dh]);
  const k = tensor(ka, [B, H, Tk, Dh]);
  const v = tensor(va, [B, H, Tk, Dh]);
  const mask = c.mask ? tensor(c.mask, [B, Tk], "i32") : undefined;
  const { out, lse } = attention(q, k, v, { causal: c.causal, keyPaddingMask: mask, scale: c.scale });
  try {
    expect(out.shape).toEqual([B, H, Tq, Dh]);
    expect(lse.shape).toEqual([B, H, Tq]);
    const want = attentionRef(qa, ka, va, { B, H, Tq, Tk, Dh }, { causal: c.causal, mask: c.mask, scale: c.scale });
    const what = JSON.stringify({ ...c, mask: c.mask ? "yes" : "no" });
    assertClose(await out.toArray(), want.out, TOL.matmul, `${what} out`);
    assertClose(await lse.toArray(), want.lse, TOL.matmul, `${what} lse`);
  } finally {
    dispose(q, k, v, mask, out, lse);
  }
}

const maskOf = (B: number, Tk: number, seed: number, fullyMaskedBatch = -1): number[] =>
  Array.from(randomValues(B * Tk, seed), (r, i) => (Math.floor(i / Tk) === fullyMaskedBatch ? 0 : r > -0.6 ? 1 : 0));

describe("attention vs float64 (explicit softmax(q kᵀ·scale + mask) v)", () => {
  it("q, k, v above one storage binding run in chunks of whole heads (and a 2-D grid)", async () => {
    const [B, H, T, Dh] = [1, 131100, 4, 64]; // 33.56M elements = 134 MB each
    const n = B * H * T * Dh;
    const hashed = (mul: number): Float32Array => {
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = (Math.imul(i, mul) >>> 21) / 1024 - 1;
      return a;
    };
    const [qa, ka, va] = [hashed(0x9e3779b1), hashed(0x85ebca6b), hashed(0xc2b2ae35)];
    const [q, k, v] = [qa, ka, va].map((a) => tensor(a, [B, H, T, Dh], "f32")) as [Tensor, Tensor, Tensor];
    expect(() => q.binding("test")).toThrow(LimitError);
    const { out, lse } = attention(q, k, v, { causal: true });
    try {
      // heads around the chunk edge (131071 heads per chunk) and the last ones
      for (const h0 of [131060, H - 8]) {
        const hs = 16 > H - h0 ? H - h0 : 16;
        const span = (a: Float32Array): Float32Array => a.subarray(h0 * T * Dh, (h0 + hs) * T * Dh);
        const want = attentionRef(span(qa), span(ka), span(va), { B: 1, H: hs, Tq: T, Tk: T, Dh }, { causal: true });
        assertClose(await readRange(out, h0 * T * Dh, hs * T * Dh), want.out, TOL.matmul, `out heads ${h0}..`);
        assertClose(await readRange(lse, h0 * T, hs * T), want.lse, TOL.matmul, `lse heads ${h0}..`);
      }
    } finally {
      dispose(q, k, v, out, lse);
    }
  });

  it("random shapes, causal or not, padding masks", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 2 }),
        fc.integer({ min: 1, max: 3 }),
        dimArb(70),
        dimArb(70),
        fc.constantFrom(1, 3, 4, 12, 16, 64),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 1, max: 1 << 30 }),
        async (B, H, T1, T2, Dh, causal, masked, seed) => {
          const [Tq, Tk] = causal ? [Math.min(T1, T2), Math.max(T1, T2)] : [T1, T2];
          await check({ B, H, Tq, Tk, Dh, causal, mask: masked ? maskOf(B, Tk, seed) : undefined, seed });
        },
      ),
      { ...FC, numRuns: 20 },
    );
  });

  it("head dims 1, 3, 64, 80 and 128, with a custom scale", async () => {
    await check({ B: 1, H: 2, Tq: 9, Tk: 9, Dh: 1, causal: true });
    await check({ B: 2, H: 1, Tq: 5, Tk: 17, Dh: 3, mask: maskOf(2, 17, 3) });
    await check({ B: 1, H: 2, Tq: 33, Tk: 65, Dh: 64, scale: 0.3 });
    await check({ B: 2, H: 1, Tq: 20, Tk: 37, Dh: 80, causal: true, mask: maskOf(2, 37, 4) });
    await check({ B: 1, H: 2, Tq: 70, Tk: 70, Dh: 128, causal: true });
  });

  it("GPT-2 (B 8, H 12, T 64, causal) and CLIP (T 197 with padding, T 50) shapes", async () => {
    await check({ B: 8, H: 12, Tq: 64, Tk: 64, Dh: 64, causal: true });
    await check({ B: 2, H: 12, Tq: 197, Tk: 197, Dh: 64, mask: maskOf(2, 197, 5) });
    await check({ B: 2, H: 12, Tq: 50, Tk: 50, Dh: 64 });
  });

  it("a query whose keys are all masked gets zeros and lse = -inf", async () => {
    const [B, H, T, Dh] = [2, 2, 5, 4];
    const q = tensor(Float32Array.from(randomValues(B * H * T * Dh, 1)), [B, H, T, Dh]);
    const mask = tensor([0, 0, 0, 0, 0, 1, 0, 1, 1, 1], [B, T], "u32");
    const { out, lse } = attention(q, q, q, { keyPaddingMask: mask });
    const o = await out.toArray();
    const l = await lse.toArray();
    expect(Array.from(o.subarray(0, H * T * Dh)).every((x) => x === 0)).toBe(true);
    expect(Array.from(l.subarray(0, H * T)).every((x) => x === -Infinity)).toBe(true);
    expect(Array.from(l.subarray(H * T)).every(Number.isFinite)).toBe(true);
    dispose(q, mask, out, lse);
  });

  it("causal with Tq < Tk aligns queries to the end: one query = the last row of the full pass (KV cache)", async () => {
    const [H, T, Dh] = [3, 23, 16];
    const qa = Float32Array.from(randomValues(H * T * Dh, 9));
    const kv = tensor(Float32Array.from(randomValues(H * T * Dh, 10)), [1, H, T, Dh]);
    const full = attention(tensor(qa, [1, H, T, Dh]), kv, kv, { causal: true });
    const lastQ = new Float32Array(H * Dh);
    for (let h = 0; h < H; h++) lastQ.set(qa.subarray((h * T + T - 1) * Dh, (h * T + T) * Dh), h * Dh);
    const one = attention(tensor(lastQ, [1, H, 1, Dh]), kv, kv, { causal: true });
    const f = await full.out.toArray();
    const want = new Float32Array(H * Dh);
    for (let h = 0; h < H; h++) want.set(f.subarray((h * T + T - 1) * Dh, (h * T + T) * Dh), h * Dh);
    assertClose(await one.out.toArray(), want, TOL.matmul, "last query");
    dispose(kv, full, one);
  });

  it("equals the unfused composite softmax(q kᵀ) v built from matmul and softmax", async () => {
    const [B, H, Tq, Tk, Dh] = [2, 3, 29, 41, 64];
    const q = tensor(Float32Array.from(randomValues(B * H * Tq * Dh, 11)), [B, H, Tq, Dh]);
    const k = tensor(Float32Array.from(randomValues(B * H * Tk * Dh, 12)), [B, H, Tk, Dh]);
    const v = tensor(Float32Array.from(randomValues(B * H * Tk * Dh, 13)), [B, H, Tk, Dh]);
    const scores = matmul(q, k, { transB: true }); // (B, H, Tq, Tk)
    const p = softmax(scores);
    const composite = matmul(p, v); // (B, H, Tq, Dh)
    const fused = attention(q, k, v, { scale: 1 });
    assertClose(await fused.out.toArray(), await composite.toArray(), TOL.matmul, "fused vs composite");
    dispose(q, k, v, scores, p, composite, fused);
  });
});

describe("attention errors", () => {
  const t = (shape: number[], dtype: "f32" | "i32" | "u32" = "f32"): Tensor => tensor(new Array(shape.reduce((a, b) => a * b, 1)).fill(0), shape, dtype);

  it("rejects Dh > 128, mismatched shapes, bad masks and causal Tq > Tk, naming op and shapes", () => {
    const q = t([1, 2, 3, 8]);
    const k = t([1, 2, 5, 8]);
    expect(() => attention(t([1, 1, 2, 129]), t([1, 1, 2, 129]), t([1, 1, 2, 129]))).toThrow(
      /attention: expected head dim Dh <= 128 for q, got 129 \(q=\[1, 1, 2, 129\]/,
    );
    expect(() => attention(q, t([1, 3, 5, 8]), k)).toThrow(/attention: expected shape \[1, 2, Tk, 8\] for k, got \[1, 3, 5, 8\]/);
    expect(() => attention(q, k, t([1, 2, 4, 8]))).toThrow(/expected shape \[1, 2, 5, 8\] \(that of k\) for v, got \[1, 2, 4, 8\]/);
    expect(() => attention(q, k, k, { keyPaddingMask: t([1, 4], "u32") })).toThrow(/expected shape \[1, 5\] for keyPaddingMask, got \[1, 4\]/);
    expect(() => attention(q, k, k, { keyPaddingMask: t([1, 5]) })).toThrow(DTypeError);
    expect(() => attention(k, q, q, { causal: true })).toThrow(/expected Tq <= Tk for causal attention, got Tq 5 and Tk 3/);
    expect(() => attention(t([2, 3, 8]), k, k)).toThrow(ShapeError);
    k.dispose();
    expect(() => attention(q, k, k)).toThrow(ReleasedError);
    expect(() => attention(q, k, k)).toThrow(/attention: expected a live tensor for k/);
    q.dispose();
  });
});
