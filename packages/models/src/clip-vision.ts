// CLIP's vision tower, Hugging Face's CLIPVisionTransformer (transformers 4.31), parameter
// names verbatim (including `pre_layrnorm`, sic):
//   x = pre_layrnorm(concat(class_embedding, patch_embedding(pixels)) + position_embedding)
//   hidden_states = [x, layer 0 output, …, layer L-1 output];  last_hidden_state = the last
//   pooler_output = post_layernorm(last_hidden_state[:, 0]);  image_embeds = visual_projection(pooler_output)
// Shape letters: B batch, S = image size, P patch size, N = (S/P)² patches, T = N + 1 tokens
// (class token first), C hidden size, E projection dim.
import { join } from "node:path";
import { type Tensor, ShapeError, randnArray, tensor, zeros } from "@llms-eye/tensor";
import { type Var, Embedding, LayerNorm, Linear, Module, ag, initParam, skipInit } from "@llms-eye/autograd";
import { type CLIPInitOptions, CLIPEncoder, checkEncoderConfig, layersFor, readCLIPConfig, skipPositionIds } from "./clip-encoder.js";
import { loadPretrained } from "./checkpoint.js";
import { type CLIPVisionConfig, ConfigError } from "./config.js";

const fmt = (s: readonly number[]): string => `[${s.join(", ")}]`;
const normal = (shape: number[], seed: number, std: number): Var => initParam(shape, { seed, std });

/** A stride = kernel convolution without bias (HF's nn.Conv2d(bias=False)); weight [C, 3, P, P]. */
export class CLIPPatchEmbedding extends Module {
  weight: Var;

  constructor(cfg: CLIPVisionConfig, seed: number, std: number) {
    super();
    this.weight = normal([cfg.hiddenSize, cfg.numChannels, cfg.patchSize, cfg.patchSize], seed, std);
  }

  /** pixels (B, 3, S, S) → patch tokens (B, N, C), row-major over the patch grid. */
  forward(pixels: Var | Tensor): Var {
    return ag.patchEmbed(pixels, this.weight);
  }
}

export class CLIPVisionEmbeddings extends Module {
  class_embedding: Var;
  patch_embedding: CLIPPatchEmbedding;
  position_embedding: Embedding;

  constructor(
    readonly _cfg: CLIPVisionConfig,
    { seed = 0, factor = 1 }: CLIPInitOptions = {},
  ) {
    super();
    const C = _cfg.hiddenSize;
    const N = (_cfg.imageSize / _cfg.patchSize) ** 2;
    // HF's init: class token N(0, C^-1/2); patches and positions N(0, initializer_range), 0.02 for the OpenAI configs.
    this.class_embedding = normal([C], seed, C ** -0.5 * factor);
    this.patch_embedding = new CLIPPatchEmbedding(_cfg, seed + 1, 0.02 * factor);
    this.position_embedding = new Embedding(N + 1, C, { seed: seed + 2, std: 0.02 * factor });
  }

  /** pixels (B, 3, S, S) → tokens (B, T, C): the class token, then the N patches, plus positions. */
  forward(pixels: Var | Tensor): Var {
    const { imageSize: S, numChannels: Ch, hiddenSize: C } = this._cfg;
    const shape = pixels.shape;
    if (shape.length !== 4 || shape[1] !== Ch || shape[2] !== S || shape[3] !== S) {
      throw new ShapeError(`CLIPVisionEmbeddings: expected pixel_values of shape [B, ${Ch}, ${S}, ${S}] (the config's image_size), got ${fmt(shape)}`);
    }
    const B = shape[0]!;
    const patches = this.patch_embedding.forward(pixels); // (B, N, C)
    const cls = ag.add(zeros([B, 1, C]), ag.reshape(this.class_embedding, [1, 1, C])); // (B, 1, C)
    return ag.add(ag.concat([cls, patches], 1), this.position_embedding.weight); // (B, T, C)
  }
}

export interface CLIPVisionForwardOptions {
  /**
   * Stop after hidden_states[outputLayer] (0 = pre_layrnorm(embeddings), L = the last layer;
   * negative counts from the end: -2 is the penultimate layer the VLM reads). Layers beyond
   * it are not run, and last_hidden_state / pooler_output are then null.
   */
  outputLayer?: number;
}

export interface CLIPVisionOutput {
  /** hidden_states[0..k]: (B, T, C) each, k = outputLayer (default L). */
  hiddenStates: Var[];
  /** (B, T, C), the last layer's output (no post_layernorm); null when stopped early. */
  lastHiddenState: Var | null;
  /** (B, C) = post_layernorm(last_hidden_state[:, 0]); null when stopped early. */
  poolerOutput: Var | null;
}

export class CLIPVisionTransformer extends Module {
  embeddings: CLIPVisionEmbeddings;
  pre_layrnorm: LayerNorm;
  encoder: CLIPEncoder;
  post_layernorm: LayerNorm;

  constructor(
    readonly _cfg: CLIPVisionConfig,
    init: CLIPInitOptions = {},
  ) {
    super();
    checkEncoderConfig("CLIPVisionTransformer", _cfg);
    if (_cfg.imageSize % _cfg.patchSize !== 0) {
      throw new ConfigError(`CLIPVisionTransformer: expected image_size divisible by patch_size, got ${_cfg.imageSize} and ${_cfg.patchSize}`);
    }
    const seed = init.seed ?? 0;
    this.embeddings = new CLIPVisionEmbeddings(_cfg, { ...init, seed });
    this.pre_layrnorm = new LayerNorm(_cfg.hiddenSize, _cfg.layerNormEps);
    this.encoder = new CLIPEncoder(_cfg, { ...init, seed: seed + 10 });
    this.post_layernorm = new LayerNorm(_cfg.hiddenSize, _cfg.layerNormEps);
  }

  forward(pixels: Var | Tensor, opts: CLIPVisionForwardOptions = {}): CLIPVisionOutput {
    const L = this._cfg.numHiddenLayers;
    const upTo = layersFor("CLIPVisionTransformer", opts.outputLayer, L);
    const x = this.pre_layrnorm.forward(this.embeddings.forward(pixels)); // (B, T, C)
    const hiddenStates = this.encoder.forward(x, upTo);
    if (upTo < L) return { hiddenStates, lastHiddenState: null, poolerOutput: null };
    const last = hiddenStates[L]!;
    const [B, , C] = last.shape as [number, number, number];
    const cls = ag.reshape(ag.slice(last, [0, 0], [B, 1]), [B, C]); // (B, C)
    return { hiddenStates, lastHiddenState: last, poolerOutput: this.post_layernorm.forward(cls) };
  }
}

/** The width of the shared embedding space and the tower's width: visual_projection is [E, C], no bias. */
export const visualProjection = (C: number, E: number, { seed = 0, factor = 1 }: CLIPInitOptions = {}): Linear =>
  new Linear(C, E, { bias: false, seed, std: C ** -0.5 * factor });

export interface CLIPVisionModelOutput extends CLIPVisionOutput {
  /** (B, E) = visual_projection(pooler_output), not normalised; null when stopped early. */
  imageEmbeds: Var | null;
}

/** The checkpoint keys the vision-only model reads. */
export const CLIP_VISION_KEYS = (key: string): boolean => key.startsWith("vision_model.") || key === "visual_projection.weight";

/**
 * HF's CLIPVisionModelWithProjection: `vision_model.*` + `visual_projection.weight`, the keys a
 * full CLIPModel checkpoint stores for the vision side (see clip.ts for loading).
 */
export class CLIPVisionModel extends Module {
  vision_model: CLIPVisionTransformer;
  visual_projection: Linear;

  /**
   * The vision side of a CLIPModel directory (config.json + model.safetensors), in eval mode:
   * only `vision_model.*` and `visual_projection.weight` are read from the file.
   */
  static async fromPretrained(dir: string): Promise<CLIPVisionModel> {
    const cfg = await readCLIPConfig(dir);
    const model = skipInit(() => new CLIPVisionModel(cfg.vision)).eval();
    return loadPretrained(model, join(dir, "model.safetensors"), { select: CLIP_VISION_KEYS, rename: skipPositionIds });
  }

  constructor(
    readonly _cfg: CLIPVisionConfig,
    init: CLIPInitOptions = {},
  ) {
    super();
    this.vision_model = new CLIPVisionTransformer(_cfg, init);
    this.visual_projection = visualProjection(_cfg.hiddenSize, _cfg.projectionDim, { ...init, seed: (init.seed ?? 0) + 1000 });
  }

  forward(pixels: Var | Tensor, opts: CLIPVisionForwardOptions = {}): CLIPVisionModelOutput {
    const out = this.vision_model.forward(pixels, opts);
    return { ...out, imageEmbeds: out.poolerOutput ? this.visual_projection.forward(out.poolerOutput) : null };
  }
}
