// train-step: one training step of the models package's GPT2LMHeadModel (forward, backward,
// AdamW) on the tape, random init (HF's), random token ids. Full preset: distilgpt2's shape (6 layers, 768 wide, 12 heads,
// vocab 50257), batch 8, sequence 64 — op `train_step_gpt2`, shape `distilgpt2-b8-t64`.
// --quick and tiny use smaller models (a distilgpt2 step takes tens of seconds here).
// Work: 6·tokens·(matmul parameters incl. the tied LM head) + attention's 6·L·B·H·T²·Dh/…
// (causal half): the usual training-flops napkin; items = tokens, so items/s is tokens/s.
// The family's second case, `train_step_eye` (the eye model's step on cached features), is in eye-step.ts.
// Validation: at GPT-2's init the logits are nearly uniform, so the first loss is within
// 0.5 of ln(vocab); a second step on the same batch must lower it; the loss stays finite.
import { type Tensor, device, randArray, tensor, tidy } from "@llms-eye/tensor";
import { AdamW, ag, backward, decayGroups } from "@llms-eye/autograd";
import { GPT2LMHeadModel, parseGPT2Config } from "@llms-eye/models";
import type { Family, OurCase, Preset } from "./bench.js";
import { type OpSpec, ValidationError } from "./harness.js";
import { eyeStepCase } from "./eye-step.js";

interface GPT2Shape {
  layers: number;
  width: number;
  heads: number;
  vocab: number;
  positions: number;
}
const DISTILGPT2: GPT2Shape = { layers: 6, width: 768, heads: 12, vocab: 50257, positions: 1024 };

export type TrainStepSpec = Extract<OpSpec, { op: "train_step_gpt2" }>;

const CASES: Record<Preset, { name: string; cfg: GPT2Shape; batch: number; seq: number }> = {
  full: { name: "distilgpt2", cfg: DISTILGPT2, batch: 8, seq: 64 },
  quick: { name: "l2-c256-h4-v8192", cfg: { layers: 2, width: 256, heads: 4, vocab: 8192, positions: 64 }, batch: 8, seq: 64 },
  tiny: { name: "l2-c32-h2-v97", cfg: { layers: 2, width: 32, heads: 2, vocab: 97, positions: 16 }, batch: 2, seq: 16 },
};

/** Training flops of one step: 6 per matmul parameter per token, plus causal attention. */
export function trainStepFlops(s: TrainStepSpec): number {
  const { layers: L, width: C, vocab: V, batch: B, seq: T } = s;
  const tokens = B * T;
  return 6 * tokens * (L * 12 * C * C + V * C) + 6 * L * B * T * T * C;
}

/** Random ids in [0, vocab) for (batch, seq + 1): inputs are [:, :-1], targets [:, 1:]. */
export function batchIds(s: TrainStepSpec, seed: number): { ids: Int32Array; targets: Int32Array } {
  const { batch: B, seq: T, vocab: V } = s;
  const r = randArray(B * (T + 1), seed, 0, V);
  const ids = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      ids[b * T + t] = Math.floor(r[b * (T + 1) + t]!);
      targets[b * T + t] = Math.floor(r[b * (T + 1) + t + 1]!);
    }
  }
  return { ids, targets };
}

export function trainStepCase(preset: Preset): OurCase {
  const c = CASES[preset];
  const spec: TrainStepSpec = { op: "train_step_gpt2", ...c.cfg, batch: c.batch, seq: c.seq };
  const tokens = c.batch * c.seq;
  return {
    op: "train_step_gpt2",
    shape: `${c.name}-b${c.batch}-t${c.seq}`,
    work: { flops: trainStepFlops(spec), items: tokens },
    note: `fwd+bwd+AdamW, ${tokens} tokens a step (items/s = tokens/s)`,
    spec,
    setup(keep) {
      const { layers, width, heads, vocab, positions } = c.cfg;
      const config = parseGPT2Config({ n_layer: layers, n_embd: width, n_head: heads, vocab_size: vocab, n_positions: positions }, `bench ${c.name}`);
      const model = new GPT2LMHeadModel(config, { seed: 1 });
      for (const p of model.parameters()) keep(p.value);
      const opt = new AdamW(decayGroups(model.namedParameters(), 0.1), { lr: 6e-4 });
      const { ids, targets } = batchIds(spec, 7);
      const idsT = keep(tensor(ids, [c.batch, c.seq], "i32"));
      const targetsT = keep(tensor(targets, [tokens], "i32"));
      /** One step; returns the loss tensor before the update (caller disposes). */
      const trainStep = (): Tensor => {
        const loss = tidy(() => {
          const logits = model.forward({ ids: idsT }).logits!; // (B, T, V)
          const l = ag.crossEntropy(ag.reshape(logits, [tokens, c.cfg.vocab]), targetsT);
          backward(l);
          opt.step();
          return l.value;
        });
        opt.zeroGrad();
        return loss;
      };
      const lossValue = async (): Promise<number> => {
        const l = trainStep();
        try {
          return await l.item();
        } finally {
          l.dispose();
        }
      };
      return {
        async validate() {
          const first = await lossValue();
          const want = Math.log(c.cfg.vocab);
          if (!(Math.abs(first - want) < 0.5)) throw new ValidationError(`train step: first loss ${first}, want within 0.5 of ln(${c.cfg.vocab}) = ${want.toFixed(3)}`);
          const second = await lossValue();
          if (!(second < first)) throw new ValidationError(`train step: loss did not fall on the same batch (${first} → ${second})`);
        },
        async step() {
          trainStep().dispose();
          await device().sync();
        },
        dispose() {
          opt.dispose();
        },
      };
    },
  };
}

export const family: Family = {
  name: "train-step",
  cases: (preset) => [trainStepCase(preset), eyeStepCase(preset)],
};
