// Learning-rate schedules as pure functions of the 0-based step (the number of optimizer
// steps already taken), following Hugging Face transformers' get_*_schedule_with_warmup:
//   warmup (step < warmupSteps):  factor = step / warmupSteps           (0 at step 0)
//   then, progress = (step − warmupSteps) / (totalSteps − warmupSteps), clamped to [0, 1]:
//     "cosine"    factor = minRatio + (1 − minRatio) · ½(1 + cos(π · progress))
//     "linear"    factor = minRatio + (1 − minRatio) · (1 − progress)
//     "constant"  factor = 1
// so the factor reaches 1 at step = warmupSteps and minRatio at step = totalSteps (and stays).
// lrAt multiplies by the peak lr; Optimizer.setLrFactor applies a factor to every group.

export interface Schedule {
  warmupSteps: number;
  totalSteps: number;
  decay: "cosine" | "linear" | "constant";
  /** Final lr as a fraction of the peak (default 0). */
  minRatio?: number;
}

export function lrFactor(step: number, s: Schedule): number {
  const { warmupSteps, totalSteps, decay, minRatio = 0 } = s;
  if (!(warmupSteps >= 0 && totalSteps >= warmupSteps)) {
    throw new RangeError(`lrFactor: expected 0 ≤ warmupSteps ≤ totalSteps, got warmupSteps ${warmupSteps}, totalSteps ${totalSteps}`);
  }
  if (step < warmupSteps) return step / warmupSteps;
  if (decay === "constant") return 1;
  const span = totalSteps - warmupSteps;
  const progress = span === 0 ? 1 : Math.min(1, Math.max(0, (step - warmupSteps) / span));
  const shape = decay === "cosine" ? 0.5 * (1 + Math.cos(Math.PI * progress)) : 1 - progress;
  return minRatio + (1 - minRatio) * shape;
}

/** The learning rate at `step` for a peak rate `lr`. */
export const lrAt = (step: number, lr: number, s: Schedule): number => lr * lrFactor(step, s);
