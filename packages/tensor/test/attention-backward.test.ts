import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { LimitError, ShapeError, attention, device, attentionBackward, dispose, tensor } from "../src/index.js";
import { attentionRef } from "../src/ops/attention.js";
import { attentionBackwardRef } from "../src/ops/attention-backward.js";
import { FC, TOL, assertClose, dimArb, randomValues, ready } from "./helpers.js";

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
  mask?: number[];
  scale?: number;
  seed?: number;
}

const maskOf = (B: number, Tk: number, seed: number, fullyMaskedBatch = -1): number[] =>
  Array.from(randomValues(B * Tk, seed), (r, i) => (Math.floor(i / Tk) === fullyMaskedBatch ? 0 : r > -0.6 ? 1 : 0));

/** GPU forward + backward on f32-rounded inputs vs the analytic float64 backward. */
async function check(c: Case): Promise<void> {
  const { B, H, Tq, Tk, Dh } = c;
  const seed = c.seed ?? 1;
  const qa = Float32Array.from(randomValues(B * H * Tq * Dh, seed, 2));
  const ka = Float32Array.from(randomValues(B * H * Tk * Dh, seed + 1, 2));
  const va = Float32Array.from(randomValues(B * H * Tk * Dh, seed + 2, 1));
  const ga = Float32Array.from(randomValues(B * H * Tq * Dh, seed + 3, 1));
  const q = tensor(qa, [B, H, Tq, Dh]);
  const k = tensor(ka, [B, H, Tk, Dh]);
  const v = tensor(va, [B, H, Tk, Dh]);
  const dOut = tensor(ga, [B, H, Tq, Dh]);
  const mask = c.mask ? tensor(c.mask, [B, Tk], "i32") : undefined;
  const opts = { causal: c.causal, keyPaddingMask: mask, scale: c.scale };
  const { out, lse } = attention(q, k, v, opts);
  const { dq, dk, dv } = attentionBackward(q, k, v, out, lse, dOut, opts);
  try {
    expect(dq.shape).toEqual(q.shape);
    expect(dk.shape).toEqual(k.shape);
    expect(dv.shape).toEqual(v.shape);
    const want = attentionBackwardRef(qa, ka, va, ga, { B, H, Tq, Tk, Dh }, { causal: c.causal, mask: c.mask, scale: c.scale });
    const what = JSON.stringify({ ...c, mask: c.mask ? "yes" : "no" });
    assertClose(await dq.toArray(), want.dq, TOL.matmul, `${what} dq`);
    assertClose(await dk.toArray(), want.dk, TOL.matmul, `${what} dk`);
    assertClose(await dv.toArray(), want.dv, TOL.matmul, `${what} dv`);
  } finally {
    dispose(q, k, v, dOut, mask, out, lse, dq, dk, dv);
  }
}

describe("attentionBackward vs the float64 analytic backward", () => {
  it("the float64 analytic backward matches central differences of attentionRef", () => {
    const dims = { B: 2, H: 1, Tq: 3, Tk: 5, Dh: 3 };
    const mask = [1, 0, 1, 1, 1, 1, 1, 0, 1, 0];
    for (const causal of [false, true]) {
      const q = randomValues(2 * 3 * 3, 11);
      const k = randomValues(2 * 5 * 3, 12);
      const v = randomValues(2 * 5 * 3, 13);
      const g = randomValues(2 * 3 * 3, 14);
      const opts = { causal, mask, scale: 0.7 };
      const loss = (): number => attentionRef(q, k, v, dims, opts).out.reduce((s, o, i) => s + o * g[i]!, 0);
      const want = attentionBackwardRef(q, k, v, g, dims, opts);
      for (const [x, dx] of [[q, want.dq], [k, want.dk], [v, want.dv]] as const) {
        for (let i = 0; i < x.length; i++) {
          const keep = x[i]!;
          x[i] = keep + 1e-6;
          const up = loss();
          x[i] = keep - 1e-6;
          const down = loss();
          x[i] = keep;
          expect(Math.abs((up - down) / 2e-6 - dx[i]!)).toBeLessThan(1e-6);
        }
      }
    }
  });

  it("random shapes, causal or not, padding masks", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 2 }),
        fc.integer({ min: 1, max: 2 }),
        dimArb(70),
        dimArb(70),
        fc.constantFrom(1, 3, 5, 8, 33, 64), // DP variants 4, 8, 64 only: each cold pipeline compile costs seconds
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 1, max: 1 << 30 }),
        async (B, H, T1, T2, Dh, causal, masked, seed) => {
          const [Tq, Tk] = causal ? [Math.min(T1, T2), Math.max(T1, T2)] : [T1, T2];
          await check({ B, H, Tq, Tk, Dh, causal, mask: masked ? maskOf(B, Tk, seed) : undefined, seed });
        },
      ),
      { ...FC, numRuns: 12 },
    );
  });

  it("head dims 1..64, odd T, custom scale, causal with Tq < Tk, a fully masked batch", async () => {
    await check({ B: 1, H: 2, Tq: 9, Tk: 9, Dh: 1, causal: true });
    await check({ B: 2, H: 1, Tq: 5, Tk: 17, Dh: 3, mask: maskOf(2, 17, 3) });
    await check({ B: 1, H: 1, Tq: 7, Tk: 13, Dh: 7, causal: true, scale: 0.4 });
    await check({ B: 1, H: 2, Tq: 33, Tk: 65, Dh: 64, scale: 0.3 });
    await check({ B: 2, H: 1, Tq: 67, Tk: 67, Dh: 64, causal: true, mask: maskOf(2, 67, 4) });
    await check({ B: 2, H: 2, Tq: 5, Tk: 6, Dh: 4, mask: maskOf(2, 6, 5, 0) });
  });

  it("tensors above one storage binding run in chunks of whole heads (binding limit lowered to 64 KiB)", async () => {
    const dev = device();
    Object.defineProperty(dev, "maxBinding", { get: () => 65536, configurable: true });
    try {
      const probe = tensor(new Float32Array(40 * 19 * 64), [40 * 19 * 64]);
      expect(() => probe.binding("probe")).toThrow(LimitError);
      probe.dispose();
      // 40 heads of [19, 64] = 48640 floats per tensor: chunks of 13 heads, the last one short
      await check({ B: 2, H: 20, Tq: 19, Tk: 19, Dh: 64, causal: true, mask: maskOf(2, 19, 7) });
    } finally {
      delete (dev as unknown as Record<string, unknown>).maxBinding; // back to the prototype's getter
    }
    expect(dev.maxBinding).toBe(dev.limits.maxStorageBufferBindingSize);
  });

  it("rejects mismatched shapes and dtypes, naming the op", () => {
    const q = tensor(new Float32Array(2 * 3 * 4), [1, 2, 3, 4]);
    const lse = tensor(new Float32Array(6), [1, 2, 3]);
    const badLse = tensor(new Float32Array(6), [1, 2, 3, 1]);
    expect(() => attentionBackward(q, q, q, q, badLse, q)).toThrow(/attentionBackward: expected rank|attentionBackward: expected shape/);
    const shortG = tensor(new Float32Array(2 * 2 * 4), [1, 2, 2, 4]);
    expect(() => attentionBackward(q, q, q, q, lse, shortG)).toThrow(ShapeError);
    expect(() => attentionBackward(q, q, q, q, lse, shortG)).toThrow(/dOut/);
    dispose(q, lse, badLse, shortG);
  });
});
