// AdamW and SGD over parameter groups, one fused engine kernel per parameter and step
// (packages/tensor/src/ops/adamw.ts: torch.optim.AdamW / torch.optim.SGD update formulas).
import { type Tensor, adamw, sgd, zeros } from "@llms-eye/tensor";
import type { Var } from "../var.js";
import { Optimizer, type ParamGroup, type ParamState } from "./optimizer.js";

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export class AdamW extends Optimizer<AdamWHyper> {
  /** Defaults as torch.optim.AdamW: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0.01. */
  constructor(groups: Var[] | (Partial<AdamWHyper> & { params: Var[] })[], defaults: Partial<AdamWHyper> = {}) {
    super(groups, { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, ...defaults });
  }

  protected initState(p: Var): Record<string, Tensor> {
    return { m: zeros(p.shape).keep(), v: zeros(p.shape).keep() };
  }

  protected update(p: Var, grad: Tensor, s: ParamState, g: ParamGroup<AdamWHyper>, gradScale: number): void {
    adamw(p.value, grad, s.tensors.m!, s.tensors.v!, {
      lr: g.lr, beta1: g.beta1, beta2: g.beta2, eps: g.eps, weightDecay: g.weightDecay, step: s.step, gradScale,
    });
  }
}

export interface SGDHyper {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

export class SGD extends Optimizer<SGDHyper> {
  /** Defaults as torch.optim.SGD except lr (1e-3): momentum 0, dampening 0, no weight decay. */
  constructor(groups: Var[] | (Partial<SGDHyper> & { params: Var[] })[], defaults: Partial<SGDHyper> = {}) {
    super(groups, { lr: 1e-3, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, ...defaults });
  }

  protected initState(p: Var, g: ParamGroup<SGDHyper>): Record<string, Tensor> {
    return g.momentum !== 0 ? { momentumBuf: zeros(p.shape).keep() } : {};
  }

  protected update(p: Var, grad: Tensor, s: ParamState, g: ParamGroup<SGDHyper>, gradScale: number): void {
    sgd(p.value, grad, g.momentum !== 0 ? s.tensors.momentumBuf! : null, {
      lr: g.lr, momentum: g.momentum, dampening: g.dampening, weightDecay: g.weightDecay, nesterov: g.nesterov, step: s.step, gradScale,
    });
  }
}

/**
 * Splits named parameters into a weight-decay group (rank ≥ 2: matmul and embedding weights)
 * and a no-decay group (biases, LayerNorm weights), as GPT-2 / nanoGPT training does.
 */
export function decayGroups(named: [string, Var][], weightDecay: number, extra: { lr?: number } = {}): (Partial<AdamWHyper> & { params: Var[] })[] {
  const live = named.filter(([, v]) => v.requiresGrad);
  return [
    { params: live.filter(([, v]) => v.shape.length >= 2).map(([, v]) => v), weightDecay, ...extra },
    { params: live.filter(([, v]) => v.shape.length < 2).map(([, v]) => v), weightDecay: 0, ...extra },
  ];
}
