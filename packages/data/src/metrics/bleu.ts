// BLEU-1..4 exactly as pycocoevalcap's BleuScorer (option "closest"): n-grams of a whitespace
// split, counts clipped by the max count over the image's references, effective reference
// length = the closest reference length (ties to the shorter), smoothing constants 1e-15/1e-9,
// brevity penalty exp(1 - 1/ratio) when ratio < 1. Corpus BLEU sums the counts over images.

export const BLEU_N = 4;
const TINY = 1e-15;
const SMALL = 1e-9;

/** n-gram counts per order (index k-1 for k-grams), keyed by the words joined with a space, inserted in
 *  pycocoevalcap's order (k outer, position inner). */
export function countNgrams(words: readonly string[], maxN: number): Map<string, number>[] {
  const out: Map<string, number>[] = [];
  let prev: readonly string[] = words;
  for (let k = 1; k <= maxN; k++) {
    const counts = new Map<string, number>();
    const grams: string[] = k === 1 ? [...words] : [];
    if (k > 1) for (let i = 0; i + k <= words.length; i++) grams.push(`${prev[i]!} ${words[i + k - 1]!}`);
    for (const g of grams) counts.set(g, (counts.get(g) ?? 0) + 1);
    out.push(counts);
    prev = grams;
  }
  return out;
}

const PY_SPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;
export const splitWords = (s: string): string[] => s.split(PY_SPACE).filter((w) => w.length > 0);

export interface BleuStats { testlen: number; reflen: number; guess: number[]; correct: number[] }

/** One image's counts: candidate length, effective reference length, guesses and clipped matches per order. */
export function bleuStats(candidate: string, references: readonly string[], n = BLEU_N): BleuStats {
  const maxRef = new Map<string, number>();
  const reflens: number[] = [];
  for (const ref of references) {
    const words = splitWords(ref);
    reflens.push(words.length);
    for (const order of countNgrams(words, n)) for (const [g, c] of order) if (c > (maxRef.get(g) ?? 0)) maxRef.set(g, c);
  }
  const words = splitWords(candidate);
  const testlen = words.length;
  // closest reference length, ties to the shorter: min over (|l - testlen|, l)
  let reflen = Infinity;
  let bestDiff = Infinity;
  for (const l of reflens) {
    const d = Math.abs(l - testlen);
    if (d < bestDiff || (d === bestDiff && l < reflen)) { bestDiff = d; reflen = l; }
  }
  const guess = Array.from({ length: n }, (_, k) => Math.max(0, testlen - k));
  const correct = new Array<number>(n).fill(0);
  countNgrams(words, n).forEach((order, k) => {
    for (const [g, c] of order) correct[k]! += Math.min(maxRef.get(g) ?? 0, c);
  });
  return { testlen, reflen, guess, correct };
}

/** BLEU-1..n from (summed) counts: cumulative geometric mean of smoothed precisions times the brevity penalty. */
export function bleuFromStats(s: BleuStats, n = BLEU_N): number[] {
  const out: number[] = [];
  let prod = 1;
  for (let k = 0; k < n; k++) {
    prod *= (s.correct[k]! + TINY) / (s.guess[k]! + SMALL);
    out.push(prod ** (1 / (k + 1)));
  }
  const ratio = (s.testlen + TINY) / (s.reflen + SMALL);
  if (ratio < 1) for (let k = 0; k < n; k++) out[k]! *= Math.exp(1 - 1 / ratio);
  return out;
}

export interface BleuResult { corpus: number[]; perImage: number[][]; stats: BleuStats }

/** Corpus and per-image BLEU-1..n over images in order: candidates[i] against references[i]. */
export function bleu(candidates: readonly string[], references: readonly (readonly string[])[], n = BLEU_N): BleuResult {
  const total: BleuStats = { testlen: 0, reflen: 0, guess: new Array<number>(n).fill(0), correct: new Array<number>(n).fill(0) };
  const perImage: number[][] = [];
  candidates.forEach((cand, i) => {
    const s = bleuStats(cand, references[i]!, n);
    total.testlen += s.testlen;
    total.reflen += s.reflen;
    for (let k = 0; k < n; k++) { total.guess[k]! += s.guess[k]!; total.correct[k]! += s.correct[k]!; }
    perImage.push(bleuFromStats(s, n));
  });
  return { corpus: bleuFromStats(total, n), perImage, stats: total };
}
