// Var: a tensor on the tape. Leaves (parameters, inputs) have no node; every other Var was
// made by a recorded op and points at its Node. `grad` is filled by backward() on leaves
// that require it and accumulates across calls until zeroGrad().
import type { Tensor } from "@llms-eye/tensor";
import type { Node } from "./tape.js";

export class Var {
  grad: Tensor | null = null;

  constructor(
    readonly value: Tensor,
    readonly requiresGrad = false,
    /** The op that made it; null for leaves. */
    readonly node: Node | null = null,
  ) {}

  get shape(): readonly number[] {
    return this.value.shape;
  }

  get isLeaf(): boolean {
    return this.node === null;
  }

  zeroGrad(): void {
    this.grad?.dispose();
    this.grad = null;
  }

  /** Releases the value and the gradient. */
  dispose(): void {
    this.zeroGrad();
    this.value.dispose();
  }

  toString(): string {
    return `Var(${this.value.toString()}${this.requiresGrad ? ", requiresGrad" : ""}${this.node ? `, ${this.node.op}` : ""})`;
  }
}

/** A trainable leaf: the tensor is taken out of enclosing tidy() scopes. */
export const param = (t: Tensor): Var => new Var(t.keep(), true);
/** A constant leaf (no gradient). */
export const constant = (t: Tensor): Var => new Var(t, false);
