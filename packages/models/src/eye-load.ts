// Building and storing eye models. A size's weights come through the hub cache (GPT-2 from its
// repo with the <image> row added, the vision tower from its CLIP repo); `tiny` is random. A
// saved eye model is a self-contained directory: config.json (the EyeConfig), model.safetensors
// (every parameter, HF-style names: vision_model.*, multi_modal_projector.*, language_model.*,
// image_head.*, text_head.*, logit_scale) and preprocessor_config.json, so captioning needs no
// download. The tokenizer is GPT-2's byte-level BPE (bundled, see tokenizer.ts) plus <image>.
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { skipInit } from "@llms-eye/autograd";
import { loadCheckpoint, loadPretrained, saveCheckpoint } from "./checkpoint.js";
import { CLIPVisionTransformer } from "./clip-vision.js";
import { readCLIPConfig, skipPositionIds } from "./clip-encoder.js";
import { ConfigError } from "./config.js";
import { GPT2LMHeadModel } from "./gpt2.js";
import { type ResolveOptions, resolveModel } from "./hub.js";
import { EyeModel, resizeTokenEmbeddings } from "./eye.js";
import { type EyeConfig, type EyeSize, EYE_REPOS, EYE_SIZES, checkEyeConfig, parseEyeConfig, tinyEyeConfig } from "./eye-config.js";

export const EYE_FILES = { config: "config.json", weights: "model.safetensors", preprocessor: "preprocessor_config.json" } as const;

const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

/** CLIPImageProcessor settings for an image size (what openai/clip-vit-* ship, at size S). */
export function clipPreprocessorConfig(S: number): Record<string, unknown> {
  return {
    crop_size: { height: S, width: S }, do_center_crop: true, do_convert_rgb: true, do_normalize: true, do_rescale: true, do_resize: true,
    image_mean: CLIP_MEAN, image_std: CLIP_STD, image_processor_type: "CLIPImageProcessor", resample: 3, rescale_factor: 1 / 255, size: { shortest_edge: S },
  };
}

export interface BuiltEyeModel {
  model: EyeModel;
  /** The preprocessor_config.json the images must go through. */
  preprocessor: Record<string, unknown>;
}

/** A new eye model of `size`: tiny at random (seeded), the others from their hub repos. */
export async function buildEyeModel(size: string, { seed = 0, ...hub }: ResolveOptions & { seed?: number } = {}): Promise<BuiltEyeModel> {
  if (!(EYE_SIZES as readonly string[]).includes(size)) throw new ConfigError(`eye: expected --size one of ${EYE_SIZES.join(", ")}, got ${JSON.stringify(size)}`);
  if (size === "tiny") {
    const cfg = tinyEyeConfig();
    return { model: new EyeModel(cfg, { seed }), preprocessor: clipPreprocessorConfig(cfg.vision.imageSize) };
  }
  const repos = EYE_REPOS[size as Exclude<EyeSize, "tiny">];
  const llmDir = await resolveModel(repos.llm, ["config.json", "model.safetensors"], hub);
  const visionDir = await resolveModel(repos.vision, ["config.json", "model.safetensors"], { ...hub, optional: ["preprocessor_config.json"] });
  const llm = await GPT2LMHeadModel.fromPretrained(llmDir);
  resizeTokenEmbeddings(llm, llm.config.vocabSize + 1);
  const clipCfg = await readCLIPConfig(visionDir);
  const vision = await loadPretrained(skipInit(() => new CLIPVisionTransformer(clipCfg.vision)), join(visionDir, "model.safetensors"), {
    select: (k) => k.startsWith("vision_model."),
    rename: (k) => (skipPositionIds(k) === null ? null : k.slice("vision_model.".length)),
  });
  const base = tinyEyeConfig();
  const cfg = checkEyeConfig({
    ...base, size: size as EyeSize, llmRepo: repos.llm, visionRepo: repos.vision, gpt2: llm.config, vision: clipCfg.vision,
    imageTokenId: llm.config.vocabSize - 1, eosTokenId: llm.config.eosTokenId, embedDim: 256,
  });
  const preprocessor = await readJson(join(visionDir, EYE_FILES.preprocessor)).catch(() => clipPreprocessorConfig(clipCfg.vision.imageSize));
  return { model: new EyeModel(cfg, { seed, vision, llm }).train(), preprocessor };
}

/** The model files into an existing directory `dir` (not atomic: see saveEyeModel). */
export async function writeEyeModelFiles(model: EyeModel, dir: string, preprocessor: Record<string, unknown>, metadata: Record<string, string> = {}): Promise<void> {
  await saveCheckpoint(model, join(dir, EYE_FILES.weights), { format: "llms-eye", size: model._cfg.size, ...metadata });
  await writeFile(join(dir, EYE_FILES.config), `${JSON.stringify(model._cfg, null, 2)}\n`);
  await writeFile(join(dir, EYE_FILES.preprocessor), `${JSON.stringify(preprocessor, null, 2)}\n`);
}

/**
 * Writes `dir` atomically: `fill` writes into a sibling temporary directory, which then replaces
 * `dir` (an existing one is removed only once the new one is complete); on failure nothing changes.
 */
export async function writeDirAtomic(dir: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    await fill(tmp);
    await mkdir(dirname(dir), { recursive: true });
    const old = `${dir}.old-${process.pid}`;
    await rename(dir, old).catch(() => undefined);
    await rename(tmp, dir);
    await rm(old, { recursive: true, force: true });
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Saves a self-contained eye model directory atomically. */
export async function saveEyeModel(model: EyeModel, dir: string, preprocessor: Record<string, unknown>, metadata: Record<string, string> = {}): Promise<void> {
  await writeDirAtomic(dir, (tmp) => writeEyeModelFiles(model, tmp, preprocessor, metadata));
}

/** Loads a directory written by saveEyeModel; every missing or mis-shaped weight is one error. */
export async function loadEyeModel(dir: string): Promise<BuiltEyeModel> {
  const cfgFile = join(dir, EYE_FILES.config);
  const json = await readJson(cfgFile).catch((e: Error) => {
    throw new ConfigError(`eye: expected a saved eye model in ${dir} (config.json + model.safetensors), got ${e.message}; pass a run directory or checkpoint written by \`pnpm eye train\``);
  });
  const cfg = parseEyeConfig(json, cfgFile);
  const model = skipInit(() => new EyeModel(cfg));
  try {
    await loadCheckpoint(model, join(dir, EYE_FILES.weights));
  } catch (e) {
    model.parameters().forEach((p) => p.value.dispose());
    throw e;
  }
  const preprocessor = await readJson(join(dir, EYE_FILES.preprocessor)).catch(() => clipPreprocessorConfig(cfg.vision.imageSize));
  return { model, preprocessor };
}

async function readJson(file: string): Promise<Record<string, unknown>> {
  const v = JSON.parse(await readFile(file, "utf8")) as unknown;
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new ConfigError(`eye: expected a JSON object in ${file}`);
  return v as Record<string, unknown>;
}

export type { EyeConfig };
