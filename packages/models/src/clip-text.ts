// CLIP's text tower, Hugging Face's CLIPTextTransformer (transformers 4.31), parameter names
// verbatim:
//   x = token_embedding(input_ids) + position_embedding(0..T-1)
//   hidden_states = [x, layer 0 output, …, layer L-1 output]   (causal attention, padding masked)
//   last_hidden_state = final_layer_norm(hidden_states[L])
//   pooler_output = last_hidden_state[b, position of the end-of-text token in row b]
//   text_embeds = text_projection(pooler_output)
// Shape letters: B batch, T tokens, V vocabulary, C hidden size, E projection dim.
import { join } from "node:path";
import { type Tensor, ShapeError, tensor } from "@llms-eye/tensor";
import { type Var, Embedding, LayerNorm, Linear, Module, ag, skipInit } from "@llms-eye/autograd";
import { type CLIPInitOptions, CLIPEncoder, checkEncoderConfig, layersFor, readCLIPConfig, skipPositionIds } from "./clip-encoder.js";
import { loadPretrained } from "./checkpoint.js";
import type { CLIPTextConfig } from "./config.js";

/** Token ids, one row per text, all rows the same length (pad with the end-of-text token, as CLIP's tokenizer does). */
export type TokenRows = readonly (readonly number[])[];

export class CLIPTextEmbeddings extends Module {
  token_embedding: Embedding;
  position_embedding: Embedding;

  constructor(cfg: CLIPTextConfig, { seed = 0, factor = 1 }: CLIPInitOptions = {}) {
    super();
    this.token_embedding = new Embedding(cfg.vocabSize, cfg.hiddenSize, { seed, std: 0.02 * factor });
    this.position_embedding = new Embedding(cfg.maxPositionEmbeddings, cfg.hiddenSize, { seed: seed + 1, std: 0.02 * factor });
  }

  /** ids (B, T) i32 → (B, T, C). */
  forward(ids: Tensor): Var {
    const T = ids.shape[1]!;
    const pos = ag.slice(this.position_embedding.weight, [0], [T]); // (T, C)
    return ag.add(this.token_embedding.forward(ids), pos); // (B, T, C)
  }
}

export interface CLIPTextForwardOptions {
  /** (B, T), 1 = token, 0 = padding (HF's attention_mask): no token attends to padding. */
  attentionMask?: TokenRows;
  /**
   * Stop after hidden_states[outputLayer] (0 = embeddings, L = the last layer; negative counts
   * from the end). Layers beyond it are not run; the outputs after the encoder are then null.
   */
  outputLayer?: number;
}

export interface CLIPTextOutput {
  /** hidden_states[0..k]: (B, T, C) each (no final_layer_norm, as HF). */
  hiddenStates: Var[];
  /** (B, T, C) = final_layer_norm(the last layer's output); null when stopped early. */
  lastHiddenState: Var | null;
  /** (B, C), last_hidden_state at each row's end-of-text token; null when stopped early. */
  poolerOutput: Var | null;
}

export class CLIPTextTransformer extends Module {
  embeddings: CLIPTextEmbeddings;
  encoder: CLIPEncoder;
  final_layer_norm: LayerNorm;

  constructor(
    readonly _cfg: CLIPTextConfig,
    init: CLIPInitOptions = {},
  ) {
    super();
    checkEncoderConfig("CLIPTextTransformer", _cfg);
    const seed = init.seed ?? 0;
    this.embeddings = new CLIPTextEmbeddings(_cfg, { ...init, seed });
    this.encoder = new CLIPEncoder(_cfg, { ...init, seed: seed + 10 });
    this.final_layer_norm = new LayerNorm(_cfg.hiddenSize, _cfg.layerNormEps);
  }

  forward(inputIds: TokenRows, opts: CLIPTextForwardOptions = {}): CLIPTextOutput {
    const who = "CLIPTextTransformer";
    const { vocabSize: V, maxPositionEmbeddings: maxT, numHiddenLayers: L, eosTokenId } = this._cfg;
    const [B, T] = checkRows(who, "input_ids", inputIds, maxT);
    const flat = Int32Array.from(inputIds.flat());
    const bad = flat.findIndex((id) => !(id >= 0 && id < V));
    if (bad >= 0) throw new ShapeError(`${who}: expected token ids in [0, ${V}) for input_ids, got ${flat[bad]} at row ${Math.floor(bad / T)}, column ${bad % T}`);
    let keyPaddingMask: Tensor | undefined;
    if (opts.attentionMask) {
      const [mb, mt] = checkRows(who, "attention_mask", opts.attentionMask, maxT);
      if (mb !== B || mt !== T) throw new ShapeError(`${who}: expected attention_mask of shape [${B}, ${T}] like input_ids, got [${mb}, ${mt}]`);
      keyPaddingMask = tensor(Int32Array.from(opts.attentionMask.flat(), (m) => (m ? 1 : 0)), [B, T], "i32");
    }
    // Pool at the end-of-text token of each row. HF 4.31 takes input_ids.argmax(-1), the first
    // occurrence of the highest id, which is <|endoftext|> (49407, the last id) in CLIP's
    // vocabulary. The openai checkpoints' configs still say eos_token_id 2 (an old default), so
    // for them we use that argmax rule, as later transformers do; otherwise the first eos token.
    const legacyEos = eosTokenId === 2;
    const eos = inputIds.map((row, b) => {
      const t = legacyEos ? row.indexOf(Math.max(...row)) : row.indexOf(eosTokenId);
      if (t < 0) throw new ShapeError(`${who}: expected the end-of-text token ${eosTokenId} in every row of input_ids (the text is pooled there), row ${b} has none; end each text with it`);
      return b * T + t;
    });

    const upTo = layersFor(who, opts.outputLayer, L);
    const ids = tensor(flat, [B, T], "i32");
    const hiddenStates = this.encoder.forward(this.embeddings.forward(ids), upTo, { causal: true, ...(keyPaddingMask ? { keyPaddingMask } : {}) });
    if (upTo < L) return { hiddenStates, lastHiddenState: null, poolerOutput: null };
    const last = this.final_layer_norm.forward(hiddenStates[L]!); // (B, T, C)
    const C = last.shape[2]!;
    const pooled = ag.indexSelect(ag.reshape(last, [B * T, C]), 0, tensor(Int32Array.from(eos), [B], "i32")); // (B, C)
    return { hiddenStates, lastHiddenState: last, poolerOutput: pooled };
  }
}

/** [B, T] of a rectangular, non-empty list of rows, T ≤ maxT. */
function checkRows(who: string, name: string, rows: TokenRows, maxT: number): [number, number] {
  const B = rows.length;
  const T = rows[0]?.length ?? 0;
  if (B === 0 || T === 0) throw new ShapeError(`${who}: expected at least one row of at least one token for ${name}, got ${B} rows of ${T}`);
  const ragged = rows.findIndex((r) => r.length !== T);
  if (ragged >= 0) throw new ShapeError(`${who}: expected rows of equal length ${T} for ${name}, got ${rows[ragged]!.length} in row ${ragged}; pad the batch`);
  if (T > maxT) throw new ShapeError(`${who}: expected at most max_position_embeddings = ${maxT} tokens per row for ${name}, got ${T}; truncate the text`);
  return [B, T];
}

/** text_projection [E, C], no bias. */
export const textProjection = (C: number, E: number, { seed = 0, factor = 1 }: CLIPInitOptions = {}): Linear =>
  new Linear(C, E, { bias: false, seed, std: C ** -0.5 * factor });

export interface CLIPTextModelOutput extends CLIPTextOutput {
  /** (B, E) = text_projection(pooler_output), not normalised; null when stopped early. */
  textEmbeds: Var | null;
}

/** The checkpoint keys the text-only model reads. */
export const CLIP_TEXT_KEYS = (key: string): boolean => key.startsWith("text_model.") || key === "text_projection.weight";

/** HF's CLIPTextModelWithProjection: `text_model.*` + `text_projection.weight`. */
export class CLIPTextModel extends Module {
  text_model: CLIPTextTransformer;
  text_projection: Linear;

  /**
   * The text side of a CLIPModel directory (config.json + model.safetensors), in eval mode:
   * only `text_model.*` and `text_projection.weight` are read from the file.
   */
  static async fromPretrained(dir: string): Promise<CLIPTextModel> {
    const cfg = await readCLIPConfig(dir);
    const model = skipInit(() => new CLIPTextModel(cfg.text)).eval();
    return loadPretrained(model, join(dir, "model.safetensors"), { select: CLIP_TEXT_KEYS, rename: skipPositionIds });
  }

  constructor(
    readonly _cfg: CLIPTextConfig,
    init: CLIPInitOptions = {},
  ) {
    super();
    this.text_model = new CLIPTextTransformer(_cfg, init);
    this.text_projection = textProjection(_cfg.hiddenSize, _cfg.projectionDim, { ...init, seed: (init.seed ?? 0) + 1001 });
  }

  forward(inputIds: TokenRows, opts: CLIPTextForwardOptions = {}): CLIPTextModelOutput {
    const out = this.text_model.forward(inputIds, opts);
    return { ...out, textEmbeds: out.poolerOutput ? this.text_projection.forward(out.poolerOutput) : null };
  }
}
