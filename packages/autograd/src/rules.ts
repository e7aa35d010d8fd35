// The gradient rules: one typed table, one entry per primitive, forward and backward side by
// side (a primitive without a rule fails the type check). forward() runs the engine op and
// returns what backward() needs as views; backward(g, saved, attrs, needs, shapes) returns
// one gradient per input (null where `needs` is false). Broadcasting gradients are summed back
// to the input's shape.
import {
  type Tensor, add, div, exp, gelu, layerNormWithStats, log, matmul, mean, mul, neg, permute, softmax, sub, sum, tanh,
  zeros,
} from "@llms-eye/tensor";
import { type AttentionAttrs, type InfoNCEAttrs, type PatchEmbedAttrs, attentionRule, infoNCERule, patchEmbedRule } from "./rules-attention.js";
import {
  type ConcatAttrs, type CrossEntropyAttrs, type EmbeddingAttrs, type IndexSelectAttrs, type SliceAttrs, concatRule, crossEntropyRule,
  embeddingRule, indexSelectRule, quickGeluRule, sliceRule,
} from "./rules-losses.js";

type Shape = readonly number[];
export interface Attrs {
  add: null;
  sub: null;
  mul: null;
  div: null;
  neg: null;
  exp: null;
  log: null;
  tanh: null;
  gelu: null;
  matmul: { transA: boolean; transB: boolean };
  /** axes: non-negative, explicit (ops.ts fills in all axes) */
  sum: { axes: number[]; keepDims: boolean };
  mean: { axes: number[]; keepDims: boolean };
  reshape: { shape: number[] };
  permute: { perm: number[] };
  softmax: null;
  layerNorm: { eps: number };
  attention: AttentionAttrs;
  infoNCE: InfoNCEAttrs;
  patchEmbed: PatchEmbedAttrs;
  crossEntropy: CrossEntropyAttrs;
  embedding: EmbeddingAttrs;
  indexSelect: IndexSelectAttrs;
  quickGelu: null;
  slice: SliceAttrs;
  concat: ConcatAttrs;
}
export type Primitive = keyof Attrs;

export interface Rule<A> {
  forward(xs: Tensor[], attrs: A): { out: Tensor; save: Tensor[] };
  backward(g: Tensor, saved: Tensor[], attrs: A, needs: boolean[], shapes: Shape[]): (Tensor | null)[];
}

const view = (t: Tensor): Tensor => t.reshape(t.shape);

/** Sums `g` over the axes along which an input of `shape` was broadcast. */
export function unbroadcast(g: Tensor, shape: Shape): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  g.shape.forEach((d, i) => {
    if (i < lead || (shape[i - lead] === 1 && d !== 1)) axes.push(i);
  });
  const s = sum(g, axes, false);
  const out = s.reshape([...shape]);
  s.dispose();
  g.dispose();
  return out;
}

/** d(A·B)/dB for A (..., M, K) and a 2-D B: A and g flattened to rows, Aᵀ·g (or gᵀ·A when B is transposed). */
function foldedWeightGrad(a: Tensor, g: Tensor, transB: boolean): Tensor {
  const a2 = a.reshape([-1, a.shape[a.rank - 1]!]); // (B·M, K)
  const g2 = g.reshape([-1, g.shape[g.rank - 1]!]); // (B·M, N)
  const out = transB ? matmul(g2, a2, { transA: true }) : matmul(a2, g2, { transA: true });
  a2.dispose();
  g2.dispose();
  return out;
}

/** `g` (reduced over `axes` of `shape`) broadcast back to `shape`. */
function expand(g: Tensor, shape: Shape, axes: number[]): Tensor {
  const kept = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const gk = g.reshape(kept.length ? kept : [1]);
  const z = zeros(shape.length ? shape : [1]);
  const out = add(z, gk);
  z.dispose();
  gk.dispose();
  return out;
}

function binaryRule(
  fwd: (a: Tensor, b: Tensor) => Tensor,
  grads: (g: Tensor, a: Tensor, b: Tensor, needs: boolean[]) => [Tensor | null, Tensor | null],
  saves: boolean,
): Rule<null> {
  return {
    forward: ([a, b]) => ({ out: fwd(a!, b!), save: saves ? [view(a!), view(b!)] : [] }),
    backward: (g, [a, b], _, needs, [sa, sb]) => {
      const [ga, gb] = grads(g, a!, b!, needs);
      return [ga && unbroadcast(ga, sa!), gb && unbroadcast(gb, sb!)];
    },
  };
}

export const rules: { [P in Primitive]: Rule<Attrs[P]> } = {
  add: binaryRule(add, (g, _a, _b, n) => [n[0] ? view(g) : null, n[1] ? view(g) : null], false),
  sub: binaryRule(sub, (g, _a, _b, n) => [n[0] ? view(g) : null, n[1] ? neg(g) : null], false),
  mul: binaryRule(mul, (g, a, b, n) => [n[0] ? mul(g, b) : null, n[1] ? mul(g, a) : null], true),
  div: binaryRule(
    div,
    (g, a, b, n) => {
      const ga = n[0] || n[1] ? div(g, b) : null;
      if (!n[1]) return [ga, null];
      const t = mul(ga!, a);
      const gb = neg(div(t, b));
      t.dispose();
      return [n[0] ? ga : (ga!.dispose(), null), gb];
    },
    true,
  ),
  neg: { forward: ([x]) => ({ out: neg(x!), save: [] }), backward: (g) => [neg(g)] },
  exp: {
    forward: ([x]) => {
      const out = exp(x!);
      return { out, save: [view(out)] };
    },
    backward: (g, [y]) => [mul(g, y!)],
  },
  log: { forward: ([x]) => ({ out: log(x!), save: [view(x!)] }), backward: (g, [x]) => [div(g, x!)] },
  tanh: {
    forward: ([x]) => {
      const out = tanh(x!);
      return { out, save: [view(out)] };
    },
    backward: (g, [y]) => {
      const y2 = mul(y!, y!);
      const d = sub(1, y2);
      const out = mul(g, d);
      y2.dispose();
      d.dispose();
      return [out];
    },
  },
  gelu: {
    forward: ([x]) => ({ out: gelu(x!), save: [view(x!)] }),
    backward: (g, [x]) => [geluGrad(g, x!)],
  },
  matmul: {
    forward: ([a, b], { transA, transB }) => ({ out: matmul(a!, b!, { transA, transB }), save: [view(a!), view(b!)] }),
    backward: (g, [a, b], { transA, transB }, needs, [sa, sb]) => {
      const ga = !needs[0] ? null : transA ? matmul(b!, g, { transA: transB, transB: true }) : matmul(g, b!, { transB: !transB });
      // A shared 2-D weight under a batched, untransposed A: fold the batch into the contraction
      // (one (K, N) product) instead of a per-batch gradient summed afterwards.
      const fold = needs[1] && sb!.length === 2 && sa!.length > 2 && !transA;
      const gb = !needs[1] ? null : fold ? foldedWeightGrad(a!, g, transB) : transB ? matmul(g, a!, { transA: true, transB: transA }) : matmul(a!, g, { transA: !transA });
      return [ga && unbroadcast(ga, sa!), gb && unbroadcast(gb, sb!)];
    },
  },
  sum: {
    forward: ([x], { axes, keepDims }) => ({ out: sum(x!, axes, keepDims), save: [] }),
    backward: (g, _s, { axes }, _n, [shape]) => [expand(g, shape!, axes)],
  },
  mean: {
    forward: ([x], { axes, keepDims }) => ({ out: mean(x!, axes, keepDims), save: [] }),
    backward: (g, _s, { axes }, _n, [shape]) => {
      const count = axes.reduce((n, a) => n * shape![a]!, 1);
      const e = expand(g, shape!, axes);
      const out = mul(e, 1 / count);
      e.dispose();
      return [out];
    },
  },
  reshape: {
    forward: ([x], { shape }) => ({ out: x!.reshape(shape), save: [] }),
    backward: (g, _s, _a, _n, [shape]) => [g.reshape(shape!)],
  },
  permute: {
    forward: ([x], { perm }) => ({ out: permute(x!, perm), save: [] }),
    backward: (g, _s, { perm }) => {
      const inv = new Array<number>(perm.length);
      perm.forEach((p, i) => (inv[(p + perm.length) % perm.length] = i));
      return [permute(g, inv)];
    },
  },
  softmax: {
    forward: ([x]) => {
      const out = softmax(x!);
      return { out, save: [view(out)] };
    },
    backward: (g, [y]) => {
      // dx = y · (g − Σ g·y)
      const gy = mul(g, y!);
      const s = sum(gy, [-1], true);
      const d = sub(g, s);
      const out = mul(y!, d);
      for (const t of [gy, s, d]) t.dispose();
      return [out];
    },
  },
  layerNorm: {
    forward: ([x, w, b], { eps }) => {
      const { out, mean: mu, rstd } = layerNormWithStats(x!, w!, b!, eps);
      return { out, save: [view(x!), view(w!), mu, rstd] };
    },
    backward: (g, [x, w, mu, rstd], _a, needs, [shape]) => layerNormGrad(g, x!, w!, mu!, rstd!, needs, shape!),
  },
  attention: attentionRule,
  infoNCE: infoNCERule,
  patchEmbed: patchEmbedRule,
  crossEntropy: crossEntropyRule,
  embedding: embeddingRule,
  indexSelect: indexSelectRule,
  quickGelu: quickGeluRule,
  slice: sliceRule,
  concat: concatRule,
};

const C = Math.sqrt(2 / Math.PI);

/** d gelu(x)/dx · g, composed: 0.5(1 + t) + 0.5x(1 − t²)·c(1 + 3·0.044715x²), t = tanh(c(x + 0.044715x³)). */
function geluGrad(g: Tensor, x: Tensor): Tensor {
  const tmp: Tensor[] = [];
  const k = <T extends Tensor>(t: T): T => (tmp.push(t), t);
  const x2 = k(mul(x, x));
  const inner = k(mul(k(add(k(mul(x2, 0.044715)), 1)), k(mul(x, C))));
  const t = k(tanh(inner));
  const left = k(mul(k(add(t, 1)), 0.5));
  const sech2 = k(sub(1, k(mul(t, t))));
  const dinner = k(mul(k(add(k(mul(x2, 3 * 0.044715)), 1)), C));
  const right = k(mul(k(mul(k(mul(x, 0.5)), sech2)), dinner));
  const out = mul(g, k(add(left, right)));
  for (const u of tmp) u.dispose();
  return out;
}

function layerNormGrad(g: Tensor, x: Tensor, w: Tensor, mu: Tensor, rstd: Tensor, needs: boolean[], shape: Shape): (Tensor | null)[] {
  const tmp: Tensor[] = [];
  const k = <T extends Tensor>(t: T): T => (tmp.push(t), t);
  const rowShape = [...shape.slice(0, -1), 1];
  const m = k(mu.reshape(rowShape));
  const r = k(rstd.reshape(rowShape));
  const xhat = k(mul(k(sub(x, m)), r)); // (..., C)
  const lead = shape.slice(0, -1).map((_, i) => i);
  const gw = needs[1] ? sum(k(mul(g, xhat)), lead, false) : null;
  const gb = needs[2] ? sum(g, lead, false) : null;
  let gx: Tensor | null = null;
  if (needs[0]) {
    const dxhat = k(mul(g, w)); // (..., C)
    const a = k(mean(dxhat, [-1], true));
    const b = k(mean(k(mul(dxhat, xhat)), [-1], true));
    gx = mul(k(sub(k(sub(dxhat, a)), k(mul(xhat, b)))), r);
  }
  for (const u of tmp) u.dispose();
  return [gx, gw, gb];
}
