// CIDEr-D as pycocoevalcap's Cider (n = 4, sigma = 6): document frequency of an n-gram = number of
// images whose references contain it (evaluated references only); vectors of count x
// (ln #images - ln max(1, df)); per order, sum of min(hyp, ref) x ref over the candidate's
// n-grams divided by the two norms (when both are non-zero), times exp(-delta^2 / (2 sigma^2))
// with delta the difference in bigram counts; mean over orders, mean over references, x10.
import { countNgrams, splitWords } from "./bleu.js";
import { npMean } from "./np-sum.js";

export const CIDER_N = 4;
export const CIDER_SIGMA = 6;

interface Vec { vec: Map<string, number>[]; norm: number[]; length: number }

export interface CiderResult { corpus: number; perImage: number[]; logNumImages: number }

export function cider(candidates: readonly string[], references: readonly (readonly string[])[], n = CIDER_N, sigma = CIDER_SIGMA): CiderResult {
  const cook = (s: string): Map<string, number>[] => countNgrams(splitWords(s), n);
  const crefs = references.map((refs) => refs.map(cook));
  const df = new Map<string, number>();
  for (const refs of crefs) {
    const seen = new Set<string>();
    for (const r of refs) for (const order of r) for (const g of order.keys()) seen.add(g);
    for (const g of seen) df.set(g, (df.get(g) ?? 0) + 1);
  }
  const refLen = Math.log(crefs.length);
  const toVec = (counts: Map<string, number>[]): Vec => {
    const vec = counts.map(() => new Map<string, number>());
    const norm = new Array<number>(n).fill(0);
    let length = 0;
    counts.forEach((order, k) => {
      for (const [g, tf] of order) {
        const v = tf * (refLen - Math.log(Math.max(1, df.get(g) ?? 0)));
        vec[k]!.set(g, v);
        norm[k]! += v * v;
        if (k === 1) length += tf;
      }
    });
    return { vec, norm: norm.map(Math.sqrt), length };
  };
  const perImage = candidates.map((cand, i) => {
    const h = toVec(cook(cand));
    const score = new Array<number>(n).fill(0);
    for (const refCounts of crefs[i]!) {
      const r = toVec(refCounts); // each reference belongs to one image: computed once
      const delta = h.length - r.length;
      for (let k = 0; k < n; k++) {
        let val = 0;
        for (const [g, hv] of h.vec[k]!) {
          const rv = r.vec[k]!.get(g);
          if (rv !== undefined) val += Math.min(hv, rv) * rv;
        }
        if (h.norm[k] !== 0 && r.norm[k] !== 0) val /= h.norm[k]! * r.norm[k]!;
        score[k]! += val * Math.E ** (-(delta ** 2) / (2 * sigma ** 2));
      }
    }
    return (npMean(score) / crefs[i]!.length) * 10;
  });
  return { corpus: npMean(perImage), perImage, logNumImages: refLen };
}
