// Differentiable ops on Vars: thin wrappers that record primitives on the tape.
import type { AttentionOptions, InfoNCEOptions, Tensor } from "@llms-eye/tensor";
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
/** Fused attention (out only); keep `opts.keyPaddingMask` alive until backward() has run. */
export const attention = (q: Var, k: Var, v: Var, opts: AttentionOptions = {}): Var =>
  apply("attention", [q, k, v], { causal: opts.causal ?? false, keyPaddingMask: opts.keyPaddingMask ?? null, scale: opts.scale ?? null });
/** CLIP's symmetric InfoNCE loss [1]; gradients reach both embeddings and logScale. */
export const infoNCE = (img: Var, txt: Var, logScale: Var, opts: InfoNCEOptions = {}): Var =>
  apply("infoNCE", [img, txt, logScale], { maxLogScale: opts.maxLogScale ?? Math.log(100) });
export const patchEmbed = (pixels: Var | Tensor, weight: Var, bias?: Var, patch: number = weight.shape[2]!): Var =>
  apply("patchEmbed", bias ? [lift(pixels), weight, bias] : [lift(pixels), weight], { patch });
/** Softmax cross-entropy of logits [N, V] against targets [N] (i32, a constant kept live until backward); `classes`: the first C columns (the rest padding). */
export const crossEntropy = (logits: Var, targets: Tensor, opts: { ignoreIndex?: number; reduction?: "mean" | "sum" | "none"; classes?: number } = {}): Var =>
  apply("crossEntropy", [logits], { targets, ignoreIndex: opts.ignoreIndex ?? -100, reduction: opts.reduction ?? "mean", ...(opts.classes === undefined ? {} : { classes: opts.classes }) });
/** Rows of weight [V, D] at ids (i32, any shape); the gradient scatter-adds repeated ids. */
export const embedding = (weight: Var, ids: Tensor): Var => apply("embedding", [weight], { ids });
export const indexSelect = (x: Var, axis: number, index: Tensor): Var =>
  apply("indexSelect", [x], { axis: axis < 0 ? axis + x.shape.length : axis, index });
export const quickGelu = (x: Var): Var => apply("quickGelu", [x], null);
/** x[starts[0]:ends[0], ...] over the leading axes (negative values count from the end). */
export const slice = (x: Var, starts: number[], ends: number[]): Var =>
  apply("slice", [x], {
    starts: starts.map((s, i) => (s < 0 ? s + x.shape[i]! : s)),
    ends: ends.map((e, i) => (e < 0 ? e + x.shape[i]! : e)),
  });
export const concat = (xs: (Var | Tensor)[], axis = 0): Var => {
  const vs = xs.map(lift);
  return apply("concat", vs, { axis: axis < 0 ? axis + (vs[0]?.shape.length ?? 0) : axis });
};
