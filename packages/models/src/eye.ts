// The eye model: GPT-2 made into a vision-language model (DESIGN.md "The eye model").
//   features = avgpool_f(vision_model(pixels).hidden_states[-2][:, 1:])      (B, K, Dv)
//   tokens   = multi_modal_projector(features) = linear_2(gelu(linear_1(x)))  (B, K, D)
//   caption pass: GPT-2 on <image>×K + caption + <|endoftext|>, the placeholders' embeddings
//     replaced in order by the K tokens; LM loss on the caption tokens and <|endoftext|> only,
//     the LM head evaluated only at those positions
//   contrastive: img = image_head(mean_k tokens), txt = text_head(ln_f state at a trailing <image>)
//     InfoNCE(img, txt, logit_scale)  (normalised inside, scale clamped at ln 100)
//   loss = LM + λ·InfoNCE
// Shape letters: B batch, G patch-grid side, f pool factor, K = (G/f)² image tokens, Dv vision
// width, D GPT-2 width, E embedding width, Tc / Tt caption / contrastive sequence lengths.
import { type Tensor, ShapeError, concat, full, tensor } from "@llms-eye/tensor";
import { Linear, Module, Var, ag, constant, noGrad, param } from "@llms-eye/autograd";
import { CLIPVisionTransformer } from "./clip-vision.js";
import { GPT2LMHeadModel } from "./gpt2.js";
import { type EyeConfig, checkEyeConfig, eyeVocab, imageTokenCount } from "./eye-config.js";
import { type EyeBatchIds, eyeBatchIds, placeholderIndex } from "./eye-batch.js";

/** LLaVA's projector: Linear(Dv, D) → GELU → Linear(D, D). */
export class EyeProjector extends Module {
  linear_1: Linear;
  linear_2: Linear;

  constructor(Dv: number, D: number, seed: number) {
    super();
    this.linear_1 = new Linear(Dv, D, { seed, std: Dv ** -0.5 });
    this.linear_2 = new Linear(D, D, { seed: seed + 1, std: D ** -0.5 });
  }

  forward(x: Var | Tensor): Var {
    return this.linear_2.forward(ag.gelu(this.linear_1.forward(x)));
  }
}

export interface EyeLosses {
  /** LM + λ·InfoNCE; lm and infoNCE are its parts (infoNCE absent when λ = 0). */
  loss: Var;
  lm: Var;
  infoNCE?: Var;
  /** Caption tokens the LM loss averaged over. */
  tokens: number;
}

export interface EyeInitOptions {
  seed?: number;
  /** Pretrained parts (their configs must be cfg.vision and cfg.gpt2); built at random otherwise. */
  vision?: CLIPVisionTransformer;
  llm?: GPT2LMHeadModel;
}

export class EyeModel extends Module {
  vision_model: CLIPVisionTransformer;
  multi_modal_projector: EyeProjector;
  language_model: GPT2LMHeadModel;
  image_head: Linear;
  text_head: Linear;
  logit_scale: Var;
  readonly _K: number;

  constructor(
    readonly _cfg: EyeConfig,
    { seed = 0, vision, llm }: EyeInitOptions = {},
  ) {
    super();
    checkEyeConfig(_cfg);
    const D = _cfg.gpt2.nEmbd;
    this.vision_model = vision ?? new CLIPVisionTransformer(_cfg.vision, { seed: seed + 100 });
    this.multi_modal_projector = new EyeProjector(_cfg.vision.hiddenSize, D, seed + 200);
    this.language_model = llm ?? new GPT2LMHeadModel(_cfg.gpt2, { seed: seed + 300 });
    if (this.language_model.config.vocabSize !== _cfg.gpt2.vocabSize) {
      throw new ShapeError(`eye: expected GPT-2 with ${_cfg.gpt2.vocabSize} token rows (the vocabulary + <image>, padded), got ${this.language_model.config.vocabSize}; call resizeTokenEmbeddings first`);
    }
    this.image_head = new Linear(D, _cfg.embedDim, { seed: seed + 400, std: D ** -0.5 });
    this.text_head = new Linear(D, _cfg.embedDim, { seed: seed + 401, std: D ** -0.5 });
    this.logit_scale = param(full([1], Math.log(1 / 0.07))); // CLIP's init, ln(1 / 0.07)
    this._K = imageTokenCount(_cfg);
  }

  /** Image tokens per image. */
  get K(): number {
    return this._K;
  }

  /** True when some vision parameter trains (then features cannot come from a cache). */
  get visionTrains(): boolean {
    return this.vision_model.parameters().some((p) => p.requiresGrad);
  }

  /** pixels (B, 3, S, S) → pooled penultimate patch tokens (B, K, Dv); on the tape only if the vision tower trains. */
  imageFeatures(pixels: Tensor): Var {
    const run = (): Var => {
      const { hiddenStates } = this.vision_model.forward(pixels, { outputLayer: -2 });
      const h = hiddenStates[hiddenStates.length - 1]!; // (B, 1 + G², Dv)
      const [B, T, Dv] = h.shape as [number, number, number];
      const G = Math.round(Math.sqrt(T - 1));
      const f = this._cfg.poolFactor;
      const patches = ag.slice(h, [0, 1], [B, T]); // (B, G², Dv), CLS dropped
      if (f === 1) return patches;
      const grid = ag.reshape(patches, [B, G / f, f, G / f, f, Dv]); // row r = R·f + i, column c = C·f + j
      return ag.reshape(ag.mean(grid, [2, 4]), [B, this._K, Dv]); // (B, K, Dv)
    };
    return this.visionTrains ? run() : noGrad(run);
  }

  /** features (B, K, Dv) → image tokens (B, K, D). */
  imageTokens(features: Var | Tensor): Var {
    const [, K, Dv] = features.shape;
    if (features.shape.length !== 3 || K !== this._K || Dv !== this._cfg.vision.hiddenSize) {
      throw new ShapeError(`eye: expected image features of shape (B, ${this._K}, ${this._cfg.vision.hiddenSize}), got [${features.shape.join(", ")}]; was the feature cache built for another size?`);
    }
    return this.multi_modal_projector.forward(features);
  }

  /**
   * GPT-2's input embeddings for `rows` (host ids, B x T) with the <image> placeholders replaced
   * in order by `tokens` (B, K, D); every row must hold exactly K placeholders.
   */
  embedWithImages(rows: readonly (readonly number[])[], tokens: Var | Tensor): Var {
    const B = rows.length;
    const T = rows[0]?.length ?? 0;
    const D = this._cfg.gpt2.nEmbd;
    if (tokens.shape[0] !== B) throw new ShapeError(`eye: expected image tokens for ${B} rows, got ${tokens.shape[0]}`);
    const index = placeholderIndex(rows, this._cfg.imageTokenId, this._K);
    const ids = tensor(Int32Array.from(rows.flat()), [B * T], "i32");
    const table = ag.concat([this.language_model.transformer.wte.forward(ids), ag.reshape(tokens instanceof Var ? tokens : constant(tokens), [B * this._K, D])], 0); // (B·T + B·K, D)
    return ag.reshape(ag.indexSelect(table, 0, tensor(index, [B * T], "i32")), [B, T, D]); // (B, T, D)
  }

  /** The LM loss of captions given their image tokens (mean over caption tokens + <|endoftext|>). */
  lmLoss(batch: EyeBatchIds, tokens: Var): Var {
    const inputsEmbeds = this.embedWithImages(batch.captionRows, tokens);
    const { logits } = this.language_model.forward({ inputsEmbeds, logitsAt: batch.lmRows }); // (N, V)
    return ag.crossEntropy(logits!, batch.lmTargets, { classes: eyeVocab(this._cfg) }); // padding rows are no class
  }

  /** Image embeddings (B, E), not normalised: image_head(mean over the K tokens). */
  imageEmbeds(tokens: Var): Var {
    return this.image_head.forward(ag.mean(tokens, 1));
  }

  /** Text embeddings (B, E), not normalised: text_head(ln_f state at the trailing <image>). */
  textEmbeds(textIds: Tensor, textRows: Tensor): Var {
    const { lastHiddenState } = this.language_model.forward({ ids: textIds, skipLogits: true }); // (B, Tt, D)
    const [B, Tt, D] = lastHiddenState.shape as [number, number, number];
    return this.text_head.forward(ag.indexSelect(ag.reshape(lastHiddenState, [B * Tt, D]), 0, textRows)); // (B, E)
  }

  /** The batch layout for tokenised captions (see eye-batch.ts). */
  batchIds(captions: readonly (readonly number[])[]): EyeBatchIds {
    return eyeBatchIds(captions, { imageId: this._cfg.imageTokenId, eosId: this._cfg.eosTokenId, K: this._K, maxPositions: this._cfg.gpt2.nPositions });
  }

  /** Training losses for image features (B, K, Dv) and their captions' token ids. */
  forward(features: Var | Tensor, captions: readonly (readonly number[])[], { lambda = 1 }: { lambda?: number } = {}): EyeLosses {
    const batch = this.batchIds(captions);
    if (features.shape[0] !== batch.B) throw new ShapeError(`eye: expected one caption per image, got ${batch.B} captions for ${features.shape[0]} images`);
    const tokens = this.imageTokens(features);
    const lm = this.lmLoss(batch, tokens);
    const tokensCount = batch.lmRows.shape[0]!;
    if (lambda === 0) return { loss: lm, lm, tokens: tokensCount };
    const nce = ag.infoNCE(this.imageEmbeds(tokens), this.textEmbeds(batch.textIds, batch.textRows), this.logit_scale);
    return { loss: ag.add(lm, ag.mul(nce, full([1], lambda))), lm, infoNCE: nce, tokens: tokensCount };
  }

  /**
   * Freezes the vision tower, then unfreezes its top n used layers (those below the penultimate
   * output); n = all of them (or "all") trains the whole tower, embeddings included (tiny's random
   * ViT learns from scratch this way with `--unfreeze-vision 2`; by default it stays frozen).
   */
  setVisionTrainable(unfreezeTop: number | "all"): this {
    const used = this._cfg.vision.numHiddenLayers - 1;
    const n = unfreezeTop === "all" ? used : unfreezeTop;
    if (!Number.isInteger(n) || n < 0 || n > used) throw new RangeError(`eye: expected --unfreeze-vision between 0 and ${used} (the layers below the penultimate output), got ${unfreezeTop}`);
    this.vision_model.requiresGrad(n === used);
    this.vision_model.encoder.layers.slice(used - n, used).forEach((l) => l.requiresGrad(true));
    return this;
  }
}

/**
 * Adds rows to a GPT-2's token embeddings (HF's resize_token_embeddings): each new row is the
 * mean of the existing ones. The tied LM head follows (it is the same parameter).
 */
export function resizeTokenEmbeddings(model: GPT2LMHeadModel, vocabSize: number): void {
  const wte = model.transformer.wte;
  const V = wte.weight.shape[0]!;
  if (vocabSize < V) throw new RangeError(`resizeTokenEmbeddings: expected at least the current ${V} rows, got ${vocabSize}`);
  if (!model.config.tieWordEmbeddings) throw new ShapeError("resizeTokenEmbeddings: expected a tied LM head (tie_word_embeddings = true)");
  if (vocabSize === V) return;
  const old = wte.weight.value;
  const mean = noGrad(() => ag.mean(wte.weight, 0, true)).value; // (1, D)
  const rows = Array.from({ length: vocabSize - V }, () => mean);
  wte.weight = param(concat([old, ...rows], 0)); // (V', D)
  mean.dispose();
  old.dispose();
  model.config.vocabSize = vocabSize;
}

