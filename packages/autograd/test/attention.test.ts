import { attentionRef, device, infoNCERef, patchEmbedRef, tensor, tidy } from "@llms-eye/tensor";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { Var, ag, backward } from "../src/index.js";
import { type GradCase, gradCheck, ready } from "./gradcheck.js";

beforeAll(async () => {
  await ready;
});

/** Attention gradients are long f32 dot products through exp: a little looser than the default. */
const ATTN_TOL = { abs: 5e-4, rel: 5e-3 };

function attentionCase(B: number, H: number, Tq: number, Tk: number, Dh: number, causal: boolean, mask?: number[], scale?: number): GradCase {
  const dims = { B, H, Tq, Tk, Dh };
  return {
    name: `attention ${JSON.stringify({ ...dims, causal, mask: !!mask, scale })}`,
    shapes: [[B, H, Tq, Dh], [B, H, Tk, Dh], [B, H, Tk, Dh]],
    gpu: ([q, k, v]) => {
      const m = mask ? tensor(mask, [B, Tk], "i32") : undefined;
      return ag.attention(q!, k!, v!, { causal, keyPaddingMask: m, scale });
    },
    ref: ([q, k, v]) => attentionRef(q!, k!, v!, dims, { causal, mask, scale }).out,
    tol: ATTN_TOL,
  };
}

describe("attention, infoNCE and patchEmbed gradients vs central differences of the float64 reference", () => {
  it("attention: causal and not, Tq < Tk, padding mask, Dh 1..16, custom scale", async () => {
    await gradCheck(attentionCase(1, 2, 5, 5, 4, true));
    await gradCheck(attentionCase(2, 1, 3, 7, 3, false, [1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 1, 0]));
    await gradCheck(attentionCase(1, 1, 4, 6, 1, true, undefined, 0.8));
    await gradCheck(attentionCase(1, 1, 3, 3, 16, false));
  });

  it("attention: random small shapes (fast-check)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 2 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 5 }),
        fc.constantFrom(1, 3, 4),
        fc.boolean(),
        fc.integer({ min: 1, max: 1000 }),
        async (B, T1, T2, Dh, causal, seed) => {
          const [Tq, Tk] = causal ? [Math.min(T1, T2), Math.max(T1, T2)] : [T1, T2];
          await gradCheck(attentionCase(B, 1, Tq, Tk, Dh, causal), seed);
        },
      ),
      { numRuns: 6, seed: 42 },
    );
  });

  it("infoNCE: both embeddings and the temperature", async () => {
    for (const [B, E] of [[4, 3], [1, 5], [6, 8]] as const) {
      await gradCheck({
        name: `infoNCE B=${B} E=${E}`,
        shapes: [[B, E], [B, E], [1]],
        gpu: ([img, txt, s]) => ag.infoNCE(img!, txt!, s!),
        ref: ([img, txt, s]) => [infoNCERef(img!, txt!, B, E, s![0]!).loss],
        tol: { abs: 2e-4, rel: 3e-3 },
      }, B);
    }
  });

  it("infoNCE: a temperature above the clamp gets no gradient (torch.clamp)", async () => {
    await gradCheck({
      name: "infoNCE clamped",
      shapes: [[3, 4], [3, 4], [1]],
      gpu: ([img, txt, s]) => ag.infoNCE(img!, txt!, s!, { maxLogScale: -6 }),
      ref: ([img, txt, s]) => [infoNCERef(img!, txt!, 3, 4, s![0]!, -6).loss],
    });
  });

  it("patchEmbed: pixels, weight and bias (and without bias)", async () => {
    const pShape = [2, 3, 4, 6] as const;
    const wShape = [5, 3, 2, 2] as const;
    await gradCheck({
      name: "patchEmbed",
      shapes: [[...pShape], [...wShape], [5]],
      gpu: ([x, w, b]) => ag.patchEmbed(x!, w!, b!),
      ref: ([x, w, b]) => patchEmbedRef(x!, pShape, w!, wShape, b!),
      tol: { abs: 5e-4, rel: 2e-3 },
    });
    const p1 = [1, 2, 3, 3] as const;
    const w1 = [4, 2, 3, 3] as const;
    await gradCheck({
      name: "patchEmbed one patch, no bias",
      shapes: [[...p1], [...w1]],
      gpu: ([x, w]) => ag.patchEmbed(x!, w!),
      ref: ([x, w]) => patchEmbedRef(x!, p1, w!, w1),
      tol: { abs: 5e-4, rel: 2e-3 },
    });
  });

  it("frozen inputs get no gradient; intermediates are released", async () => {
    const q = new Var(tensor(new Float32Array(24).map((_, i) => Math.sin(i)), [1, 2, 3, 4]).keep(), true);
    const kv = new Var(tensor(new Float32Array(24).map((_, i) => Math.cos(i)), [1, 2, 3, 4]).keep(), false);
    const step = () => tidy(() => backward(ag.sum(ag.attention(q, kv, kv, { causal: true }))));
    step();
    const before = device().stats().liveBytes;
    for (let i = 0; i < 5; i++) step();
    await device().sync();
    expect(device().stats().liveBytes).toBe(before);
    expect(kv.grad).toBeNull();
    expect(q.grad).not.toBeNull();
    q.dispose();
    kv.dispose();
  });
});
