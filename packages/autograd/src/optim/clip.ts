// Global-norm gradient clipping (torch.nn.utils.clip_grad_norm_), entirely on the GPU with no
// read-back: norm = sqrt(Σ_params Σ g²); coef = min(1, maxNorm / (norm + 1e-6)); every grad is
// replaced by grad · coef (a broadcast mul by the one-element coef tensor). Returns the norm
// before clipping as a one-element tensor (read it with item() when logging; dispose it).
// Cheaper when the norm is read anyway: gradNorm() + optimizer.step({ gradScale: clipCoef(norm,
// maxNorm) }) scales inside the update kernel instead of rewriting every gradient.
import { type Tensor, add, div, minimum, mul, sqrt, sum, tidy } from "@llms-eye/tensor";
import type { Var } from "../var.js";

/** Global L2 norm of the parameters' gradients (those that have one), a one-element tensor. */
export function gradNorm(params: readonly Var[]): Tensor {
  const withGrad = params.filter((p) => p.grad !== null);
  if (withGrad.length === 0) throw new RangeError("gradNorm: expected at least one parameter with a gradient, got none");
  return tidy(() => {
    let total: Tensor | null = null;
    for (const p of withGrad) {
      const g = p.grad!;
      const flat = g.reshape([g.size]);
      const ss = sum(mul(flat, flat), [0], true); // [1]
      total = total ? add(total, ss) : ss;
    }
    return sqrt(total!);
  });
}

/** Added to the norm before dividing (torch's clip_grad_norm_). */
const EPS = 1e-6;

/** The factor clipGradNorm applies for a norm (host side: pass it to `optimizer.step({ gradScale })`). */
export function clipCoef(norm: number, maxNorm: number): number {
  if (!(maxNorm > 0)) throw new RangeError(`clipCoef: expected maxNorm > 0, got ${maxNorm}`);
  return Math.min(1, maxNorm / (norm + EPS));
}

export function clipGradNorm(params: readonly Var[], maxNorm: number): Tensor {
  if (!(maxNorm > 0)) throw new RangeError(`clipGradNorm: expected maxNorm > 0, got ${maxNorm}`);
  const withGrad = params.filter((p) => p.grad !== null);
  if (withGrad.length === 0) throw new RangeError("clipGradNorm: expected at least one parameter with a gradient, got none");
  return tidy(() => {
    const norm = gradNorm(withGrad);
    const coef = minimum(div(maxNorm, add(norm, EPS)), 1);
    for (const p of withGrad) {
      const g = p.grad!;
      const scaled = mul(g, coef.reshape(g.shape.map(() => 1))).keep();
      g.dispose();
      p.grad = scaled;
    }
    return norm;
  });
}
