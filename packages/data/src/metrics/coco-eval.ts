// COCOEvalCap.evaluate without METEOR/SPICE: group references and the one prediction per image in
// the references' image order, PTB-tokenize references and predictions (two tokenizer calls, as
// eval.py), then BLEU-1..4, ROUGE-L and CIDEr-D, corpus and per image, keyed as pycocoevalcap.
import { bleu, type BleuStats } from "./bleu.js";
import { cider } from "./cider.js";
import { MetricsError, type CaptionRefs } from "./coco-format.js";
import { ptbTokenize } from "./ptb-tokenizer.js";
import { rouge } from "./rouge.js";

export const METRIC_NAMES = ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"] as const;
export type MetricName = (typeof METRIC_NAMES)[number];
export type MetricScores = Record<MetricName, number>;

export interface CaptionEvalResult {
  /** Corpus values on pycocoevalcap's scales (0-1, CIDEr 0-10). */
  scores: MetricScores;
  /** Per-image values, keyed by image id, in the references' image order. */
  perImage: Map<string, MetricScores>;
  bleuStats: BleuStats;
  ciderLogNumImages: number;
}

export interface EvaluateOptions {
  /** PTB-tokenize both sides first (default true); false scores already tokenized strings. */
  tokenize?: boolean;
}

const some = (ids: string[]): string => `${ids.slice(0, 5).join(", ")}${ids.length > 5 ? `, … (${ids.length} in all)` : ""}`;

/** Score grouped captions: candidates[i] against references[i], ids[i] naming image i. */
export function scoreGrouped(ids: readonly string[], candidates: readonly string[], references: readonly (readonly string[])[]): CaptionEvalResult {
  const b = bleu(candidates, references);
  const r = rouge(candidates, references);
  const c = cider(candidates, references);
  const perImage = new Map<string, MetricScores>();
  ids.forEach((id, i) => {
    const bi = b.perImage[i]!;
    perImage.set(id, { Bleu_1: bi[0]!, Bleu_2: bi[1]!, Bleu_3: bi[2]!, Bleu_4: bi[3]!, ROUGE_L: r.perImage[i]!, CIDEr: c.perImage[i]! });
  });
  const bc = b.corpus;
  return {
    scores: { Bleu_1: bc[0]!, Bleu_2: bc[1]!, Bleu_3: bc[2]!, Bleu_4: bc[3]!, ROUGE_L: r.corpus, CIDEr: c.corpus },
    perImage,
    bleuStats: b.stats,
    ciderLogNumImages: c.logNumImages,
  };
}

/** Evaluate predictions (one caption per image) against references: every image needs exactly one prediction. */
export function evaluateCaptions(refs: CaptionRefs, preds: ReadonlyMap<string, string>, opts: EvaluateOptions = {}): CaptionEvalResult {
  const unknown = [...preds.keys()].filter((id) => !refs.refs.has(id));
  if (unknown.length > 0) throw new MetricsError(`score: predictions for images not in the references: ${some(unknown)}`);
  const missing = refs.imageIds.filter((id) => !preds.has(id));
  if (missing.length > 0) throw new MetricsError(`score: ${missing.length} of ${refs.imageIds.length} reference images have no prediction: ${some(missing)}`);
  const empty = [...preds].filter(([, c]) => c.trim() === "").map(([id]) => id);
  if (empty.length > 0) throw new MetricsError(`score: empty predicted captions for images ${some(empty)}`);
  const ids = refs.imageIds;
  const refLists = ids.map((id) => refs.refs.get(id)!);
  let candidates = ids.map((id) => preds.get(id)!);
  let references: string[][] = refLists;
  if (opts.tokenize ?? true) {
    const flat = ptbTokenize(refLists.flat());
    let k = 0;
    references = refLists.map((l) => l.map(() => flat[k++]!));
    candidates = ptbTokenize(candidates);
  }
  return scoreGrouped(ids, candidates, references);
}
