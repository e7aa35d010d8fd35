// train-step, op `train_step_eye`: one training step of the models package's EyeModel on cached
// image features (DESIGN.md "The eye model"), random init. Full preset: the `mini` size —
// distilgpt2's GPT-2 (6 layers, 768 wide, 12 heads, vocab 50258 with <image>, 1024 positions),
// the projector Linear(768, 768) → GELU → Linear(768, 768), heads Linear(768, 256) x2 and the
// logit scale; CLIP ViT-B/16 is the (frozen) tower, built with zeros (skipInit) since it never
// runs: a step's input is its cached features (B = 8, K = 49, Dv = 768, random normals) and 8
// random captions of 12 tokens. Step = EyeModel.forward(features, captions, {lambda: 1}) (caption
// pass K + L + 1 = 62 positions with the LM head at the 13 target rows of each caption,
// contrastive pass L + 2 = 14 positions, InfoNCE) + backward + AdamW over every trainable
// parameter, grouped as the trainer does (GPT-2 / the rest, each with and without weight decay;
// mini's learning rates; no gradient clipping). --quick and tiny use the tiny size.
// Work: 6 flops per matmul parameter per token of each pass (LM head rows only where evaluated,
// projector on the K image tokens, heads on B rows) + causal attention as in train_step_gpt2;
// items = caption tokens + <|endoftext|>, so items/s is tokens/s.
// Validation: the LM part of the first loss is within 0.5 of ln(vocab) (near-uniform logits at
// GPT-2's init), the losses are finite, and a second step on the same batch lowers the loss.
import { type Tensor, device, randArray, randnArray, tensor, tidy } from "@llms-eye/tensor";
import { AdamW, type Var, backward, skipInit } from "@llms-eye/autograd";
import {
  CLIPVisionTransformer, EYE_EOS_ID, EYE_IMAGE_ID, EYE_VOCAB, type EyeConfig, EyeModel, REAL_CONFIGS,
  checkEyeConfig, imageTokenCount, parseCLIPConfig, parseGPT2Config, tinyEyeConfig,
} from "@llms-eye/models";
import type { OurCase, Preset } from "./bench.js";
import { type OpSpec, ValidationError } from "./harness.js";

export type EyeStepSpec = Extract<OpSpec, { op: "train_step_eye" }>;

/** AdamW as `eye train` sets it up for mini (lr: GPT-2; projectorLr: projector, heads, logit scale). */
export const EYE_OPT = { lr: 5e-5, projectorLr: 1e-3, weightDecay: 0.01, beta2: 0.98 } as const;

/** The mini size's config as buildEyeModel makes it (distilgpt2 + <image>, CLIP ViT-B/16's vision tower). */
export function miniEyeConfig(): EyeConfig {
  const gpt2 = parseGPT2Config(REAL_CONFIGS.distilgpt2, "distilgpt2 config");
  gpt2.vocabSize = EYE_VOCAB;
  const { vision } = parseCLIPConfig(REAL_CONFIGS["clip-vit-base-patch16"], "clip-vit-base-patch16 config");
  return checkEyeConfig({
    ...tinyEyeConfig(), size: "mini", llmRepo: "distilgpt2", visionRepo: "openai/clip-vit-base-patch16", gpt2, vision,
    imageTokenId: EYE_IMAGE_ID, eosTokenId: EYE_EOS_ID, embedDim: 256,
  });
}

const CASES: Record<Preset, { cfg: () => EyeConfig; batch: number; captionLen: number }> = {
  full: { cfg: miniEyeConfig, batch: 8, captionLen: 12 },
  quick: { cfg: tinyEyeConfig, batch: 8, captionLen: 12 },
  tiny: { cfg: tinyEyeConfig, batch: 2, captionLen: 5 },
};

export function eyeStepSpec(cfg: EyeConfig, batch: number, captionLen: number): EyeStepSpec {
  const g = cfg.gpt2;
  return {
    op: "train_step_eye", layers: g.nLayer, width: g.nEmbd, heads: g.nHead, vocab: g.vocabSize, positions: g.nPositions,
    batch, imageTokens: imageTokenCount(cfg), visionWidth: cfg.vision.hiddenSize, captionLen, embedDim: cfg.embedDim,
  };
}

/** Training flops of one step (see the header). */
export function eyeStepFlops(s: EyeStepSpec): number {
  const { layers: L, width: C, vocab: V, batch: B, imageTokens: K, visionWidth: Dv, captionLen: Lc, embedDim: E } = s;
  const Tc = K + Lc + 1;
  const Tt = Lc + 2;
  const body = L * 12 * C * C;
  const matmul = B * (Tc + Tt) * body + B * (Lc + 1) * V * C + B * K * (Dv * C + C * C) + 2 * B * C * E;
  return 6 * matmul + 6 * L * B * (Tc * Tc + Tt * Tt) * C;
}

/** Random caption ids in [0, 50257) (never <image>), B rows of L tokens. */
export function eyeCaptions(s: EyeStepSpec, seed: number): number[][] {
  const r = randArray(s.batch * s.captionLen, seed, 0, EYE_IMAGE_ID);
  return Array.from({ length: s.batch }, (_, b) => Array.from(r.subarray(b * s.captionLen, (b + 1) * s.captionLen), (x) => Math.min(EYE_IMAGE_ID - 1, Math.floor(x))));
}

/** Trainer-style groups: GPT-2 at lr, the rest at projectorLr, rank ≥ 2 decayed. */
export function eyeParamGroups(model: EyeModel): { params: Var[]; lr: number; weightDecay: number }[] {
  const named = model.namedParameters().filter(([, p]) => p.requiresGrad);
  return [true, false].flatMap((lm) => {
    const mine = named.filter(([n]) => n.startsWith("language_model.") === lm).map(([, p]) => p);
    const lr = lm ? EYE_OPT.lr : EYE_OPT.projectorLr;
    return [
      { params: mine.filter((p) => p.shape.length >= 2), lr, weightDecay: EYE_OPT.weightDecay },
      { params: mine.filter((p) => p.shape.length < 2), lr, weightDecay: 0 },
    ];
  });
}

export function eyeStepCase(preset: Preset): OurCase {
  const c = CASES[preset];
  const cfg = c.cfg();
  const spec = eyeStepSpec(cfg, c.batch, c.captionLen);
  const tokens = c.batch * (c.captionLen + 1);
  return {
    op: "train_step_eye",
    shape: `${cfg.size}-b${c.batch}`,
    work: { flops: eyeStepFlops(spec), items: tokens },
    note: `fwd+bwd+AdamW, K=${spec.imageTokens} cached features, L=${c.captionLen}: ${tokens} tokens a step (items/s = tokens/s)`,
    spec,
    setup(keep) {
      // The frozen tower never runs in a step: zeros instead of drawing ~86M normals on the host.
      const vision = skipInit(() => new CLIPVisionTransformer(cfg.vision));
      const model = new EyeModel(cfg, { seed: 1, vision }).setVisionTrainable(0);
      for (const p of model.parameters()) keep(p.value);
      const opt = new AdamW(eyeParamGroups(model), { beta2: EYE_OPT.beta2 });
      const { batch: B, imageTokens: K, visionWidth: Dv } = spec;
      const features = keep(tensor(randnArray(B * K * Dv, 7), [B, K, Dv]));
      const captions = eyeCaptions(spec, 8);
      /** One step; returns [loss, lm, infoNCE] before the update (caller disposes). */
      const trainStep = (): Tensor[] => {
        const out = tidy(() => {
          const { loss, lm, infoNCE } = model.forward(features, captions, { lambda: 1 });
          backward(loss);
          opt.step();
          return [loss.value, lm.value, infoNCE!.value];
        });
        opt.zeroGrad();
        return out;
      };
      const losses = async (): Promise<number[]> => {
        const ts = trainStep();
        try {
          return await Promise.all(ts.map((t) => t.item()));
        } finally {
          ts.forEach((t) => t.dispose());
        }
      };
      return {
        async validate() {
          const [first, lm, nce] = await losses();
          const want = Math.log(spec.vocab);
          if (!Number.isFinite(first) || !Number.isFinite(nce!)) throw new ValidationError(`eye step: first loss ${first} (InfoNCE ${nce}), want finite`);
          if (!(Math.abs(lm! - want) < 0.5)) throw new ValidationError(`eye step: first LM loss ${lm}, want within 0.5 of ln(${spec.vocab}) = ${want.toFixed(3)}`);
          const [second] = await losses();
          if (!(second! < first!)) throw new ValidationError(`eye step: loss did not fall on the same batch (${first} → ${second})`);
        },
        async step() {
          trainStep().forEach((t) => t.dispose());
          await device().sync();
        },
        dispose() {
          opt.dispose();
        },
      };
    },
  };
}
