// CLIPScore / RefCLIPScore on the hf-parity CLIP fixture (vocab 1024, no tokenizer files: a tiny
// character-level tokenizer stands in for CLIP BPE), against a float64 recomputation from the
// towers' own embeddings; and CLIP's 77-token truncation with end-of-text kept last.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { init, tensor, tidy } from "@llms-eye/tensor";
import { noGrad } from "@llms-eye/autograd";
import { CLIPModel } from "@llms-eye/models";
import { HF_PARITY } from "../../models/test/fixtures.js";
import { CLIPSCORE_PREFIX, clipScore, clipTokenRows } from "../src/metrics/clipscore.js";

const BOS = 1022, EOS = 1023;
const tok = { eosId: EOS, padId: 0, encode: (s: string): number[] => [BOS, ...[...s].map((c) => (c.codePointAt(0)! % 1000) + 1), EOS] };
let model: CLIPModel;

beforeAll(async () => {
  await init();
  model = await CLIPModel.fromPretrained(join(HF_PARITY, "clip"));
});
afterAll(() => model?.dispose());

const host = async (f: () => { value: { toArray(): Promise<unknown>; dispose(): void } }): Promise<Float32Array> => {
  const t = tidy(() => noGrad(() => f().value));
  const a = (await t.toArray()) as Float32Array;
  t.dispose();
  return a;
};
const unit = (a: Float32Array, i: number, E: number): number[] => {
  const r = Array.from(a.subarray(i * E, (i + 1) * E), Number);
  const n = Math.hypot(...r);
  return r.map((x) => x / n);
};
const cos = (a: number[], b: number[]): number => a.reduce((s, x, e) => s + x * b[e]!, 0);

describe("clipScore", () => {
  it("equals 2.5·max(cos, 0) and the harmonic mean with the best reference, recomputed in float64", async () => {
    const { imageSize: S } = model._cfg.vision;
    const n = 3;
    const pixels = Float32Array.from({ length: n * 3 * S * S }, (_, i) => Math.sin(i * 0.37) * 1.2);
    const candidates = ["a dog", "two cats on a sofa", "x".repeat(120)];
    const references = [["a dog running", "a puppy"], ["cats"], ["a long caption", "x".repeat(100)]];
    const got = await clipScore({ model, tokenizer: tok, pixels, candidates, references, batchSize: 2 });

    const E = model._cfg.projectionDim;
    const img = await host(() => model.getImageFeatures(tensor(pixels, [n, 3, S, S])));
    const text = async (ts: string[]): Promise<number[][]> => {
      const { ids, mask } = clipTokenRows(tok, ts, 77);
      const a = await host(() => model.getTextFeatures(ids, { attentionMask: mask }));
      return ts.map((_, i) => unit(a, i, E));
    };
    const cand = await text(candidates);
    const want = cand.map((c, i) => 2.5 * Math.max(cos(unit(img, i, E), c), 0));
    let k = 0;
    const refs = await text(references.flat());
    const wantRef = cand.map((c, i) => {
      const best = Math.max(0, ...references[i]!.map(() => cos(c, refs[k++]!)));
      return want[i]! + best > 0 ? (2 * want[i]! * best) / (want[i]! + best) : 0;
    });
    got.perImage.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-6));
    got.perImageRef!.forEach((v, i) => expect(Math.abs(v - wantRef[i]!)).toBeLessThan(1e-6));
    expect(Math.abs(got.clipScore - want.reduce((s, x) => s + x, 0) / n)).toBeLessThan(1e-6);
  }, 60_000);

  it("prefixes 'A photo depicts ', truncates to 77 tokens and keeps end-of-text last", () => {
    const { ids, mask } = clipTokenRows(tok, ["y".repeat(200), "ab"], 77);
    expect(ids[0]!.length).toBe(77);
    expect(ids[0]![76]).toBe(EOS);
    expect(ids[1]!.slice(0, 4 + CLIPSCORE_PREFIX.length)).toEqual(tok.encode(`${CLIPSCORE_PREFIX}ab`));
    expect(mask[1]!.filter((m) => m === 1).length).toBe(CLIPSCORE_PREFIX.length + 4);
  });
});
