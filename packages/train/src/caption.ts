// `eye caption` and `eye eval`: a trained model (a run directory → its latest checkpoint, or a
// checkpoint directory) captions image files, or a dataset split is captioned and scored; the
// predictions are written in COCO results format. CLIPScore is added when a CLIP with a text
// tower resolves (the vision repo of pretrained sizes, or --clip).
import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tidy } from "@llms-eye/tensor";
import { noGrad } from "@llms-eye/autograd";
import { CLIPModel, EYE_FILES, type EyeModel, type ResolveOptions, eyeTokenizer, parseEyeConfig, loadEyeModel, loadTokenizer, resolveModel } from "@llms-eye/models";
import { PreprocessPool, clipScore, parseClipImageConfig, readClipImageConfig } from "@llms-eye/data";
import { resolveCheckpoint } from "./checkpoint.js";
import { openDataset } from "./dataset.js";
import { type EvalOptions, type EvalOutput, captionFeatures, captionOptions, evaluate } from "./evaluate.js";
import { imageInputs, pixelsOf } from "./features.js";

export interface LoadedRun {
  checkpoint: string;
  model: EyeModel;
  preprocessor: Record<string, unknown>;
}

export async function loadRun(path: string): Promise<LoadedRun> {
  const checkpoint = await resolveCheckpoint(path);
  const { model, preprocessor } = await loadEyeModel(checkpoint);
  model.eval();
  return { checkpoint, model, preprocessor };
}

/** The model size of a run or checkpoint (from its config.json, without loading weights). */
export async function runSize(path: string): Promise<string> {
  const checkpoint = await resolveCheckpoint(path);
  const file = join(checkpoint, EYE_FILES.config);
  const text = await readFile(file, "utf8").catch(() => "null");
  return parseEyeConfig(JSON.parse(text) as unknown, file).size;
}

/** One caption per image file, in order. */
export async function captionImages(path: string, images: readonly string[], opts: Omit<EvalOptions, "samples"> & { workers?: number } = {}): Promise<{ image: string; caption: string }[]> {
  if (images.length === 0) throw new RangeError("caption: expected at least one image file, got none");
  const { model, preprocessor } = await loadRun(path);
  const tok = await eyeTokenizer();
  const decode = captionOptions(opts);
  const pool = new PreprocessPool(parseClipImageConfig(preprocessor, "the model's preprocessor_config.json"), opts.workers === undefined ? {} : { threads: opts.workers });
  const out: { image: string; caption: string }[] = [];
  const batch = opts.batch ?? 32;
  try {
    for (let at = 0; at < images.length; at += batch) {
      const files = images.slice(at, at + batch);
      const px = await pixelsOf(pool, files, model._cfg.vision.imageSize);
      const feats = noGrad(() => tidy(() => model.imageFeatures(px).value));
      px.dispose();
      try {
        const caps = await captionFeatures(model, tok, feats, decode);
        files.forEach((image, i) => out.push({ image, caption: caps[i]! }));
      } finally {
        feats.dispose();
      }
    }
  } finally {
    await pool.close();
  }
  return out;
}

export interface EvalRunOptions extends EvalOptions {
  split?: "train" | "val" | "test";
  /** Evaluate only the first N images of the split. */
  limit?: number;
  /** Predictions file (COCO results); default <checkpoint>/predictions-<split>.json. */
  predictions?: string;
  /** A CLIP model (repo id or dir) with a text tower for CLIPScore; default the vision repo (not for tiny); "none" skips. */
  clip?: string;
  hub?: ResolveOptions;
  workers?: number;
  log?: (m: string) => void;
}

export interface EvalRunResult extends EvalOutput {
  checkpoint: string;
  predictionsFile: string;
  clipScore?: { clipScore: number; refClipScore?: number; model: string };
}

export async function evalRun(path: string, data: string, opts: EvalRunOptions = {}): Promise<EvalRunResult> {
  const log = opts.log ?? (() => {});
  const { checkpoint, model, preprocessor } = await loadRun(path);
  const tok = await eyeTokenizer();
  const dataset = await openDataset(data);
  const split = opts.split ?? "test";
  const indices = dataset.split(split).slice(0, opts.limit ?? Infinity);
  if (indices.length === 0) throw new RangeError(`eval: expected images of split "${split}" in ${dataset.file}, got none; pass --split train|val|test`);
  const inputs = await imageInputs(model, dataset, preprocessor, opts.workers === undefined ? {} : { workers: opts.workers });
  let result: EvalOutput;
  try {
    await inputs.prepare(indices);
    result = await evaluate(model, tok, dataset, indices, inputs, opts);
  } finally {
    await inputs.close();
  }
  const predictionsFile = opts.predictions ?? join(checkpoint, `predictions-${split}.json`);
  const tmp = `${predictionsFile}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(result.predictions, null, 1)}\n`);
  await rename(tmp, predictionsFile);
  const out: EvalRunResult = { ...result, checkpoint, predictionsFile };
  const clipRepo = opts.clip ?? (model._cfg.visionRepo || "none");
  if (clipRepo !== "none") {
    try {
      const dir = await resolveModel(clipRepo, ["config.json", "model.safetensors"], { ...opts.hub, optional: ["tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json", "preprocessor_config.json"] });
      const clip = await CLIPModel.fromPretrained(dir);
      const clipTok = await loadTokenizer(dir, "clip");
      const cfg = await readClipImageConfig(join(dir, "preprocessor_config.json")).catch(() => parseClipImageConfig({}, clipRepo));
      const pool = new PreprocessPool(cfg);
      try {
        const files = indices.map((i) => dataset.image(i));
        const s = await clipScore({
          model: clip, tokenizer: clipTok, candidates: result.predictions.map((p) => p.caption),
          references: indices.map((i) => dataset.records[i]!.captions), pixels: (i) => pool.run(files[i]!),
        });
        out.clipScore = { clipScore: s.clipScore, ...(s.refClipScore === undefined ? {} : { refClipScore: s.refClipScore }), model: clipRepo };
        out.summary.clipScore = s.clipScore;
      } finally {
        await pool.close();
      }
    } catch (e) {
      log(`CLIPScore skipped: ${(e as Error).message}`);
    }
  }
  return out;
}

