// Differentiable ops on Vars: thin wrappers that record primitives on the tape.
import type { Tensor } from "@llms-eye/tensor";
import { apply } from "./tape.js";
import { Var } from "./var.js";

const lift = (x: Var | Tensor): Var => (x instanceof Var ? x : new Var(x, false));

export const add = (a: Var | Tensor, b: Var | Tensor): Var => apply("add", [lift(a), lift(b)], null);
export const sub = (a: Var | Tensor, b: Var | Tensor): Var => apply("sub", [lift(a), lift(b)], null);
export const mul = (a: Var | Tensor, b: Var | Tensor): Var => apply("mul", [lift(a), lift(b)], null);
export const div = (a: Var | Tensor, b: Var | Tensor): Var => apply("div", [lift(a), lift(b)], null);
export const neg = (x: Var): Var => apply("neg", [x], null);
export const exp = (x: Var): Var => apply("exp", [x], null);
export const log = (x: Var): Var => apply("log", [x], null);
export const tanh = (x: Var): Var => apply("tanh", [x], null);
export const gelu = (x: Var): Var => apply("gelu", [x], null);
export const matmul = (a: Var | Tensor, b: Var | Tensor, opts: { transA?: boolean; transB?: boolean } = {}): Var =>
  apply("matmul", [lift(a), lift(b)], { transA: opts.transA ?? false, transB: opts.transB ?? false });
/** Axes to reduce, non-negative; all of them when omitted. */
const axesOf = (x: Var, axes?: number | number[]): number[] =>
  axes === undefined ? x.shape.map((_, i) => i) : (typeof axes === "number" ? [axes] : axes).map((a) => (a < 0 ? a + x.shape.length : a));
export const sum = (x: Var, axes?: number | number[], keepDims = false): Var => apply("sum", [x], { axes: axesOf(x, axes), keepDims });
export const mean = (x: Var, axes?: number | number[], keepDims = false): Var => apply("mean", [x], { axes: axesOf(x, axes), keepDims });
export const reshape = (x: Var, shape: number[]): Var => apply("reshape", [x], { shape });
export const permute = (x: Var, perm: number[]): Var => apply("permute", [x], { perm });
export const softmax = (x: Var): Var => apply("softmax", [x], null);
export const layerNorm = (x: Var, weight: Var, bias: Var, eps = 1e-5): Var => apply("layerNorm", [x, weight, bias], { eps });
