// Hugging Face's CLIPModel (transformers 4.31): both towers, their projections into the shared
// embedding space and the learned temperature, parameter names verbatim:
//   text_model.*  vision_model.*  visual_projection.weight [E, Cv]  text_projection.weight [E, Ct]  logit_scale []
//   logits_per_image (Bi, Bt) = exp(logit_scale) · normalize(image_embeds) · normalize(text_embeds)ᵀ
// CLIPVisionModel / CLIPTextModel (clip-vision.ts, clip-text.ts) load one tower of the same
// checkpoint and read only that tower's tensors.
// Shape letters: Bi images, Bt texts, C a tower's width, E projection dim.
import { join } from "node:path";
import { type Tensor, full, tensor } from "@llms-eye/tensor";
import { type Var, type Linear, Module, ag, param, skipInit } from "@llms-eye/autograd";
import { type CLIPInitOptions, readCLIPConfig, skipPositionIds } from "./clip-encoder.js";
import { type CLIPTextForwardOptions, type CLIPTextOutput, type TokenRows, CLIPTextTransformer, textProjection } from "./clip-text.js";
import { type CLIPVisionForwardOptions, type CLIPVisionOutput, CLIPVisionTransformer, visualProjection } from "./clip-vision.js";
import type { CLIPConfig } from "./config.js";
import { loadPretrained } from "./checkpoint.js";

export interface CLIPOutput {
  /** (Bi, Bt) scaled cosine similarities; logitsPerText is its transpose (Bt, Bi). */
  logitsPerImage: Var;
  logitsPerText: Var;
  /** (Bi, E), (Bt, E), not normalised. */
  imageEmbeds: Var;
  textEmbeds: Var;
  visionOutput: CLIPVisionOutput;
  textOutput: CLIPTextOutput;
}

/** Rows of x (N, E) scaled to unit length: x · exp(-½ log Σx²). */
function normalize(x: Var): Var {
  return ag.mul(x, ag.exp(ag.mul(ag.log(ag.sum(ag.mul(x, x), -1, true)), full([1], -0.5)))); // (N, E)
}

export class CLIPModel extends Module {
  text_model: CLIPTextTransformer;
  vision_model: CLIPVisionTransformer;
  visual_projection: Linear;
  text_projection: Linear;
  logit_scale: Var;

  /** A full CLIPModel from `dir` (config.json + model.safetensors), in eval mode. */
  static async fromPretrained(dir: string): Promise<CLIPModel> {
    const cfg = await readCLIPConfig(dir);
    const model = skipInit(() => new CLIPModel(cfg)).eval();
    return loadPretrained(model, join(dir, "model.safetensors"), { rename: skipPositionIds });
  }

  constructor(
    readonly _cfg: CLIPConfig,
    init: CLIPInitOptions = {},
  ) {
    super();
    const seed = init.seed ?? 0;
    this.text_model = new CLIPTextTransformer(_cfg.text, { ...init, seed: seed + 10_000 });
    this.vision_model = new CLIPVisionTransformer(_cfg.vision, { ...init, seed });
    this.visual_projection = visualProjection(_cfg.vision.hiddenSize, _cfg.projectionDim, { ...init, seed: seed + 1000 });
    this.text_projection = textProjection(_cfg.text.hiddenSize, _cfg.projectionDim, { ...init, seed: seed + 1001 });
    this.logit_scale = param(tensor([_cfg.logitScaleInitValue], []));
  }

  /** HF's get_image_features: visual_projection(pooler_output), (Bi, E). */
  getImageFeatures(pixels: Var | Tensor): Var {
    return this.visual_projection.forward(this.vision_model.forward(pixels).poolerOutput!);
  }

  /** HF's get_text_features: text_projection(pooler_output at the end-of-text token), (Bt, E). */
  getTextFeatures(inputIds: TokenRows, opts: Omit<CLIPTextForwardOptions, "outputLayer"> = {}): Var {
    return this.text_projection.forward(this.text_model.forward(inputIds, opts).poolerOutput!);
  }

  /** Both towers and the similarity logits, as HF's CLIPModel.forward (no loss). */
  forward(pixels: Var | Tensor, inputIds: TokenRows, opts: Omit<CLIPTextForwardOptions, "outputLayer"> = {}): CLIPOutput {
    const visionOutput = this.vision_model.forward(pixels);
    const textOutput = this.text_model.forward(inputIds, opts);
    const imageEmbeds = this.visual_projection.forward(visionOutput.poolerOutput!);
    const textEmbeds = this.text_projection.forward(textOutput.poolerOutput!);
    const sims = ag.matmul(normalize(textEmbeds), normalize(imageEmbeds), { transB: true }); // (Bt, Bi)
    const logitsPerText = ag.mul(sims, ag.exp(this.logit_scale));
    const logitsPerImage = ag.permute(logitsPerText, [1, 0]); // (Bi, Bt)
    return { logitsPerImage, logitsPerText, imageEmbeds, textEmbeds, visionOutput, textOutput };
  }
}

export type { CLIPVisionForwardOptions, CLIPTextForwardOptions };
