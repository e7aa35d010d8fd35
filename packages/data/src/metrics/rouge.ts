// ROUGE-L as pycocoevalcap's Rouge: tokens by split(" "), LCS with each reference, the maximum
// precision and the maximum recall taken separately over references, F with beta = 1.2.
// Corpus value = np.mean over images.
import { npMean } from "./np-sum.js";

export const ROUGE_BETA = 1.2;

/** Length of the longest common subsequence (one rolling row). */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  const row = new Int32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    let diag = 0;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = a[i - 1] === b[j - 1] ? diag + 1 : Math.max(up, row[j - 1]!);
      diag = up;
    }
  }
  return row[b.length]!;
}

/** ROUGE-L F of one candidate against its references. */
export function rougeL(candidate: string, references: readonly string[], beta = ROUGE_BETA): number {
  const c = candidate.split(" ");
  let pMax = 0;
  let rMax = 0;
  for (const ref of references) {
    const r = ref.split(" ");
    const lcs = lcsLength(r, c);
    pMax = Math.max(pMax, lcs / c.length);
    rMax = Math.max(rMax, lcs / r.length);
  }
  if (pMax === 0 || rMax === 0) return 0;
  const b2 = beta ** 2;
  return ((1 + b2) * pMax * rMax) / (rMax + b2 * pMax);
}

/** Corpus (mean) and per-image ROUGE-L. */
export function rouge(candidates: readonly string[], references: readonly (readonly string[])[]): { corpus: number; perImage: number[] } {
  const perImage = candidates.map((c, i) => rougeL(c, references[i]!));
  return { corpus: npMean(perImage), perImage };
}
