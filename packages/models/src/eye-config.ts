// The eye model's configuration: which GPT-2 and which CLIP vision tower, and the VLM's own
// hyper-parameters (DESIGN.md "The eye model"). `tiny` is random-initialised for the built-in
// shapes data; the other sizes name Hugging Face repos resolved through the hub cache.
import type { CLIPVisionConfig, GPT2Config } from "./config.js";
import { ConfigError } from "./config.js";

export const EYE_SIZES = ["tiny", "mini", "base", "large"] as const;
export type EyeSize = (typeof EYE_SIZES)[number];

/** The HF repos of each pretrained size (the language model and the CLIP the vision tower comes from). */
export const EYE_REPOS: Readonly<Record<Exclude<EyeSize, "tiny">, { llm: string; vision: string }>> = {
  mini: { llm: "distilgpt2", vision: "openai/clip-vit-base-patch16" },
  base: { llm: "gpt2", vision: "openai/clip-vit-base-patch16" },
  large: { llm: "gpt2", vision: "openai/clip-vit-large-patch14" },
};

export interface EyeConfig {
  size: EyeSize;
  /** The repo ids the weights came from ("" for tiny). */
  llmRepo: string;
  visionRepo: string;
  /**
   * GPT-2 with the `<image>` row added after the tokenizer's vocabulary; vocabSize may pad the
   * rows further (tiny: 50304, a multiple of 64, as llm.c pads GPT-2): padding rows are never
   * a target nor generated (see `eyeVocab`).
   */
  gpt2: GPT2Config;
  vision: CLIPVisionConfig;
  /** Average-pooling factor f of the patch grid (default 2: 14x14 → 7x7). */
  poolFactor: number;
  /** Shared embedding width E of the contrastive heads (default 256). */
  embedDim: number;
  /** Token ids: `<image>` (the added row) and `<|endoftext|>`. */
  imageTokenId: number;
  eosTokenId: number;
}

/** GPT-2's vocabulary (50257) plus `<image>`. */
export const EYE_VOCAB = 50258;
/** tiny's token rows: EYE_VOCAB padded to a multiple of 64 (aligned rows for the LM head's kernels). */
export const TINY_VOCAB_ROWS = 50304;

/** Token rows that are real tokens (the tokenizer's + `<image>`); rows past them are padding. */
export const eyeVocab = (cfg: Pick<EyeConfig, "imageTokenId">): number => cfg.imageTokenId + 1;
export const EYE_IMAGE_ID = 50257;
export const EYE_EOS_ID = 50256;

/**
 * The tiny pair, sized for a CPU: 64x64 images in 16x16 patches (a 4x4 grid, no pooling → 16
 * image tokens) through a random 256-wide 3-layer ViT (frozen by default, like CLIP for the
 * other sizes: its random features are cached once), and a random 64-wide 2-layer GPT-2 whose
 * tied LM head (50258 tokens in 50304 rows) is most of a training step's compute. Against 8x8
 * patches pooled 2x2 (same 16 tokens), whole-patch random features kept more of each object's
 * outline: validation CIDEr-D 1.02 / 1.78 at steps 300 / 600 against 0.94 / 1.62.
 */
export function tinyEyeConfig(): EyeConfig {
  return {
    size: "tiny",
    llmRepo: "",
    visionRepo: "",
    gpt2: {
      vocabSize: TINY_VOCAB_ROWS, nPositions: 48, nEmbd: 64, nLayer: 2, nHead: 4, nInner: 256, layerNormEpsilon: 1e-5,
      activation: "gelu_new", bosTokenId: EYE_EOS_ID, eosTokenId: EYE_EOS_ID, tieWordEmbeddings: true, scaleAttnWeights: true,
    },
    vision: {
      hiddenSize: 256, intermediateSize: 1024, numHiddenLayers: 3, numAttentionHeads: 4, imageSize: 64, patchSize: 16,
      numChannels: 3, hiddenAct: "quick_gelu", layerNormEps: 1e-5, projectionDim: 64,
    },
    poolFactor: 1,
    embedDim: 64,
    imageTokenId: EYE_IMAGE_ID,
    eosTokenId: EYE_EOS_ID,
  };
}

/** Image tokens per image: ((image_size / patch_size) / f)². */
export function imageTokenCount(cfg: Pick<EyeConfig, "vision" | "poolFactor">): number {
  const grid = cfg.vision.imageSize / cfg.vision.patchSize;
  return (grid / cfg.poolFactor) ** 2;
}

/** Checks the parts fit together; one error naming the value and the fix. */
export function checkEyeConfig(cfg: EyeConfig): EyeConfig {
  const grid = cfg.vision.imageSize / cfg.vision.patchSize;
  if (!Number.isInteger(cfg.poolFactor) || cfg.poolFactor < 1 || grid % cfg.poolFactor !== 0) {
    throw new ConfigError(`eye: expected a pool factor dividing the ${grid}x${grid} patch grid, got ${cfg.poolFactor}`);
  }
  if (cfg.vision.numHiddenLayers < 2) throw new ConfigError(`eye: expected a vision tower of at least 2 layers (the penultimate one is read), got ${cfg.vision.numHiddenLayers}`);
  if (!Number.isInteger(cfg.imageTokenId) || cfg.imageTokenId < 0 || cfg.imageTokenId >= cfg.gpt2.vocabSize) {
    throw new ConfigError(`eye: expected <image> as the row after the tokenizer's vocabulary, within GPT-2's ${cfg.gpt2.vocabSize} rows, got id ${cfg.imageTokenId}`);
  }
  const K = imageTokenCount(cfg);
  if (K + 2 > cfg.gpt2.nPositions) throw new ConfigError(`eye: expected ${K} image tokens + a caption to fit n_positions = ${cfg.gpt2.nPositions}; raise the pool factor`);
  if (!Number.isInteger(cfg.embedDim) || cfg.embedDim < 1) throw new ConfigError(`eye: expected a positive integer embedDim, got ${cfg.embedDim}`);
  return cfg;
}

/** Parses an eye config stored in a checkpoint's state (written by JSON.stringify of an EyeConfig). */
export function parseEyeConfig(json: unknown, source: string): EyeConfig {
  const o = json as Partial<EyeConfig> | null;
  if (!o || typeof o !== "object" || !EYE_SIZES.includes(o.size as EyeSize) || !o.gpt2 || !o.vision) {
    throw new ConfigError(`eye: expected an eye config {size, gpt2, vision, …} in ${source}, got ${JSON.stringify(json)?.slice(0, 80)}; the checkpoint was not written by \`eye train\``);
  }
  return checkEyeConfig({ ...tinyEyeConfig(), ...o } as EyeConfig);
}
