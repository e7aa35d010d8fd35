// Hugging Face config.json → typed GPT-2 and CLIP configs, with transformers 4.31's defaults
// for absent (or null) keys. Values that would change the computation in ways we do not
// implement are refused with one error naming the file, the key, the value and what is
// supported. Keys that only matter to Python (dropouts at eval, summary_*, torch_dtype, ...)
// are not read.
import { readFile } from "node:fs/promises";
import { join } from "node:path";

export interface GPT2Config {
  vocabSize: number;
  nPositions: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  /** The MLP width (n_inner; default 4 * nEmbd). */
  nInner: number;
  layerNormEpsilon: number;
  /** "gelu_new" and "gelu_pytorch_tanh" are the tanh form; "gelu" (erf) parses but the model refuses it. */
  activation: "gelu_new" | "gelu_pytorch_tanh" | "gelu";
  bosTokenId: number;
  eosTokenId: number;
  tieWordEmbeddings: boolean;
  /** Always true (scale_attn_weights = false is refused). */
  scaleAttnWeights: boolean;
}

export interface CLIPVisionConfig {
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  imageSize: number;
  patchSize: number;
  numChannels: number;
  /** "gelu" (erf) parses but the towers refuse it. */
  hiddenAct: "quick_gelu" | "gelu";
  layerNormEps: number;
  projectionDim: number;
}

export interface CLIPTextConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  maxPositionEmbeddings: number;
  hiddenAct: "quick_gelu" | "gelu";
  layerNormEps: number;
  projectionDim: number;
  bosTokenId: number;
  eosTokenId: number;
}

export interface CLIPConfig {
  vision: CLIPVisionConfig;
  text: CLIPTextConfig;
  /** The projection width of a CLIPModel (both towers' projectionDim are set to it). */
  projectionDim: number;
  logitScaleInitValue: number;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const MISSING = Symbol("missing");
const show = (v: unknown): string =>
  v === MISSING ? "no such key" : typeof v === "string" ? `"${v}"` : (JSON.stringify(v) ?? String(v));

/** Typed access to one config object; `where` names it in errors (`/path/config.json` or `… vision_config`). */
class Reader {
  constructor(
    private readonly json: Json,
    private readonly where: string,
  ) {}

  private fail(key: string, expected: string, value: unknown): never {
    throw new ConfigError(`config: expected ${expected} for "${key}" in ${this.where}, got ${show(value)}`);
  }

  private get(key: string): unknown {
    const v = this.json[key];
    return v === null ? undefined : v;
  }

  /** A positive integer (or ≥ 0 when `min` is 0). */
  int(key: string, def: number, min = 1): number {
    const v = this.get(key) ?? def;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) this.fail(key, min === 0 ? "a non-negative integer" : "a positive integer", v);
    return v as number;
  }

  positive(key: string, def: number): number {
    const v = this.get(key) ?? def;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) this.fail(key, "a positive number", v);
    return v as number;
  }

  number(key: string, def: number): number {
    const v = this.get(key) ?? def;
    if (typeof v !== "number" || !Number.isFinite(v)) this.fail(key, "a finite number", v);
    return v as number;
  }

  bool(key: string, def: boolean): boolean {
    const v = this.get(key) ?? def;
    if (typeof v !== "boolean") this.fail(key, "true or false", v);
    return v as boolean;
  }

  /** One of `allowed`; `why` explains the restriction. */
  oneOf<T extends string | boolean>(key: string, def: T, allowed: readonly T[], why: string): T {
    const raw = this.get(key);
    const v = raw ?? def;
    if (!allowed.includes(v as T)) this.fail(key, `${allowed.map(show).join(" or ")} (${why})`, raw === undefined ? MISSING : v);
    return v as T;
  }

  divisible(a: string, av: number, b: string, bv: number): void {
    if (av % bv !== 0) throw new ConfigError(`config: expected "${a}" divisible by "${b}" in ${this.where}, got ${av} and ${bv}`);
  }
}

function expectObject(json: unknown, source: string): Json {
  if (!isObject(json)) throw new ConfigError(`config: expected a JSON object in ${source}, got ${show(json)}`);
  return json;
}

const GELU_WHY = "the engine's GELU is the tanh form; \"gelu\" (erf) is refused by the model";

/** GPT2Config (GPT2LMHeadModel / GPT2Model config.json, e.g. gpt2 or distilgpt2). */
export function parseGPT2Config(json: unknown, source: string): GPT2Config {
  const r = new Reader(expectObject(json, source), source);
  r.oneOf("model_type", "gpt2", ["gpt2"], "a GPT-2 config");
  const nEmbd = r.int("n_embd", 768);
  const nHead = r.int("n_head", 12);
  r.divisible("n_embd", nEmbd, "n_head", nHead);
  const cfg: GPT2Config = {
    vocabSize: r.int("vocab_size", 50257),
    nPositions: r.int("n_positions", 1024),
    nEmbd,
    nLayer: r.int("n_layer", 12),
    nHead,
    nInner: r.int("n_inner", 4 * nEmbd),
    layerNormEpsilon: r.positive("layer_norm_epsilon", 1e-5),
    activation: r.oneOf("activation_function", "gelu_new", ["gelu_new", "gelu_pytorch_tanh", "gelu"] as const, GELU_WHY),
    bosTokenId: r.int("bos_token_id", 50256, 0),
    eosTokenId: r.int("eos_token_id", 50256, 0),
    tieWordEmbeddings: r.bool("tie_word_embeddings", true),
    scaleAttnWeights: r.oneOf("scale_attn_weights", true, [true], "attention scores are always scaled by 1/sqrt(head size)"),
  };
  r.oneOf("scale_attn_by_inverse_layer_idx", false, [false], "per-layer attention scaling is not implemented");
  r.oneOf("add_cross_attention", false, [false], "GPT-2 with cross-attention is not implemented");
  r.bool("reorder_and_upcast_attn", false); // only changes float16 numerics; we compute in float32
  return cfg;
}

function visionConfig(json: Json, where: string, projectionDim?: number): CLIPVisionConfig {
  const r = new Reader(json, where);
  const hiddenSize = r.int("hidden_size", 768);
  const numAttentionHeads = r.int("num_attention_heads", 12);
  const imageSize = r.int("image_size", 224);
  const patchSize = r.int("patch_size", 32);
  r.divisible("hidden_size", hiddenSize, "num_attention_heads", numAttentionHeads);
  r.divisible("image_size", imageSize, "patch_size", patchSize);
  return {
    hiddenSize,
    intermediateSize: r.int("intermediate_size", 3072),
    numHiddenLayers: r.int("num_hidden_layers", 12),
    numAttentionHeads,
    imageSize,
    patchSize,
    numChannels: r.int("num_channels", 3),
    hiddenAct: r.oneOf("hidden_act", "quick_gelu", ["quick_gelu", "gelu"] as const, "CLIP's activations; \"gelu\" (erf) is refused by the tower"),
    layerNormEps: r.positive("layer_norm_eps", 1e-5),
    projectionDim: projectionDim ?? r.int("projection_dim", 512),
  };
}

function textConfig(json: Json, where: string, projectionDim?: number): CLIPTextConfig {
  const r = new Reader(json, where);
  const hiddenSize = r.int("hidden_size", 512);
  const numAttentionHeads = r.int("num_attention_heads", 8);
  r.divisible("hidden_size", hiddenSize, "num_attention_heads", numAttentionHeads);
  return {
    vocabSize: r.int("vocab_size", 49408),
    hiddenSize,
    intermediateSize: r.int("intermediate_size", 2048),
    numHiddenLayers: r.int("num_hidden_layers", 12),
    numAttentionHeads,
    maxPositionEmbeddings: r.int("max_position_embeddings", 77),
    hiddenAct: r.oneOf("hidden_act", "quick_gelu", ["quick_gelu", "gelu"] as const, "CLIP's activations; \"gelu\" (erf) is refused by the tower"),
    layerNormEps: r.positive("layer_norm_eps", 1e-5),
    projectionDim: projectionDim ?? r.int("projection_dim", 512),
    bosTokenId: r.int("bos_token_id", 49406, 0),
    eosTokenId: r.int("eos_token_id", 49407, 0),
  };
}

/** A tower's sub-config: `<key>` overridden by the legacy `<key>_dict`, as CLIPConfig.__init__ merges them. */
function subConfig(root: Json, key: string, source: string): Json {
  const out: Json = {};
  for (const k of [key, `${key}_dict`]) {
    const v = root[k];
    if (v === undefined || v === null) continue;
    if (!isObject(v)) throw new ConfigError(`config: expected an object for "${k}" in ${source}, got ${show(v)}`);
    Object.assign(out, v);
  }
  return out;
}

/**
 * CLIPConfig from a full CLIPModel config.json (vision_config + text_config, absent ones take
 * HF's defaults), or from a CLIPVisionModel config (model_type "clip_vision_model": the text
 * side is HF's default text config, unused by a vision-only load).
 */
export function parseCLIPConfig(json: unknown, source: string): CLIPConfig {
  const root = expectObject(json, source);
  const r = new Reader(root, source);
  const type = r.oneOf("model_type", "vision_config" in root ? "clip" : "", ["clip", "clip_vision_model"], "a CLIPModel or CLIPVisionModel config");
  if (type === "clip_vision_model") {
    const vision = visionConfig(root, source);
    return { vision, text: textConfig({}, `${source} (defaults)`, vision.projectionDim), projectionDim: vision.projectionDim, logitScaleInitValue: 2.6592 };
  }
  const projectionDim = r.int("projection_dim", 512);
  return {
    vision: visionConfig(subConfig(root, "vision_config", source), `${source} vision_config`, projectionDim),
    text: textConfig(subConfig(root, "text_config", source), `${source} text_config`, projectionDim),
    projectionDim,
    logitScaleInitValue: r.number("logit_scale_init_value", 2.6592),
  };
}

const MODEL_TYPES = ["gpt2", "clip", "clip_vision_model"] as const;

/** Reads `dir/config.json` and its model_type (one of gpt2, clip, clip_vision_model). */
export async function readConfig(dir: string): Promise<{ modelType: (typeof MODEL_TYPES)[number]; raw: Record<string, unknown> }> {
  const file = join(dir, "config.json");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(`config: expected a config.json in ${dir}, got ${code === "ENOENT" ? "no such file" : (code ?? (e as Error).message)}; is this a model directory?`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config: expected JSON in ${file}, got a parse error: ${(e as Error).message}`);
  }
  const raw = expectObject(json, file);
  const modelType = new Reader(raw, file).oneOf("model_type", "" as (typeof MODEL_TYPES)[number], MODEL_TYPES, "the models we implement");
  return { modelType, raw };
}
