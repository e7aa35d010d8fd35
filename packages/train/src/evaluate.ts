// Evaluation of the eye model on dataset rows: captions generated (greedy by default, or beam /
// nucleus sampling), scored with the COCO caption metrics (PTB-tokenised BLEU-1..4, ROUGE-L,
// CIDEr-D); retrieval Recall@1/5/10 both ways from the model's own image and text embeddings
// (a caption of the image counts as a hit); optionally CLIPScore with a CLIP that has a text
// tower. Empty generated captions are scored as empty (and counted), as pycocoevalcap would.
import { type Tensor, tidy } from "@llms-eye/tensor";
import { noGrad } from "@llms-eye/autograd";
import { type EyeModel, type Tokenizer, captionIds, imageEmbeddings, textEmbeddings, type CaptionOptions } from "@llms-eye/models";
import { SHAPES, SHAPE_COLORS, ptbTokenize, retrievalRecall, scoreGrouped } from "@llms-eye/data";
import type { Dataset } from "./dataset.js";
import type { ImageInputs } from "./features.js";
import type { EvalRecord } from "./run-log.js";

export interface EvalOptions {
  /** Decoding: greedy (default), beam with `beam` beams, or nucleus sampling with `topP`. */
  beam?: number;
  topP?: number;
  seed?: number;
  maxNewTokens?: number;
  /** Images per generation batch (default 64). */
  batch?: number;
  /** Sample captions kept for the report (default 8). */
  samples?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface EvalOutput {
  summary: Omit<EvalRecord, "step">;
  /** COCO results format. */
  predictions: { image_id: string; caption: string }[];
  /** Captions the model ended at once (scored as empty). */
  empty: number;
}

export function captionOptions(o: Pick<EvalOptions, "beam" | "topP" | "seed" | "maxNewTokens">): CaptionOptions {
  const maxNewTokens = o.maxNewTokens ?? 32;
  if (o.beam && o.topP) throw new RangeError("caption: expected at most one of --beam and --top-p, got both");
  if (o.beam) return { maxNewTokens, strategy: "beam", numBeams: o.beam };
  if (o.topP) return { maxNewTokens, strategy: "sample", topP: o.topP, topK: 0, seed: o.seed ?? 0 };
  return { maxNewTokens, strategy: "greedy" };
}

/** Features (n, K, Dv) of dataset rows (pixels through the frozen-at-eval vision tower when live). */
export async function featuresOf(model: EyeModel, inputs: ImageInputs, indices: readonly number[]): Promise<Tensor> {
  const x = await inputs.get(indices);
  if (!inputs.live) return x;
  const f = noGrad(() => tidy(() => model.imageFeatures(x).value));
  x.dispose();
  return f;
}

/** Captions (decoded, trimmed) for features (n, K, Dv). */
export async function captionFeatures(model: EyeModel, tok: Tokenizer, feats: Tensor, opts: CaptionOptions): Promise<string[]> {
  const ids = await captionIds(model, feats, opts);
  return ids.map((r) => tok.decode(r, { skipSpecialTokens: true }).trim());
}

export async function evaluate(model: EyeModel, tok: Tokenizer, dataset: Dataset, indices: readonly number[], inputs: ImageInputs, opts: EvalOptions = {}): Promise<EvalOutput> {
  if (indices.length === 0) throw new RangeError(`eval: expected at least one image to evaluate in ${dataset.file}, got none`);
  const wasTraining = model.training;
  model.eval();
  const batch = opts.batch ?? 64;
  const decode = captionOptions(opts);
  const captions: string[] = [];
  const imgEmb: Float32Array[] = [];
  try {
    for (let at = 0; at < indices.length; at += batch) {
      const part = indices.slice(at, at + batch);
      const feats = await featuresOf(model, inputs, part);
      try {
        captions.push(...(await captionFeatures(model, tok, feats, decode)));
        const e = imageEmbeddings(model, feats);
        imgEmb.push((await e.toArray()) as Float32Array);
        e.dispose();
      } finally {
        feats.dispose();
      }
      opts.onProgress?.(Math.min(at + batch, indices.length), indices.length);
    }
    // text side: every reference caption of every image, in batches
    const refs = indices.map((i) => dataset.records[i]!.captions);
    const flat = refs.flatMap((r, i) => r.map((c) => ({ c, i })));
    const maxTokens = model._cfg.gpt2.nPositions - 2;
    const txtEmb: Float32Array[] = [];
    for (let at = 0; at < flat.length; at += batch) {
      const ids = flat.slice(at, at + batch).map(({ c }) => tok.encode(c).slice(0, maxTokens));
      const t = textEmbeddings(model, ids);
      txtEmb.push((await t.toArray()) as Float32Array);
      t.dispose();
    }
    const cat = (parts: Float32Array[]) => {
      const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
      parts.reduce((o, p) => (out.set(p, o), o + p.length), 0);
      return out;
    };
    const recall = retrievalRecall(cat(imgEmb), cat(txtEmb), Int32Array.from(flat.map(({ i }) => i)), [1, 5, 10]);
    // caption metrics, PTB-tokenised as COCOEvalCap does
    const tokRefs = ptbTokenize(refs.flat());
    let k = 0;
    const groupedRefs = refs.map((r) => r.map(() => tokRefs[k++]!));
    const ids = indices.map((i) => dataset.records[i]!.id);
    const scored = scoreGrouped(ids, ptbTokenize(captions), groupedRefs);
    const nSamples = Math.min(opts.samples ?? 8, indices.length);
    const grounding = singleObjectGrounding(indices.map((i) => dataset.records[i]!.meta), captions);
    return {
      summary: {
        split: dataset.records[indices[0]!]!.split,
        images: indices.length,
        metrics: scored.scores,
        retrieval: { i2t: pick(recall.i2t), t2i: pick(recall.t2i) },
        ...(grounding ? { singleObject: grounding } : {}),
        samples: Array.from({ length: nSamples }, (_, s) => ({ image: dataset.image(indices[s]!), caption: captions[s]!, references: refs[s]! })),
      },
      predictions: ids.map((id, j) => ({ image_id: id, caption: captions[j]! })),
      empty: captions.filter((c) => c === "").length,
    };
  } finally {
    if (wasTraining) model.train();
  }
}

const PAIR = new RegExp(`\\b(${Object.keys(SHAPE_COLORS).join("|")}) (${SHAPES.join("|")})\\b`, "g");

const pick = (r: Record<number, number>): Record<1 | 5 | 10, number> => ({ 1: r[1]!, 5: r[5]!, 10: r[10]! });

/**
 * Shapes data (records whose meta lists the objects drawn): of the single-object images, how
 * many captions name the object's color and shape together ("… red circle …") and no other
 * color-shape pair; null for other data.
 */
export function singleObjectGrounding(metas: readonly (Record<string, unknown> | undefined)[], captions: readonly string[]): { images: number; correct: number } | null {
  let images = 0;
  let correct = 0;
  metas.forEach((m, j) => {
    const objects = m?.objects;
    if (!Array.isArray(objects) || objects.length !== 1) return;
    const o = objects[0] as { color?: unknown; shape?: unknown };
    if (typeof o.color !== "string" || typeof o.shape !== "string") return;
    images++;
    const named = [...captions[j]!.toLowerCase().matchAll(PAIR)].map((x) => `${x[1]} ${x[2]}`);
    if (named.length > 0 && named.every((p) => p === `${o.color} ${o.shape}`)) correct++;
  });
  return images > 0 ? { images, correct } : null;
}

