// GPT-2 as Hugging Face's GPT2LMHeadModel (transformers 4.31), parameter names verbatim:
//   transformer.{wte, wpe, h.N.{ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj}, ln_f}
// Conv1D weights are [in, out] (y = x·W + b); the LM head is tied to transformer.wte. Pre-LN blocks:
//   x = x + c_proj(attention(c_attn(ln_1 x)));  x = x + mlp.c_proj(gelu_tanh(mlp.c_fc(ln_2 x)))
// Shape letters: B batch, T new tokens, P cached (past) tokens, S = P + T keys, C n_embd,
// H n_head, D = C / H head size, F n_inner, V vocab size, N rows of logits.
// Everything runs on the autograd tape (wrap inference in noGrad and tidy).
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type Tensor, ShapeError, concat, full, indexSelect, slice, tensor } from "@llms-eye/tensor";
import { type Var, Embedding, LayerNorm, Linear, Module, ag, skipInit } from "@llms-eye/autograd";
import { type GPT2Config, parseGPT2Config } from "./config.js";
import { loadPretrained } from "./checkpoint.js";

/** Activations we implement (all the tanh form of GELU); anything else is refused. */
export const GPT2_ACTIVATIONS = ["gelu_new", "gelu_pytorch_tanh"] as const;

/**
 * Keys and values of every layer, (B, H, P, D), grown by each forward that is given the cache.
 * The cache owns its tensors: a forward releases the ones it replaces (so backward through a
 * cached forward must run before the next one), and dispose() releases the rest.
 */
export class KVCache {
  private readonly kv: ([Tensor, Tensor] | null)[];

  constructor(readonly nLayer: number) {
    this.kv = Array.from({ length: nLayer }, () => null);
  }

  /** P, the number of cached positions (0 when empty). */
  get length(): number {
    return this.kv[0]?.[0].shape[2] ?? 0;
  }

  /** Layer l's cached keys and values, or null before the first forward. */
  get(l: number): [Tensor, Tensor] | null {
    return this.kv[l] ?? null;
  }

  /** Stores layer l's keys and values (taken out of tidy scopes), releasing the previous ones. */
  set(l: number, k: Tensor, v: Tensor): void {
    const old = this.kv[l];
    this.kv[l] = [k.keep(), v.keep()];
    if (old && old[0] !== k) old[0].dispose();
    if (old && old[1] !== v) old[1].dispose();
  }

  /** Reorders the batch rows (beam search): new row i = old row index[i]; index i32 [B']. */
  reorder(index: Tensor): void {
    this.kv.forEach((e, l) => {
      if (e) this.set(l, indexSelect(e[0], 0, index), indexSelect(e[1], 0, index));
    });
  }

  dispose(): void {
    for (const e of this.kv) e?.forEach((t) => t.dispose());
    this.kv.fill(null);
  }
}

export interface GPT2InitOptions {
  /** Seed of the random init (default 0). */
  seed?: number;
  /** initializer_range (default 0.02); residual projections get std / √(2·n_layer), as HF. */
  std?: number;
}

export class GPT2Attention extends Module {
  c_attn: Linear;
  c_proj: Linear;

  constructor(readonly _cfg: GPT2Config, { seed = 0, std = 0.02 }: GPT2InitOptions = {}) {
    super();
    const C = _cfg.nEmbd;
    this.c_attn = new Linear(C, 3 * C, { layout: "in_out", seed, std });
    this.c_proj = new Linear(C, C, { layout: "in_out", seed: seed + 1, std: std / Math.sqrt(2 * _cfg.nLayer) });
  }

  /** x (B, T, C) → (B, T, C); with a cache, attends to its P positions too and appends this layer's k, v. */
  forward(x: Var, layer: number, mask?: Tensor, cache?: KVCache): Var {
    const [B, T, C] = x.shape as [number, number, number];
    const H = this._cfg.nHead;
    const D = C / H;
    const qkv = ag.permute(ag.reshape(this.c_attn.forward(x), [B, T, 3, H, D]), [2, 0, 3, 1, 4]); // (3, B, H, T, D)
    const [q, kNew, vNew] = [0, 1, 2].map((i) => ag.reshape(ag.slice(qkv, [i], [i + 1]), [B, H, T, D])) as [Var, Var, Var]; // (B, H, T, D)
    const past = cache?.get(layer);
    const k = past ? ag.concat([past[0], kNew], 2) : kNew; // (B, H, S, D)
    const v = past ? ag.concat([past[1], vNew], 2) : vNew; // (B, H, S, D)
    cache?.set(layer, k.value, v.value);
    // causal aligns the T queries to the END of the S keys: query t sees keys ≤ P + t
    const y = ag.attention(q, k, v, { causal: true, ...(mask ? { keyPaddingMask: mask } : {}) }); // (B, H, T, D)
    return this.c_proj.forward(ag.reshape(ag.permute(y, [0, 2, 1, 3]), [B, T, C])); // (B, T, C)
  }
}

export class GPT2MLP extends Module {
  c_fc: Linear;
  c_proj: Linear;

  constructor(cfg: GPT2Config, { seed = 0, std = 0.02 }: GPT2InitOptions = {}) {
    super();
    const F = cfg.nInner ?? 4 * cfg.nEmbd;
    this.c_fc = new Linear(cfg.nEmbd, F, { layout: "in_out", seed, std });
    this.c_proj = new Linear(F, cfg.nEmbd, { layout: "in_out", seed: seed + 1, std: std / Math.sqrt(2 * cfg.nLayer) });
  }

  /** (B, T, C) → (B, T, F) → (B, T, C). */
  forward(x: Var): Var {
    return this.c_proj.forward(ag.gelu(this.c_fc.forward(x)));
  }
}

export class GPT2Block extends Module {
  ln_1: LayerNorm;
  attn: GPT2Attention;
  ln_2: LayerNorm;
  mlp: GPT2MLP;

  constructor(cfg: GPT2Config, { seed = 0, std = 0.02 }: GPT2InitOptions = {}) {
    super();
    this.ln_1 = new LayerNorm(cfg.nEmbd, cfg.layerNormEpsilon);
    this.attn = new GPT2Attention(cfg, { seed, std });
    this.ln_2 = new LayerNorm(cfg.nEmbd, cfg.layerNormEpsilon);
    this.mlp = new GPT2MLP(cfg, { seed: seed + 2, std });
  }

  forward(x: Var, layer: number, mask?: Tensor, cache?: KVCache): Var {
    const h = ag.add(x, this.attn.forward(this.ln_1.forward(x), layer, mask, cache));
    return ag.add(h, this.mlp.forward(this.ln_2.forward(h)));
  }
}

export interface GPT2Input {
  /** i32 (B, T) token ids; give exactly one of ids and inputsEmbeds. */
  ids?: Tensor;
  /** (B, T, C) token embeddings used in place of wte(ids) (the VLM injects image tokens). */
  inputsEmbeds?: Var | Tensor;
  /** i32/u32 (B, S) key padding mask, 1 keep / 0 pad, covering the cached positions too (as HF). */
  attentionMask?: Tensor;
  /** i32 (B, T) or (1, T); default P, P+1, …, P+T-1 (as HF: left-padded rows need them from the mask). */
  positionIds?: Tensor;
  /** Attends to the cached positions and appends the new keys and values (in place). */
  cache?: KVCache;
  /** Return hiddenStates (HF's output_hidden_states). */
  outputHiddenStates?: boolean;
  /** i32 [N] flat row indices into B·T: the LM head runs on those rows only, logits (N, V). */
  logitsAt?: Tensor;
  /** Skip the LM head (no logits, no loss): for callers that need hidden states only. */
  skipLogits?: boolean;
  /** i32 (B, T), HF semantics: position t predicts labels[t + 1]; -100 is ignored; mean over the rest. */
  labels?: Tensor;
}

export interface GPT2Output {
  /** (B, T, V), or (N, V) with logitsAt. */
  logits?: Var;
  /** ln_f(last block output), (B, T, C). */
  lastHiddenState: Var;
  /** HF order, n_layer + 1 entries: [0] = wte + wpe, [i] = block i-1's output, last = ln_f(last block). */
  hiddenStates?: Var[];
  /** Mean cross-entropy (one element) when labels are given. */
  loss?: Var;
  cache?: KVCache;
}

export class GPT2Model extends Module {
  wte: Embedding;
  wpe: Embedding;
  h: GPT2Block[];
  ln_f: LayerNorm;

  constructor(readonly _cfg: GPT2Config, { seed = 0, std = 0.02 }: GPT2InitOptions = {}) {
    super();
    this.wte = new Embedding(_cfg.vocabSize, _cfg.nEmbd, { seed, std });
    this.wpe = new Embedding(_cfg.nPositions, _cfg.nEmbd, { seed: seed + 1, std });
    this.h = Array.from({ length: _cfg.nLayer }, (_, l) => new GPT2Block(_cfg, { seed: seed + 10 + 4 * l, std }));
    this.ln_f = new LayerNorm(_cfg.nEmbd, _cfg.layerNormEpsilon);
  }

  /** Every hidden state in HF's order (see GPT2Output.hiddenStates); the last is ln_f'd. */
  forward(input: GPT2Input): Var[] {
    const who = "GPT2Model";
    const { ids, inputsEmbeds, attentionMask, cache } = input;
    if (!ids === !inputsEmbeds) throw new ShapeError(`${who}: expected exactly one of ids and inputsEmbeds, got ${ids ? "both" : "neither"}`);
    const shape = ids ? ids.shape : inputsEmbeds!.shape;
    if (ids && (ids.rank !== 2 || ids.dtype !== "i32")) throw new ShapeError(`${who}: expected i32 ids of shape (B, T), got ${ids.dtype} [${ids.shape.join(", ")}]`);
    if (!ids && (shape.length !== 3 || shape[2] !== this._cfg.nEmbd)) {
      throw new ShapeError(`${who}: expected inputsEmbeds of shape (B, T, ${this._cfg.nEmbd}), got [${shape.join(", ")}]`);
    }
    const [B, T] = shape as [number, number];
    const P = cache?.length ?? 0;
    if (P + T > this._cfg.nPositions) {
      throw new ShapeError(`${who}: expected at most n_positions = ${this._cfg.nPositions} positions, got ${P + T} (${P} cached + ${T} new); shorten the input`);
    }
    if (attentionMask && (attentionMask.rank !== 2 || attentionMask.shape[0] !== B || attentionMask.shape[1] !== P + T)) {
      throw new ShapeError(`${who}: expected attentionMask of shape [${B}, ${P + T}] (B, cached + new positions), got [${attentionMask.shape.join(", ")}]`);
    }
    const pid = input.positionIds;
    if (pid && (pid.rank !== 2 || pid.dtype !== "i32" || (pid.shape[0] !== B && pid.shape[0] !== 1) || pid.shape[1] !== T)) {
      throw new ShapeError(`${who}: expected i32 positionIds of shape [${B}, ${T}] or [1, ${T}], got ${pid.dtype} [${pid.shape.join(", ")}]`);
    }
    const pos = pid ?? tensor(Int32Array.from({ length: T }, (_, t) => P + t), [1, T], "i32"); // (1, T)
    let x = ag.add(ids ? this.wte.forward(ids) : inputsEmbeds!, this.wpe.forward(pos)); // (B, T, C)
    const states = [x];
    this.h.forEach((block, l) => {
      x = block.forward(x, l, attentionMask, cache);
      states.push(x);
    });
    states[states.length - 1] = this.ln_f.forward(x); // HF applies ln_f before appending the last state
    return states;
  }
}

export class GPT2LMHeadModel extends Module {
  transformer: GPT2Model;
  /** Only for checkpoints with tie_word_embeddings = false; otherwise the head is transformer.wte. */
  lm_head: Linear | null;

  /** config.json + model.safetensors of `dir`, in eval mode. */
  static async fromPretrained(dir: string): Promise<GPT2LMHeadModel> {
    const file = join(dir, "config.json");
    const cfg = parseGPT2Config(JSON.parse(await readFile(file, "utf8")) as unknown, file);
    const model = skipInit(() => new GPT2LMHeadModel(cfg)).eval();
    return loadPretrained(model, join(dir, "model.safetensors"), { rename: (k: string) => gpt2CheckpointKey(k, cfg.tieWordEmbeddings) });
  }

  constructor(readonly config: GPT2Config, init: GPT2InitOptions = {}) {
    super();
    if (!(GPT2_ACTIVATIONS as readonly string[]).includes(config.activation)) {
      throw new ShapeError(`GPT2LMHeadModel: expected activation_function "gelu_new" or "gelu_pytorch_tanh" (GELU, tanh form), got "${config.activation}"`);
    }
    if (config.nEmbd % config.nHead !== 0) throw new ShapeError(`GPT2LMHeadModel: expected n_embd divisible by n_head, got ${config.nEmbd} and ${config.nHead}`);
    this.transformer = new GPT2Model(config, init);
    this.lm_head = config.tieWordEmbeddings ? null : new Linear(config.nEmbd, config.vocabSize, { bias: false, seed: (init.seed ?? 0) + 5, std: init.std ?? 0.02 });
  }

  /** An empty KV cache for this model. */
  newCache(): KVCache {
    return new KVCache(this.config.nLayer);
  }

  forward(input: GPT2Input): GPT2Output {
    const states = this.transformer.forward(input);
    const last = states[states.length - 1]!; // (B, T, C)
    const out: GPT2Output = { lastHiddenState: last };
    if (input.outputHiddenStates) out.hiddenStates = states;
    if (input.cache) out.cache = input.cache;
    if (input.skipLogits) return out;
    const [B, T, C] = last.shape as [number, number, number];
    const rows = input.logitsAt ? ag.indexSelect(ag.reshape(last, [B * T, C]), 0, input.logitsAt) : last; // (N, C) or (B, T, C)
    out.logits = this.lm_head ? this.lm_head.forward(rows) : ag.matmul(rows, this.transformer.wte.weight, { transB: true }); // (N, V) or (B, T, V)
    if (input.labels) out.loss = ag.crossEntropy(ag.reshape(out.logits, [-1, this.config.vocabSize]), shiftedTargets(input.labels, input.logitsAt));
    return out;
  }
}

/** HF's label shift as flat targets: row b·T + t predicts labels[b, t+1]; last column -100. */
function shiftedTargets(labels: Tensor, logitsAt?: Tensor): Tensor {
  if (labels.rank !== 2 || labels.dtype !== "i32") throw new ShapeError(`GPT2LMHeadModel: expected i32 labels of shape (B, T), got ${labels.dtype} [${labels.shape.join(", ")}]`);
  const [B, T] = labels.shape as [number, number];
  const flat = (T > 1 ? concat([slice(labels, [0, 1], [B, T]), full([B, 1], -100, "i32")], 1) : full([B, 1], -100, "i32")).reshape([B * T]); // (B·T)
  return logitsAt ? indexSelect(flat, 0, logitsAt) : flat;
}

/**
 * Checkpoint key → our parameter name: GPT2Model checkpoints (the hub's gpt2, distilgpt2) have
 * no "transformer." prefix; the tied lm_head.weight and the attention buffers (attn.bias,
 * attn.masked_bias) are ignored (null).
 */
export function gpt2CheckpointKey(key: string, tied = true): string | null {
  if (key === "lm_head.weight") return tied ? null : key;
  if (/(^|\.)attn\.(bias|masked_bias)$/.test(key)) return null;
  return key.startsWith("transformer.") ? key : `transformer.${key}`;
}

