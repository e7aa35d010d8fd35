// Optimizer base: parameter groups, per-parameter state, zeroGrad, lr schedules and exact
// state save/restore. Subclasses implement update() with the engine's fused kernels.
//
// Parameter groups: `new AdamW([{ params: decay, weightDecay: 0.1 }, { params: noDecay,
// weightDecay: 0 }, { params: projector, lr: 1e-3 }], { lr: 3e-4 })` — group settings override
// the defaults (keys set to undefined keep the default). Each group remembers its `initialLr`;
// setLrFactor(lrFactor(step, schedule)) sets lr = initialLr · factor, so one schedule drives
// groups with different peak rates.
//
// Gradient accumulation: backward() adds into Var.grad until zeroGrad(). For M micro-batches
// either scale each micro-batch loss by 1/M (then clipping sees the true gradient), or call
// step({ gradScale: 1 / M }) (the kernels multiply the gradient by it).
//
// Parameters whose grad is null are skipped by step() (their state and step count do not
// advance), as torch does. State tensors are created on the first update of a parameter.
import { type Tensor, clone, tensor } from "@llms-eye/tensor";
import type { Var } from "../var.js";

export type ParamGroup<H> = H & { params: Var[]; initialLr: number };

export interface ParamState {
  /** Updates applied to this parameter so far. */
  step: number;
  /** Named state tensors (AdamW: m, v; SGD: momentumBuf), same shape as the parameter. */
  tensors: Record<string, Tensor>;
}

/** A snapshot of an optimizer: hyperparameters per group and state per parameter (by index in group order). */
export interface OptimizerState<H> {
  groups: (H & { initialLr: number })[];
  /** Keyed by the parameter's index over all groups in order; tensors are copies. */
  state: Map<number, ParamState>;
}

export abstract class Optimizer<H extends { lr: number }> {
  readonly groups: ParamGroup<H>[];
  protected readonly state = new Map<Var, ParamState>();

  constructor(groups: Var[] | (Partial<H> & { params: Var[] })[], defaults: H) {
    const list = groups.length > 0 && !("params" in (groups[0] as object)) ? [{ params: groups as Var[] }] : (groups as (Partial<H> & { params: Var[] })[]);
    const seen = new Set<Var>();
    this.groups = list.map((g) => {
      for (const p of g.params) {
        if (seen.has(p)) throw new Error(`${this.constructor.name}: expected each parameter in one group, got one twice (${p.toString()})`);
        seen.add(p);
      }
      const set = Object.fromEntries(Object.entries(g).filter(([, v]) => v !== undefined));
      const merged = { ...defaults, ...set, params: [...g.params] } as H & { params: Var[] };
      return { ...merged, initialLr: merged.lr } as ParamGroup<H>;
    });
  }

  /** Every parameter, group by group. */
  get params(): Var[] {
    return this.groups.flatMap((g) => g.params);
  }

  /** Applies one update to every parameter that has a gradient (recorded, not waited on). */
  step(opts: { gradScale?: number } = {}): void {
    for (const g of this.groups) {
      for (const p of g.params) {
        if (!p.grad) continue;
        let s = this.state.get(p);
        if (!s) {
          s = { step: 0, tensors: this.initState(p, g) };
          this.state.set(p, s);
        }
        s.step++;
        this.update(p, p.grad, s, g, opts.gradScale ?? 1);
      }
    }
  }

  protected abstract initState(p: Var, g: ParamGroup<H>): Record<string, Tensor>;
  protected abstract update(p: Var, grad: Tensor, s: ParamState, g: ParamGroup<H>, gradScale: number): void;

  /** Releases every parameter's gradient. */
  zeroGrad(): void {
    for (const p of this.params) p.zeroGrad();
  }

  /** Sets each group's lr to initialLr · factor. */
  setLrFactor(factor: number): void {
    for (const g of this.groups) g.lr = g.initialLr * factor;
  }

  /** A snapshot (state tensors cloned; hyperparameters copied). Dispose its tensors when done. */
  stateDict(): OptimizerState<H> {
    const state = new Map<number, ParamState>();
    this.params.forEach((p, i) => {
      const s = this.state.get(p);
      if (!s) return;
      const tensors: Record<string, Tensor> = {};
      for (const [k, t] of Object.entries(s.tensors)) tensors[k] = clone(t).keep();
      state.set(i, { step: s.step, tensors });
    });
    const groups = this.groups.map(({ params: _p, ...rest }) => ({ ...rest }) as unknown as H & { initialLr: number });
    return { groups, state };
  }

  /** Restores a snapshot taken from an optimizer over parameters of the same shapes, in the same order. */
  loadStateDict(sd: OptimizerState<H>): void {
    const name = this.constructor.name;
    if (sd.groups.length !== this.groups.length) {
      throw new Error(`${name}.loadStateDict: expected ${this.groups.length} parameter groups, got ${sd.groups.length}`);
    }
    const params = this.params;
    for (const [i, s] of sd.state) {
      const p = params[i];
      if (!p) throw new Error(`${name}.loadStateDict: expected parameter indices below ${params.length}, got ${i}`);
      for (const [k, t] of Object.entries(s.tensors)) {
        if (t.shape.length !== p.shape.length || t.shape.some((d, j) => d !== p.shape[j])) {
          throw new Error(`${name}.loadStateDict: expected state ${k} of parameter ${i} with shape [${p.shape.join(", ")}], got [${t.shape.join(", ")}]`);
        }
      }
    }
    sd.groups.forEach((h, i) => Object.assign(this.groups[i]!, h));
    for (const s of this.state.values()) for (const t of Object.values(s.tensors)) t.dispose();
    this.state.clear();
    for (const [i, s] of sd.state) {
      const tensors: Record<string, Tensor> = {};
      for (const [k, t] of Object.entries(s.tensors)) tensors[k] = clone(t).keep();
      this.state.set(params[i]!, { step: s.step, tensors });
    }
  }

  /** Releases the optimizer state (not the parameters). */
  dispose(): void {
    for (const s of this.state.values()) for (const t of Object.values(s.tensors)) t.dispose();
    this.state.clear();
  }
}

/** An optimizer snapshot on the host (plain data: JSON-able apart from the Float32Arrays). */
export interface HostOptimizerState<H> {
  groups: (H & { initialLr: number })[];
  state: { index: number; step: number; tensors: Record<string, { shape: number[]; data: Float32Array }> }[];
}

/** Downloads a snapshot (for a checkpoint file); the bits are kept exactly. */
export async function optimizerStateToHost<H>(sd: OptimizerState<H>): Promise<HostOptimizerState<H>> {
  const state: HostOptimizerState<H>["state"] = [];
  for (const [index, s] of sd.state) {
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const [k, t] of Object.entries(s.tensors)) tensors[k] = { shape: [...t.shape], data: (await t.toArray()) as Float32Array };
    state.push({ index, step: s.step, tensors });
  }
  return { groups: sd.groups.map((g) => ({ ...g })), state };
}

/** Uploads a host snapshot (dispose its tensors after loadStateDict, which copies them). */
export function optimizerStateFromHost<H>(h: HostOptimizerState<H>): OptimizerState<H> {
  const state = new Map<number, ParamState>();
  for (const s of h.state) {
    const tensors: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(s.tensors)) tensors[k] = tensor(t.data, t.shape).keep();
    state.set(s.index, { step: s.step, tensors });
  }
  return { groups: h.groups.map((g) => ({ ...g })), state };
}
