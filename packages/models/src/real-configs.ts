// The real sizes: the config.json of distilgpt2, gpt2, openai/clip-vit-base-patch16 and
// openai/clip-vit-large-patch14 as the hub publishes them (the keys that shape or change the
// computation, verbatim, including the hub CLIP configs' legacy text eos_token_id 2; the long
// generation-default dumps of the CLIP sub-configs are left out), and checkpoints of exactly
// the hub files' keys, shapes and dtypes filled with seeded random weights. Nothing can be
// downloaded here, so these stand in for the real files in load tests and the `load` bench.
//
// GPT-2 files (GPT2Model keys, no "transformer." prefix, tied head not stored):
//   wte.weight [V, C]  wpe.weight [P, C]  h.i.{ln_1,ln_2}.{weight,bias} [C]  h.i.attn.bias [1, 1, P, P]
//   h.i.attn.c_attn.{weight [C, 3C], bias [3C]}  h.i.attn.c_proj.{weight [C, C], bias [C]}
//   h.i.mlp.c_fc.{weight [C, 4C], bias [4C]}  h.i.mlp.c_proj.{weight [4C, C], bias [C]}  ln_f.{weight,bias} [C]
// CLIP files (CLIPModel): text_model.*, vision_model.*, visual_projection.weight [E, Cv],
//   text_projection.weight [E, Ct], logit_scale [], *.embeddings.position_ids [1, T] I64.
// Shape letters: V vocab, P positions, C width, E projection dim, F intermediate size,
// S image size, p patch size, T tokens (text: max positions; vision: (S/p)² + 1).
//
// Values are a pure function of (seed, tensor name, flat index) (`randomValueAt`), so a
// loader can be checked at any position without keeping the written data; they are uniform
// with standard deviation 0.02 around 0 (LayerNorm weights around 1), attn.bias is the causal
// mask and position_ids count up, as in the real files. Writing streams one tensor at a time.
import { mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type SafeDType, type TensorSource, writeSafetensorsFrom } from "./safetensors.js";

export const REAL_MODELS = ["distilgpt2", "gpt2", "clip-vit-base-patch16", "clip-vit-large-patch14"] as const;
export type RealModelName = (typeof REAL_MODELS)[number];

/** The hub repo id of each real model. */
export const REAL_REPO_IDS: Readonly<Record<RealModelName, string>> = {
  distilgpt2: "distilgpt2",
  gpt2: "gpt2",
  "clip-vit-base-patch16": "openai/clip-vit-base-patch16",
  "clip-vit-large-patch14": "openai/clip-vit-large-patch14",
};

export class RealCheckpointError extends Error {
  override name = "RealCheckpointError";
}

const gpt2Config = (nLayer: number, extra: Record<string, unknown>): Record<string, unknown> => ({
  ...extra,
  activation_function: "gelu_new",
  architectures: ["GPT2LMHeadModel"],
  attn_pdrop: 0.1,
  bos_token_id: 50256,
  embd_pdrop: 0.1,
  eos_token_id: 50256,
  initializer_range: 0.02,
  layer_norm_epsilon: 1e-5,
  model_type: "gpt2",
  n_ctx: 1024,
  n_embd: 768,
  n_head: 12,
  n_layer: nLayer,
  n_positions: 1024,
  resid_pdrop: 0.1,
  summary_activation: null,
  summary_first_dropout: 0.1,
  summary_proj_to_labels: true,
  summary_type: "cls_index",
  summary_use_proj: true,
  task_specific_params: { "text-generation": { do_sample: true, max_length: 50 } },
  vocab_size: 50257,
});

interface ClipSizes {
  name: string;
  projection: number;
  text: { hidden: number; intermediate: number; heads: number; layers: number };
  vision: { hidden: number; intermediate: number; heads: number; layers: number; patch: number };
}

const clipConfig = (s: ClipSizes): Record<string, unknown> => {
  const textDict = { hidden_size: s.text.hidden, intermediate_size: s.text.intermediate, num_attention_heads: s.text.heads, num_hidden_layers: s.text.layers, projection_dim: s.projection };
  const visionDict = {
    hidden_size: s.vision.hidden,
    intermediate_size: s.vision.intermediate,
    num_attention_heads: s.vision.heads,
    num_hidden_layers: s.vision.layers,
    patch_size: s.vision.patch,
    projection_dim: s.projection,
  };
  return {
    _name_or_path: s.name,
    architectures: ["CLIPModel"],
    initializer_factor: 1.0,
    logit_scale_init_value: 2.6592,
    model_type: "clip",
    projection_dim: s.projection,
    text_config: {
      _name_or_path: "",
      attention_dropout: 0.0,
      bos_token_id: 0, // sic: the hub files carry CLIPTextConfig's old defaults (transformers 4.31 pools by argmax when eos_token_id is 2)
      dropout: 0.0,
      eos_token_id: 2,
      hidden_act: "quick_gelu",
      initializer_factor: 1.0,
      initializer_range: 0.02,
      layer_norm_eps: 1e-5,
      max_position_embeddings: 77,
      model_type: "clip_text_model",
      pad_token_id: 1,
      vocab_size: 49408,
      ...textDict,
    },
    text_config_dict: textDict,
    torch_dtype: "float32",
    vision_config: {
      _name_or_path: "",
      attention_dropout: 0.0,
      dropout: 0.0,
      hidden_act: "quick_gelu",
      image_size: 224,
      initializer_factor: 1.0,
      initializer_range: 0.02,
      layer_norm_eps: 1e-5,
      model_type: "clip_vision_model",
      num_channels: 3,
      ...visionDict,
    },
    vision_config_dict: visionDict,
  };
};

/** The four config.json objects (parse them with parseGPT2Config / parseCLIPConfig). */
export const REAL_CONFIGS: Readonly<Record<RealModelName, Record<string, unknown>>> = {
  distilgpt2: gpt2Config(6, { _num_labels: 1, id2label: { "0": "LABEL_0" }, label2id: { LABEL_0: 0 } }),
  gpt2: gpt2Config(12, {}),
  "clip-vit-base-patch16": clipConfig({
    name: "openai/clip-vit-base-patch16",
    projection: 512,
    text: { hidden: 512, intermediate: 2048, heads: 8, layers: 12 },
    vision: { hidden: 768, intermediate: 3072, heads: 12, layers: 12, patch: 16 },
  }),
  "clip-vit-large-patch14": clipConfig({
    name: "openai/clip-vit-large-patch14",
    projection: 768,
    text: { hidden: 768, intermediate: 3072, heads: 12, layers: 12 },
    vision: { hidden: 1024, intermediate: 4096, heads: 16, layers: 24, patch: 14 },
  }),
};

/** How a tensor's values are made: `random` uniform with std 0.02 around `center`; the others as named. */
export type Fill = { kind: "random"; center: number } | { kind: "causal" } | { kind: "arange" } | { kind: "const"; value: number };

export interface RandomTensorSpec {
  name: string;
  dtype: Extract<SafeDType, "F32" | "I64">;
  shape: number[];
  fill: Fill;
}

const W: Fill = { kind: "random", center: 0 };
const ONE: Fill = { kind: "random", center: 1 };
const f32 = (name: string, shape: number[], fill: Fill = W): RandomTensorSpec => ({ name, dtype: "F32", shape, fill });
const norm = (prefix: string, C: number): RandomTensorSpec[] => [f32(`${prefix}.weight`, [C], ONE), f32(`${prefix}.bias`, [C])];

function gpt2Tensors(cfg: Record<string, unknown>): RandomTensorSpec[] {
  const [V, P, C, L] = [cfg.vocab_size, cfg.n_positions, cfg.n_embd, cfg.n_layer] as number[];
  const out = [f32("wte.weight", [V!, C!]), f32("wpe.weight", [P!, C!]), ...norm("ln_f", C!)];
  for (let i = 0; i < L!; i++) {
    const h = `h.${i}`;
    out.push(
      ...norm(`${h}.ln_1`, C!),
      f32(`${h}.attn.bias`, [1, 1, P!, P!], { kind: "causal" }),
      f32(`${h}.attn.c_attn.weight`, [C!, 3 * C!]),
      f32(`${h}.attn.c_attn.bias`, [3 * C!]),
      f32(`${h}.attn.c_proj.weight`, [C!, C!]),
      f32(`${h}.attn.c_proj.bias`, [C!]),
      ...norm(`${h}.ln_2`, C!),
      f32(`${h}.mlp.c_fc.weight`, [C!, 4 * C!]),
      f32(`${h}.mlp.c_fc.bias`, [4 * C!]),
      f32(`${h}.mlp.c_proj.weight`, [4 * C!, C!]),
      f32(`${h}.mlp.c_proj.bias`, [C!]),
    );
  }
  return out;
}

function encoderTensors(prefix: string, C: number, F: number, L: number): RandomTensorSpec[] {
  const out: RandomTensorSpec[] = [];
  for (let i = 0; i < L; i++) {
    const l = `${prefix}.encoder.layers.${i}`;
    for (const p of ["k_proj", "v_proj", "q_proj", "out_proj"]) out.push(f32(`${l}.self_attn.${p}.weight`, [C, C]), f32(`${l}.self_attn.${p}.bias`, [C]));
    out.push(...norm(`${l}.layer_norm1`, C), f32(`${l}.mlp.fc1.weight`, [F, C]), f32(`${l}.mlp.fc1.bias`, [F]));
    out.push(f32(`${l}.mlp.fc2.weight`, [C, F]), f32(`${l}.mlp.fc2.bias`, [C]), ...norm(`${l}.layer_norm2`, C));
  }
  return out;
}

function clipTensors(cfg: Record<string, unknown>): RandomTensorSpec[] {
  const t = cfg.text_config as Record<string, number>;
  const v = cfg.vision_config as Record<string, number>;
  const E = cfg.projection_dim as number;
  const [Ct, Tt, Cv] = [t.hidden_size!, t.max_position_embeddings!, v.hidden_size!];
  const Tv = (v.image_size! / v.patch_size!) ** 2 + 1;
  return [
    f32("text_model.embeddings.token_embedding.weight", [t.vocab_size!, Ct]),
    f32("text_model.embeddings.position_embedding.weight", [Tt, Ct]),
    { name: "text_model.embeddings.position_ids", dtype: "I64", shape: [1, Tt], fill: { kind: "arange" } },
    ...encoderTensors("text_model", Ct, t.intermediate_size!, t.num_hidden_layers!),
    ...norm("text_model.final_layer_norm", Ct),
    f32("vision_model.embeddings.class_embedding", [Cv]),
    f32("vision_model.embeddings.patch_embedding.weight", [Cv, v.num_channels!, v.patch_size!, v.patch_size!]),
    f32("vision_model.embeddings.position_embedding.weight", [Tv, Cv]),
    { name: "vision_model.embeddings.position_ids", dtype: "I64", shape: [1, Tv], fill: { kind: "arange" } },
    ...norm("vision_model.pre_layrnorm", Cv),
    ...encoderTensors("vision_model", Cv, v.intermediate_size!, v.num_hidden_layers!),
    ...norm("vision_model.post_layernorm", Cv),
    f32("visual_projection.weight", [E, Cv]),
    f32("text_projection.weight", [E, Ct]),
    f32("logit_scale", [], { kind: "const", value: Math.log(100) }), // the trained value, 4.6052
  ];
}

/** Every tensor of `name`'s model.safetensors (the hub file's keys, shapes and dtypes). */
export function realCheckpointTensors(name: RealModelName): RandomTensorSpec[] {
  const cfg = REAL_CONFIGS[name];
  return cfg.model_type === "gpt2" ? gpt2Tensors(cfg) : clipTensors(cfg);
}

/** FNV-1a of the tensor name mixed with the seed: each tensor draws its own stream. */
function streamKey(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

const HALF_WIDTH = 0.02 * Math.sqrt(3); // uniform on [-a, a] has std a/√3

/** mulberry32's output for counter i: uniform in [0, 1), O(1) at any index. */
function uniformAt(key: number, i: number): number {
  let t = (key + Math.imul(i + 1, 0x6d2b79f5)) | 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/** The value `writeRandomCheckpoint(…, { seed })` writes at flat index `i` of `spec` (as float32 for F32). */
export function randomValueAt(spec: RandomTensorSpec, i: number, seed = 0): number {
  const f = spec.fill;
  switch (f.kind) {
    case "random":
      return Math.fround(f.center + HALF_WIDTH * (2 * uniformAt(streamKey(seed, spec.name), i) - 1));
    case "causal": {
      const P = spec.shape[spec.shape.length - 1]!;
      return i % P <= Math.floor(i / P) % P ? 1 : 0;
    }
    case "arange":
      return i;
    case "const":
      return Math.fround(f.value);
  }
}

/** The whole tensor (one tensor in host memory: the writer pulls these one by one). */
function randomData(spec: RandomTensorSpec, seed: number): Float32Array | Int32Array {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  if (spec.dtype === "I64") return Int32Array.from({ length: n }, (_, i) => randomValueAt(spec, i, seed));
  const out = new Float32Array(n);
  const f = spec.fill;
  if (f.kind === "random") {
    const key = streamKey(seed, spec.name);
    for (let i = 0; i < n; i++) out[i] = f.center + HALF_WIDTH * (2 * uniformAt(key, i) - 1);
  } else {
    for (let i = 0; i < n; i++) out[i] = randomValueAt(spec, i, seed);
  }
  return out;
}

export interface RandomCheckpoint {
  dir: string;
  /** dir/model.safetensors */
  file: string;
  /** Its size in bytes. */
  bytes: number;
  /** Elements written (parameters and buffers). */
  elements: number;
}

/**
 * Writes `dir/config.json` (REAL_CONFIGS[name]) and `dir/model.safetensors` with the hub
 * file's tensors, random values from `seed`, one tensor in host memory at a time (the writer
 * places the file atomically). Needs no GPU.
 */
export async function writeRandomCheckpoint(name: RealModelName, dir: string, { seed = 0 }: { seed?: number } = {}): Promise<RandomCheckpoint> {
  if (!(REAL_MODELS as readonly string[]).includes(name)) {
    throw new RealCheckpointError(`writeRandomCheckpoint: expected one of ${REAL_MODELS.join(", ")} for the model name, got "${String(name)}"`);
  }
  await mkdir(dir, { recursive: true });
  const specs = realCheckpointTensors(name);
  const sources: TensorSource[] = specs.map((s) => ({ name: s.name, dtype: s.dtype, shape: s.shape, data: () => randomData(s, seed) }));
  const file = join(dir, "model.safetensors");
  await writeSafetensorsFrom(file, sources, { "llms-eye": `random weights with the shapes of ${REAL_REPO_IDS[name]}, seed ${seed}` });
  await writeFile(join(dir, "config.json"), `${JSON.stringify(REAL_CONFIGS[name], null, 2)}\n`);
  const elements = specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
  return { dir, file, bytes: (await stat(file)).size, elements };
}

/**
 * `root/<name>-seed<seed>`, written once by writeRandomCheckpoint and reused after: the
 * checkpoint is written into a temporary folder beside it and renamed into place, so a
 * folder of that name is always complete.
 */
export async function cachedRandomCheckpoint(name: RealModelName, root: string, { seed = 0 }: { seed?: number } = {}): Promise<RandomCheckpoint> {
  const dir = join(root, `${name}-seed${seed}`);
  const file = join(dir, "model.safetensors");
  const elements = realCheckpointTensors(name).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
  const found = await stat(file).catch(() => null);
  if (found) return { dir, file, bytes: found.size, elements };
  const tmp = `${dir}.${process.pid}.${Date.now()}.tmp`;
  try {
    await writeRandomCheckpoint(name, tmp, { seed });
    await rename(tmp, dir).catch(async (e: NodeJS.ErrnoException) => {
      // another process placed it first: use theirs
      if (e.code !== "ENOTEMPTY" && e.code !== "EEXIST") throw e;
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return { dir, file, bytes: (await stat(file)).size, elements };
}

/**
 * Runs `fn` and reports the peak resident set size above the RSS just before it. Peak = the
 * larger of process.memoryUsage().rss sampled every `everyMs` by a timer (it fires whenever
 * `fn` awaits) and, when the process's lifetime peak (resourceUsage().maxRSS) grew during
 * `fn`, that new lifetime peak, which catches spikes between samples. On lavapipe the GPU
 * buffers are host memory too, so this counts the uploaded model as well.
 */
export async function measurePeakRss<T>(fn: () => Promise<T>, everyMs = 2): Promise<{ result: T; baseline: number; peakAbove: number; ms: number }> {
  const baseline = process.memoryUsage().rss;
  const maxBefore = process.resourceUsage().maxRSS * 1024;
  let peak = baseline;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, everyMs);
  const t0 = performance.now();
  try {
    const result = await fn();
    const ms = performance.now() - t0;
    peak = Math.max(peak, process.memoryUsage().rss);
    const maxAfter = process.resourceUsage().maxRSS * 1024;
    if (maxAfter > maxBefore) peak = Math.max(peak, maxAfter);
    return { result, baseline, peakAbove: peak - baseline, ms };
  } finally {
    clearInterval(timer);
  }
}
