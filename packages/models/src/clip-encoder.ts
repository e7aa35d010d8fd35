// CLIP's transformer encoder, shared by the vision and the text tower: Hugging Face's
// CLIPAttention, CLIPMLP, CLIPEncoderLayer and CLIPEncoder (transformers 4.31), parameter
// names verbatim. Pre-LN blocks:
//   x = x + out_proj(attention(q_proj(ln1 x), k_proj(ln1 x), v_proj(ln1 x)))
//   x = x + fc2(act(fc1(ln2 x)))
// Shape letters: B batch, T tokens, C hidden size, H heads, D = C / H head size, F the MLP's
// intermediate size. Linear weights are torch's [out, in].
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Tensor } from "@llms-eye/tensor";
import { type Var, LayerNorm, Linear, Module, ag } from "@llms-eye/autograd";
import { type CLIPConfig, ConfigError, parseCLIPConfig } from "./config.js";

/** What a tower's encoder needs from its config (CLIPVisionConfig and CLIPTextConfig both have it). */
export interface CLIPEncoderConfig {
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  hiddenAct: string;
  layerNormEps: number;
}

/** Random-init options: HF CLIP's _init_weights stds, scaled by `factor`, from `seed`. */
export interface CLIPInitOptions {
  seed?: number;
  /** initializer_factor (default 1). */
  factor?: number;
}

/** The activations of the MLP; anything else is refused when the model is built. */
export const CLIP_ACTIVATIONS = ["quick_gelu"] as const;

/** Checks the encoder's sizes and activation; `who` names the tower in the message. */
export function checkEncoderConfig(who: string, cfg: CLIPEncoderConfig): void {
  if (!(CLIP_ACTIVATIONS as readonly string[]).includes(cfg.hiddenAct)) {
    throw new ConfigError(
      `${who}: expected hidden_act "quick_gelu" (the activation of the OpenAI CLIP checkpoints), got "${cfg.hiddenAct}"; ` +
        `"gelu" (erf) is not implemented by the engine`,
    );
  }
  if (cfg.hiddenSize % cfg.numAttentionHeads !== 0) {
    throw new ConfigError(`${who}: expected hidden_size divisible by num_attention_heads, got ${cfg.hiddenSize} and ${cfg.numAttentionHeads}`);
  }
}

export class CLIPAttention extends Module {
  k_proj: Linear;
  v_proj: Linear;
  q_proj: Linear;
  out_proj: Linear;

  constructor(
    readonly _cfg: CLIPEncoderConfig,
    { seed = 0, factor = 1 }: CLIPInitOptions = {},
  ) {
    super();
    const C = _cfg.hiddenSize;
    const inStd = C ** -0.5 * (2 * _cfg.numHiddenLayers) ** -0.5 * factor;
    this.k_proj = new Linear(C, C, { seed, std: inStd });
    this.v_proj = new Linear(C, C, { seed: seed + 1, std: inStd });
    this.q_proj = new Linear(C, C, { seed: seed + 2, std: inStd });
    this.out_proj = new Linear(C, C, { seed: seed + 3, std: C ** -0.5 * factor });
  }

  /**
   * x (B, T, C) → (B, T, C). `causal`: token t attends to tokens ≤ t (the text tower);
   * `keyPaddingMask` (B, T) i32, 0 = padding: no token attends to those keys.
   */
  forward(x: Var, opts: { causal?: boolean; keyPaddingMask?: Tensor } = {}): Var {
    const [B, T, C] = x.shape as [number, number, number];
    const H = this._cfg.numAttentionHeads;
    const D = C / H;
    const heads = (proj: Linear): Var => ag.permute(ag.reshape(proj.forward(x), [B, T, H, D]), [0, 2, 1, 3]); // (B, H, T, D)
    // HF scales q by D^-0.5 before q·kᵀ; the fused attention applies the same scale to the scores.
    const y = ag.attention(heads(this.q_proj), heads(this.k_proj), heads(this.v_proj), {
      causal: opts.causal ?? false,
      ...(opts.keyPaddingMask ? { keyPaddingMask: opts.keyPaddingMask } : {}),
    }); // (B, H, T, D)
    return this.out_proj.forward(ag.reshape(ag.permute(y, [0, 2, 1, 3]), [B, T, C])); // (B, T, C)
  }
}

export class CLIPMLP extends Module {
  fc1: Linear;
  fc2: Linear;

  constructor(cfg: CLIPEncoderConfig, { seed = 0, factor = 1 }: CLIPInitOptions = {}) {
    super();
    const C = cfg.hiddenSize;
    this.fc1 = new Linear(C, cfg.intermediateSize, { seed, std: (2 * C) ** -0.5 * factor });
    this.fc2 = new Linear(cfg.intermediateSize, C, { seed: seed + 1, std: C ** -0.5 * (2 * cfg.numHiddenLayers) ** -0.5 * factor });
  }

  /** (B, T, C) → (B, T, F) → (B, T, C), quick-GELU x·σ(1.702x) in between. */
  forward(x: Var): Var {
    return this.fc2.forward(ag.quickGelu(this.fc1.forward(x)));
  }
}

export class CLIPEncoderLayer extends Module {
  self_attn: CLIPAttention;
  layer_norm1: LayerNorm;
  mlp: CLIPMLP;
  layer_norm2: LayerNorm;

  constructor(cfg: CLIPEncoderConfig, { seed = 0, factor = 1 }: CLIPInitOptions = {}) {
    super();
    this.self_attn = new CLIPAttention(cfg, { seed, factor });
    this.layer_norm1 = new LayerNorm(cfg.hiddenSize, cfg.layerNormEps);
    this.mlp = new CLIPMLP(cfg, { seed: seed + 4, factor });
    this.layer_norm2 = new LayerNorm(cfg.hiddenSize, cfg.layerNormEps);
  }

  forward(x: Var, opts: { causal?: boolean; keyPaddingMask?: Tensor } = {}): Var {
    const h = ag.add(x, this.self_attn.forward(this.layer_norm1.forward(x), opts));
    return ag.add(h, this.mlp.forward(this.layer_norm2.forward(h)));
  }
}

export class CLIPEncoder extends Module {
  layers: CLIPEncoderLayer[];

  constructor(cfg: CLIPEncoderConfig, { seed = 0, factor = 1 }: CLIPInitOptions = {}) {
    super();
    this.layers = Array.from({ length: cfg.numHiddenLayers }, (_, l) => new CLIPEncoderLayer(cfg, { seed: seed + 8 * l, factor }));
  }

  /**
   * Runs layers [0, upTo) on x (B, T, C) and returns every hidden state in HF's order:
   * [x, output of layer 0, …, output of layer upTo-1] (upTo + 1 entries).
   */
  forward(x: Var, upTo: number, opts: { causal?: boolean; keyPaddingMask?: Tensor } = {}): Var[] {
    const states = [x];
    for (const layer of this.layers.slice(0, upTo)) states.push(layer.forward(states[states.length - 1]!, opts));
    return states;
  }
}

/**
 * The number of encoder layers to run for `outputLayer`, an index into hidden_states
 * (0 = the encoder input, L = the last layer; negative counts from the end, as LLaVA's
 * vision_feature_layer: -1 = L, -2 = the penultimate layer).
 */
export function layersFor(who: string, outputLayer: number | undefined, L: number): number {
  if (outputLayer === undefined) return L;
  const k = outputLayer < 0 ? L + 1 + outputLayer : outputLayer;
  if (!Number.isInteger(outputLayer) || k < 0 || k > L) {
    throw new RangeError(`${who}: expected outputLayer an integer in [${-(L + 1)}, ${L}] (an index into the ${L + 1} hidden states), got ${outputLayer}`);
  }
  return k;
}

/** The CLIP config of a model directory (its config.json). */
export async function readCLIPConfig(dir: string): Promise<CLIPConfig> {
  const file = join(dir, "config.json");
  return parseCLIPConfig(JSON.parse(await readFile(file, "utf8")) as unknown, file);
}

/**
 * Checkpoint key renaming for loading: transformers < 4.31 saved `*.embeddings.position_ids`
 * (0..T-1) as persistent buffers, and the hub's OpenAI checkpoints still hold them; they are
 * not parameters (positions are implicit), so they are ignored.
 */
export const skipPositionIds = (key: string): string | null => (/^(vision|text)_model\.embeddings\.position_ids$/.test(key) ? null : key);
