// Layers, initialised like Hugging Face GPT-2 (_init_weights): Linear and Embedding weights
// ~ N(0, 0.02²) from a seed (host RNG, uploaded), biases zero, LayerNorm weight one, bias zero.
//   Linear     weight [out, in] ("out_in", torch.nn.Linear) or [in, out] ("in_out", GPT-2's
//              Conv1D); y = x·Wᵀ + b or x·W + b over any leading axes.
//   LayerNorm  over the last axis, eps 1e-5.
//   Embedding  weight [num, dim]; ids an i32 tensor of any shape → [...ids, dim].
//   Dropout    inverted dropout: the keep mask (1/(1−p) or 0) is drawn on the HOST by a seeded
//              mulberry32 stream (the engine has no GPU RNG) and uploaded; identity in eval
//              mode or when p = 0. The stream advances on every training call.
//   GELU       "tanh" (GPT-2's gelu_new, ag.gelu) or "quick" (CLIP's x·σ(1.702x), ag.quickGelu).
import { type Tensor, full, randnArray, rng, tensor, zeros } from "@llms-eye/tensor";
import * as ag from "../ops.js";
import { Var, param } from "../var.js";
import { Module } from "./module.js";

const lift = (x: Var | Tensor): Var => (x instanceof Var ? x : new Var(x, false));

export interface InitOptions {
  /** Seed of the normal init (default 0). */
  seed?: number;
  /** Standard deviation of the normal init (default 0.02, as GPT-2's initializer_range). */
  std?: number;
}

let skipping = 0;

/**
 * Builds modules without drawing their initial values: every parameter made inside `fn` (by
 * these layers or `initParam`) is zeros, filled on the GPU. For models whose weights are about
 * to be loaded from a checkpoint — drawing ~100M normals on the host only to overwrite them
 * costs seconds (torch's skip_init / init_empty_weights).
 */
export function skipInit<T>(fn: () => T): T {
  skipping++;
  try {
    return fn();
  } finally {
    skipping--;
  }
}

/** A parameter ~ N(0, std²) from `seed` (host RNG, uploaded), or zeros inside skipInit. */
export function initParam(shape: number[], { seed = 0, std = 0.02 }: InitOptions = {}): Var {
  if (skipping > 0) return param(zeros(shape));
  return param(tensor(randnArray(shape.reduce((a, b) => a * b, 1), seed, std), shape));
}

/** A parameter filled with `value` (zeros inside skipInit). */
const constParam = (shape: number[], value: number): Var => param(skipping > 0 || value === 0 ? zeros(shape) : full(shape, value));

const normal = (shape: number[], opts: InitOptions): Var => initParam(shape, opts);

export type LinearLayout = "out_in" | "in_out";

export class Linear extends Module {
  weight: Var;
  bias: Var | null;
  readonly _layout: LinearLayout;

  constructor(
    readonly _in: number,
    readonly _out: number,
    opts: InitOptions & { bias?: boolean; layout?: LinearLayout } = {},
  ) {
    super();
    this._layout = opts.layout ?? "out_in";
    this.weight = normal(this._layout === "out_in" ? [_out, _in] : [_in, _out], opts);
    this.bias = opts.bias === false ? null : constParam([_out], 0);
  }

  forward(x: Var | Tensor): Var {
    const y = ag.matmul(x, this.weight, { transB: this._layout === "out_in" });
    return this.bias ? ag.add(y, this.bias) : y;
  }
}

export class LayerNorm extends Module {
  weight: Var;
  bias: Var;

  constructor(
    dim: number,
    readonly _eps = 1e-5,
  ) {
    super();
    this.weight = constParam([dim], 1);
    this.bias = constParam([dim], 0);
  }

  forward(x: Var | Tensor): Var {
    return ag.layerNorm(lift(x), this.weight, this.bias, this._eps);
  }
}

export class Embedding extends Module {
  weight: Var;

  constructor(num: number, dim: number, opts: InitOptions = {}) {
    super();
    this.weight = normal([num, dim], opts);
  }

  /** ids: i32 of any shape → [...ids.shape, dim]; the weight's gradient scatter-adds over repeated ids. */
  forward(ids: Tensor): Var {
    return ag.embedding(this.weight, ids);
  }
}

export class Dropout extends Module {
  private readonly _rng: () => number;

  constructor(
    readonly _p: number,
    seed = 0,
  ) {
    super();
    if (!(_p >= 0 && _p < 1)) throw new RangeError(`Dropout: expected p in [0, 1), got ${_p}`);
    this._rng = rng(seed);
  }

  /** The host mask of `n` elements: 1/(1−p) with probability 1−p, else 0. */
  mask(n: number): Float32Array {
    const keep = 1 / (1 - this._p);
    const m = new Float32Array(n);
    for (let i = 0; i < n; i++) m[i] = this._rng() >= this._p ? keep : 0;
    return m;
  }

  forward(x: Var | Tensor): Var {
    const v = lift(x);
    if (!this.training || this._p === 0) return v;
    return ag.mul(v, tensor(this.mask(v.value.size), [...v.shape]));
  }
}

export class GELU extends Module {
  constructor(readonly _approximate: "tanh" | "quick" = "tanh") {
    super();
  }

  forward(x: Var | Tensor): Var {
    return this._approximate === "tanh" ? ag.gelu(lift(x)) : ag.quickGelu(lift(x));
  }
}
