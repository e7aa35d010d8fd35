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
  /** GPT-2 with the `<image>` row added: vocabSize = the tokenizer's + 1. */
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
export const EYE_IMAGE_ID = 50257;
export const EYE_EOS_ID = 50256;

/**
 * The tiny pair, sized for a CPU: 64x64 images in 8x8 patches (an 8x8 grid pooled 2x2 → 16
 * image tokens) through a random 128-wide 3-layer ViT (frozen by default, like CLIP for the
 * other sizes: its random features are cached once), and a random 64-wide 2-layer GPT-2 whose
 * tied 50258-row LM head is most of a training step's compute.
 */
export function tinyEyeConfig(): EyeConfig {
  return {
    size: "tiny",
    llmRepo: "",
    visionRepo: "",
    gpt2: {
      vocabSize: EYE_VOCAB, nPositions: 48, nEmbd: 64, nLayer: 2, nHead: 4, nInner: 256, layerNormEpsilon: 1e-5,
      activation: "gelu_new", bosTokenId: EYE_EOS_ID, eosTokenId: EYE_EOS_ID, tieWordEmbeddings: true, scaleAttnWeights: true,
    },
    vision: {
      hiddenSize: 128, intermediateSize: 512, numHiddenLayers: 3, numAttentionHeads: 4, imageSize: 64, patchSize: 8,
      numChannels: 3, hiddenAct: "quick_gelu", layerNormEps: 1e-5, projectionDim: 64,
    },
    poolFactor: 2,
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
  if (cfg.imageTokenId !== cfg.gpt2.vocabSize - 1) {
    throw new ConfigError(`eye: expected <image> as the last row of GPT-2's vocabulary (${cfg.gpt2.vocabSize - 1}), got id ${cfg.imageTokenId}`);
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
