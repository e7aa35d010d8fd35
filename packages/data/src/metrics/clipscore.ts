// CLIPScore and RefCLIPScore (Hessel et al. 2021, as jmhessel/clipscore computes them): candidates
// prefixed "A photo depicts ", CLIP BPE truncated to the text tower's 77 positions (end-of-text
// kept last), image and text features L2-normalised; per image CLIP-S = w · max(cos(image,
// candidate), 0) with w = 2.5; RefCLIP-S = harmonic mean of CLIP-S and max(max over references of
// cos(candidate, reference), 0) (the paper's definition; references get the same prefix, as the
// repository's feature extractor does). Corpus values are the means of the per-image scores.
import type { CLIPModel, Tokenizer } from "@llms-eye/models";
import { tensor, tidy } from "@llms-eye/tensor";
import { noGrad } from "@llms-eye/autograd";
import { MetricsError } from "./coco-format.js";
import { npMean } from "./np-sum.js";

export const CLIPSCORE_PREFIX = "A photo depicts ";
export const CLIPSCORE_W = 2.5;

export interface ClipScoreOptions {
  model: CLIPModel;
  tokenizer: Pick<Tokenizer, "encode" | "eosId" | "padId">;
  /** Preprocessed pixel_values: one (n, 3, H, W) batch, or image i as (3, H, W). */
  pixels: Float32Array | ((i: number) => Float32Array | Promise<Float32Array>);
  candidates: readonly string[];
  /** Reference captions per image; gives RefCLIPScore. */
  references?: readonly (readonly string[])[];
  batchSize?: number;
  prefix?: string;
  w?: number;
}

export interface ClipScoreResult {
  clipScore: number;
  perImage: number[];
  refClipScore?: number;
  perImageRef?: number[];
}

/** Token rows for CLIP: prefix + text, truncated to maxT with end-of-text last, padded with padId. */
export function clipTokenRows(tok: ClipScoreOptions["tokenizer"], texts: readonly string[], maxT: number, prefix = CLIPSCORE_PREFIX): { ids: number[][]; mask: number[][] } {
  const rows = texts.map((t) => {
    const ids = tok.encode(prefix + t).slice(0, maxT);
    ids[ids.length - 1] = tok.eosId;
    return ids;
  });
  const T = Math.max(...rows.map((r) => r.length));
  return {
    ids: rows.map((r) => [...r, ...new Array<number>(T - r.length).fill(tok.padId)]),
    mask: rows.map((r) => [...new Array<number>(r.length).fill(1), ...new Array<number>(T - r.length).fill(0)]),
  };
}

/** L2-normalised feature rows (float64) from a (B, E) host array. */
function unitRows(a: Float32Array, B: number): Float64Array[] {
  const E = a.length / B;
  return Array.from({ length: B }, (_, b) => {
    const row = Float64Array.from(a.subarray(b * E, (b + 1) * E));
    const n = Math.sqrt(row.reduce((s, x) => s + x * x, 0));
    return row.map((x) => (n > 0 ? x / n : 0));
  });
}
const cos = (a: Float64Array, b: Float64Array): number => a.reduce((s, x, e) => s + x * b[e]!, 0);

/** Normalised text features of CLIP's text tower, batch by batch. */
export async function clipTextFeatures(opts: Pick<ClipScoreOptions, "model" | "tokenizer" | "batchSize" | "prefix">, texts: readonly string[]): Promise<Float64Array[]> {
  const { model, tokenizer, batchSize = 64, prefix = CLIPSCORE_PREFIX } = opts;
  const out: Float64Array[] = [];
  for (let s = 0; s < texts.length; s += batchSize) {
    const chunk = texts.slice(s, s + batchSize);
    const { ids, mask } = clipTokenRows(tokenizer, chunk, model._cfg.text.maxPositionEmbeddings, prefix);
    const feats = tidy(() => noGrad(() => model.getTextFeatures(ids, { attentionMask: mask }).value));
    const host = (await feats.toArray()) as Float32Array;
    feats.dispose();
    out.push(...unitRows(host, chunk.length));
  }
  return out;
}

/** Normalised image features of CLIP's vision tower, batch by batch. */
export async function clipImageFeatures(model: CLIPModel, pixels: ClipScoreOptions["pixels"], n: number, batchSize = 64): Promise<Float64Array[]> {
  const { imageSize: S, numChannels: C } = model._cfg.vision;
  const per = C * S * S;
  if (pixels instanceof Float32Array && pixels.length !== n * per) {
    throw new MetricsError(`clipscore: expected pixels of ${n} × ${C} × ${S} × ${S} = ${n * per} floats (one image per candidate), got ${pixels.length}`);
  }
  const out: Float64Array[] = [];
  for (let s = 0; s < n; s += batchSize) {
    const B = Math.min(batchSize, n - s);
    let batch: Float32Array;
    if (pixels instanceof Float32Array) batch = pixels.subarray(s * per, (s + B) * per);
    else {
      batch = new Float32Array(B * per);
      for (let b = 0; b < B; b++) {
        const im = await pixels(s + b);
        if (im.length !== per) throw new MetricsError(`clipscore: expected pixels(${s + b}) of ${C} × ${S} × ${S} = ${per} floats, got ${im.length}`);
        batch.set(im, b * per);
      }
    }
    const feats = tidy(() => noGrad(() => model.getImageFeatures(tensor(batch, [B, C, S, S])).value));
    const host = (await feats.toArray()) as Float32Array;
    feats.dispose();
    out.push(...unitRows(host, B));
  }
  return out;
}

/** CLIPScore (and RefCLIPScore when references are given), per image and mean. */
export async function clipScore(opts: ClipScoreOptions): Promise<ClipScoreResult> {
  const { candidates, references, w = CLIPSCORE_W, batchSize = 64 } = opts;
  const n = candidates.length;
  if (n === 0) throw new MetricsError("clipscore: expected at least one candidate caption, got none");
  if (references && references.length !== n) throw new MetricsError(`clipscore: expected one reference list per candidate (${n}), got ${references.length}`);
  const img = await clipImageFeatures(opts.model, opts.pixels, n, batchSize);
  const cand = await clipTextFeatures(opts, candidates);
  const perImage = cand.map((c, i) => w * Math.max(cos(img[i]!, c), 0));
  const result: ClipScoreResult = { clipScore: npMean(perImage), perImage };
  if (references) {
    const empty = references.findIndex((r) => r.length === 0);
    if (empty >= 0) throw new MetricsError(`clipscore: image ${empty} has no reference captions; RefCLIPScore needs at least one`);
    const refs = await clipTextFeatures(opts, references.flat());
    let k = 0;
    const perImageRef = cand.map((c, i) => {
      let best = -Infinity;
      for (let r = 0; r < references[i]!.length; r++) best = Math.max(best, cos(c, refs[k++]!));
      const textSim = Math.max(best, 0);
      const cs = perImage[i]!;
      return cs + textSim > 0 ? (2 * cs * textSim) / (cs + textSim) : 0;
    });
    result.refClipScore = npMean(perImageRef);
    result.perImageRef = perImageRef;
  }
  return result;
}
