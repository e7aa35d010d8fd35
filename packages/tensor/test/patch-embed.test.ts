// patchEmbed: CLIP's conv with stride = kernel against the direct float64 convolution, over
// CLIP-like and odd shapes, with and without bias, and bad input.
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { DTypeError, ReleasedError, ShapeError, patchEmbed, patchEmbedRef, tensor } from "../src/index.js";
import { FC, TOL, checkOp, randomValues, ready } from "./helpers.js";

beforeAll(async () => {
  await ready;
});

type Case = { B: number; C: number; H: number; W: number; P: number; D: number; bias: boolean };

async function check(c: Case, seed: number): Promise<void> {
  const { B, C, H, W, P, D, bias } = c;
  const pShape = [B, C, H, W] as const;
  const wShape = [D, C, P, P] as const;
  const inputs = [
    { shape: [...pShape], data: randomValues(B * C * H * W, seed) },
    { shape: [...wShape], data: randomValues(D * C * P * P, seed + 1, 0.2) },
    ...(bias ? [{ shape: [D], data: randomValues(D, seed + 2) }] : []),
  ];
  await checkOp({
    what: `patchEmbed pixels [${pShape}] weight [${wShape}]${bias ? " + bias" : ""}`,
    inputs,
    gpu: ([px, w, b]) => patchEmbed(px!, w!, b),
    ref: ([px, w, b]) => patchEmbedRef(px!, pShape, w!, wShape, b),
    tol: TOL.matmul,
    shape: [B, (H / P) * (W / P), D],
  });
}

describe("patchEmbed", () => {
  it("matches the direct convolution on CLIP-like shapes", async () => {
    for (const c of [
      { B: 2, C: 3, H: 32, W: 32, P: 8, D: 64, bias: true },
      { B: 2, C: 3, H: 32, W: 32, P: 16, D: 48, bias: true },
      { B: 1, C: 3, H: 28, W: 42, P: 14, D: 32, bias: false }, // P = 14 (ViT-L/14): scalar im2col rows
    ]) {
      await check(c, 11);
    }
  });

  it("matches the direct convolution on random odd shapes", async () => {
    const arb = fc.record({
      B: fc.integer({ min: 1, max: 3 }),
      C: fc.integer({ min: 1, max: 4 }),
      gh: fc.integer({ min: 1, max: 5 }),
      gw: fc.integer({ min: 1, max: 5 }),
      P: fc.constantFrom(1, 2, 3, 4, 5, 7, 8),
      D: fc.constantFrom(1, 3, 4, 5, 17, 33, 64),
      bias: fc.boolean(),
      seed: fc.integer(),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ B, C, gh, gw, P, D, bias, seed }) => check({ B, C, H: gh * P, W: gw * P, P, D, bias }, seed)),
      FC,
    );
  });

  it("rejects sizes not divisible by the patch, mismatched weights and bad dtypes", () => {
    const px = tensor(new Float32Array(2 * 3 * 30 * 32), [2, 3, 30, 32]);
    const w = tensor(new Float32Array(8 * 3 * 8 * 8), [8, 3, 8, 8]);
    const w2 = tensor(new Float32Array(8 * 2 * 8 * 8), [8, 2, 8, 8]);
    const ok = tensor(new Float32Array(2 * 3 * 32 * 32), [2, 3, 32, 32]);
    const b = tensor(new Float32Array(7));
    const pi = tensor(new Int32Array(2 * 3 * 32 * 32), [2, 3, 32, 32]);
    expect(() => patchEmbed(px, w)).toThrow(/patchEmbed: expected height and width divisible by the patch size 8, got 30x32 \(pixels=\[2, 3, 30, 32\], weight=\[8, 3, 8, 8\]\)/);
    expect(() => patchEmbed(ok, w2)).toThrow(/patchEmbed: expected weight of shape \[D, 3, 8, 8\], got \[8, 2, 8, 8\]/);
    expect(() => patchEmbed(ok, w, undefined, 4)).toThrow(ShapeError);
    expect(() => patchEmbed(ok, w, b)).toThrow(/patchEmbed: expected shape \[8\] for bias, got \[7\]/);
    expect(() => patchEmbed(pi, w)).toThrow(DTypeError);
    const flat = ok.reshape([6, 32, 32]);
    expect(() => patchEmbed(flat, w)).toThrow(/patchEmbed: expected rank 4 for pixels, got 3/);
    w.dispose();
    expect(() => patchEmbed(ok, w)).toThrow(ReleasedError);
    for (const t of [px, w2, ok, b, pi, flat]) t.dispose();
  });
});
