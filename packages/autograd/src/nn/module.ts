// Module: a tree of named parameters in Hugging Face's dotted naming. A module's parameters
// and children are found from its own enumerable fields, in declaration order: a `Var` field
// is a parameter, a `Module` field a child, an array of Modules a list whose items are named
// by index (`h.0.attn.c_attn.weight`). Fields whose names start with `_` are skipped (use them
// for Vars that are not parameters). stateDict() maps every name to the parameter's tensor
// (the live tensor, not a copy); loadStateDict() copies values in place and reports every
// missing, unexpected and mis-shaped key in one error. A parameter shared by two fields (a
// tied LM head) is one parameter for parameters() and optimizers, two keys in stateDict().
import { type Tensor, TensorError, copyRange } from "@llms-eye/tensor";
import { Var } from "../var.js";

const fmtShape = (s: readonly number[]): string => `[${s.join(", ")}]`;

/** loadStateDict found keys that do not match (the message lists them all). */
export class StateDictError extends TensorError {
  constructor(
    message: string,
    readonly missing: string[],
    readonly unexpected: string[],
    readonly mismatched: string[],
  ) {
    super(message);
  }
}

export type StateDict = Map<string, Tensor>;

export abstract class Module {
  /** Train mode (dropout active); set by train() / eval() on the whole tree. */
  training = true;

  /** Child modules by name (lists expanded to `name.i`), in field order. */
  namedChildren(): [string, Module][] {
    const out: [string, Module][] = [];
    for (const [k, v] of Object.entries(this)) {
      if (k.startsWith("_")) continue;
      if (v instanceof Module) out.push([k, v]);
      else if (Array.isArray(v) && v.length > 0 && v.every((m) => m instanceof Module)) {
        (v as Module[]).forEach((m, i) => out.push([`${k}.${i}`, m]));
      }
    }
    return out;
  }

  /**
   * Every parameter of the tree with its dotted name (own parameters first, then children).
   * A parameter shared under several names (a tied LM head) is listed once, under its first
   * name, unless `removeDuplicate` is false (as torch's named_parameters).
   */
  namedParameters(prefix = "", removeDuplicate = true): [string, Var][] {
    const out: [string, Var][] = [];
    const walk = (m: Module, pre: string): void => {
      for (const [k, v] of Object.entries(m)) {
        if (!k.startsWith("_") && v instanceof Var) out.push([pre + k, v]);
      }
      for (const [k, c] of m.namedChildren()) walk(c, `${pre}${k}.`);
    };
    walk(this, prefix);
    if (!removeDuplicate) return out;
    const seen = new Set<Var>();
    return out.filter(([, v]) => !seen.has(v) && (seen.add(v), true));
  }

  parameters(): Var[] {
    return this.namedParameters().map(([, v]) => v);
  }

  /** Every module of the tree, this one first. */
  modules(): Module[] {
    return [this, ...this.namedChildren().flatMap(([, m]) => m.modules())];
  }

  train(on = true): this {
    for (const m of this.modules()) m.training = on;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /**
   * Freezes (false) or unfreezes (true) every parameter of the tree. Var.requiresGrad is
   * fixed at construction, so each parameter field is replaced by a new Var over the SAME
   * tensor (gradients are dropped): build optimizers after freezing. Frozen parameters stay
   * in namedParameters() and stateDict(), and cost no backward work.
   */
  requiresGrad(on: boolean): this {
    const replaced = new Map<Var, Var>(); // keeps tied parameters tied
    for (const m of this.modules()) {
      const rec = m as unknown as Record<string, unknown>;
      for (const [k, v] of Object.entries(m)) {
        if (k.startsWith("_") || !(v instanceof Var) || v.requiresGrad === on) continue;
        let nv = replaced.get(v);
        if (!nv) {
          v.zeroGrad();
          nv = new Var(v.value, on);
          replaced.set(v, nv);
        }
        rec[k] = nv;
      }
    }
    return this;
  }

  /** Clears the gradient of every parameter. */
  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  /** Name → the parameter's tensor (live, not a copy: clone it to keep a snapshot); tied parameters appear under each name. */
  stateDict(): StateDict {
    return new Map(this.namedParameters("", false).map(([k, v]) => [k, v.value]));
  }

  /**
   * Copies `dict` into the parameters (in place, on the GPU). Mis-shaped keys always throw;
   * missing and unexpected keys throw when `strict` (the default) and are returned otherwise.
   */
  loadStateDict(dict: StateDict | Record<string, Tensor>, { strict = true } = {}): { missing: string[]; unexpected: string[] } {
    const src = dict instanceof Map ? dict : new Map(Object.entries(dict));
    const own = new Map(this.namedParameters("", false));
    const missing = [...own.keys()].filter((k) => !src.has(k));
    const unexpected = [...src.keys()].filter((k) => !own.has(k));
    const mismatched: string[] = [];
    for (const [k, p] of own) {
      const t = src.get(k);
      if (!t) continue;
      if (t.dtype !== p.value.dtype || t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
        mismatched.push(`${k} (expected ${fmtShape(p.shape)} ${p.value.dtype}, got ${fmtShape(t.shape)} ${t.dtype})`);
      }
    }
    if (mismatched.length > 0 || (strict && (missing.length > 0 || unexpected.length > 0))) {
      const parts = [
        missing.length ? `missing keys: ${missing.join(", ")}` : "",
        unexpected.length ? `unexpected keys: ${unexpected.join(", ")}` : "",
        mismatched.length ? `mis-shaped keys: ${mismatched.join(", ")}` : "",
      ].filter(Boolean);
      throw new StateDictError(`loadStateDict: expected the keys and shapes of ${this.constructor.name}, got ${parts.join("; ")}`, missing, unexpected, mismatched);
    }
    for (const [k, p] of own) {
      const t = src.get(k);
      if (t && t !== p.value) copyRange("loadStateDict", t, 0, p.value, 0, t.size);
    }
    return { missing, unexpected };
  }

  /** Releases every parameter (values and gradients). */
  dispose(): void {
    for (const p of this.parameters()) p.dispose();
  }
}
