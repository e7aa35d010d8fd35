// Retrieval Recall@K (Karpathy-split style) from embedding matrices, on cosine similarity:
// image→text is a hit when any of the image's captions ranks in the top K, text→image when the
// caption's own image does. Ties count as misses: a target's rank is the number of other
// candidates (for image→text: captions of other images) scoring >= it, hit iff rank < K.
// Similarities are computed in blocks of images × all texts (no nI × nT matrix is kept).
import { MetricsError } from "./coco-format.js";

export interface RecallResult { i2t: Record<number, number>; t2i: Record<number, number> }

/** Rows of x (n, E) scaled to unit length, in float64 (zero rows stay zero). */
function normalizeRows(x: Float32Array, n: number, E: number): Float64Array {
  const out = new Float64Array(n * E);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let e = 0; e < E; e++) s += x[i * E + e]! ** 2;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let e = 0; e < E; e++) out[i * E + e] = x[i * E + e]! * inv;
  }
  return out;
}

/** Dot product of rows a[ai] and b[bi], float64 accumulation (4 lanes). */
function dot(a: Float64Array, ai: number, b: Float64Array, bi: number, E: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let e = 0;
  for (; e + 4 <= E; e += 4) {
    s0 += a[ai + e]! * b[bi + e]!;
    s1 += a[ai + e + 1]! * b[bi + e + 1]!;
    s2 += a[ai + e + 2]! * b[bi + e + 2]!;
    s3 += a[ai + e + 3]! * b[bi + e + 3]!;
  }
  for (; e < E; e++) s0 += a[ai + e]! * b[bi + e]!;
  return (s0 + s1) + (s2 + s3);
}

/**
 * Recall@K both ways. imageEmb (nI, E) and textEmb (nT, E) row-major; textToImage[t] = the image of
 * caption t. Values are fractions in [0, 1] (x100 for the usual percentages).
 */
export function retrievalRecall(imageEmb: Float32Array, textEmb: Float32Array, textToImage: Int32Array, ks: readonly number[] = [1, 5, 10]): RecallResult {
  const nT = textToImage.length;
  if (nT === 0 || textEmb.length % nT !== 0) throw new MetricsError(`retrieval: expected textEmb of nT × E floats with nT = textToImage.length = ${nT}, got ${textEmb.length} floats`);
  const E = textEmb.length / nT;
  if (E === 0 || imageEmb.length % E !== 0) throw new MetricsError(`retrieval: expected imageEmb of nI × E floats with E = ${E} (from textEmb), got ${imageEmb.length} floats`);
  const nI = imageEmb.length / E;
  const bad = textToImage.findIndex((i) => i < 0 || i >= nI);
  if (bad >= 0) throw new MetricsError(`retrieval: expected textToImage values in [0, ${nI}), got ${textToImage[bad]} at caption ${bad}`);
  const img = normalizeRows(imageEmb, nI, E);
  const txt = normalizeRows(textEmb, nT, E);
  const hasText = new Uint8Array(nI);
  for (const i of textToImage) hasText[i] = 1;
  const without = hasText.indexOf(0);
  if (without >= 0) throw new MetricsError(`retrieval: image ${without} has no caption in textToImage; every image needs at least one`);

  // text→image: the score of each caption's own image, then count images scoring >= it
  const own = new Float64Array(nT);
  for (let t = 0; t < nT; t++) own[t] = dot(img, textToImage[t]! * E, txt, t * E, E);
  const t2iRank = new Int32Array(nT);
  const i2tRank = new Int32Array(nI);
  const BLOCK = 32;
  const sims = new Float64Array(BLOCK * nT);
  for (let i0 = 0; i0 < nI; i0 += BLOCK) {
    const nb = Math.min(BLOCK, nI - i0);
    for (let t = 0; t < nT; t++) {
      const m = textToImage[t]!;
      const ot = own[t]!;
      for (let b = 0; b < nb; b++) {
        const s = dot(img, (i0 + b) * E, txt, t * E, E);
        sims[b * nT + t] = s;
        if (i0 + b !== m && s >= ot) t2iRank[t]!++;
      }
    }
    // image→text: best own caption, then other images' captions scoring >= it
    for (let b = 0; b < nb; b++) {
      const i = i0 + b;
      let best = -Infinity;
      for (let t = 0; t < nT; t++) if (textToImage[t] === i && sims[b * nT + t]! > best) best = sims[b * nT + t]!;
      let rank = 0;
      for (let t = 0; t < nT; t++) if (textToImage[t] !== i && sims[b * nT + t]! >= best) rank++;
      i2tRank[i] = rank;
    }
  }
  const recall = (ranks: Int32Array, k: number): number => ranks.reduce((n, r) => n + (r < k ? 1 : 0), 0) / ranks.length;
  const i2t: Record<number, number> = {};
  const t2i: Record<number, number> = {};
  for (const k of ks) { i2t[k] = recall(i2tRank, k); t2i[k] = recall(t2iRank, k); }
  return { i2t, t2i };
}
