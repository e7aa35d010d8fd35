// Gradient rules of the loss, lookup and movement primitives (entries of the table in rules.ts).
// - crossEntropy: d logits = (softmax(logits) − onehot(target)) · g/count (engine kernel
//   crossEntropyBackward, from the forward's lse; no softmax is stored). Targets are an attr.
// - embedding / indexSelect: scatter-add of g into the table (engine embeddingBackward,
//   deterministic); indexSelect on axis k goes through [n, outer·inner] rows by permutes.
// - quickGelu: x·σ(1.702x) → g·σ(1 + 1.702x(1 − σ)), composed from elementwise ops.
// - slice: g padded back with zeros by concat along each sliced axis; concat: g sliced.
import {
  type Reduction, type Tensor, add, concat, crossEntropy, crossEntropyBackward, embedding, embeddingBackward, indexSelect, mul,
  permute, quickGelu, sigmoid, slice, sub, zeros,
} from "@llms-eye/tensor";
import type { Rule } from "./rules.js";

export interface CrossEntropyAttrs {
  /** [N] i32; must stay live until backward. */
  targets: Tensor;
  ignoreIndex: number;
  reduction: Reduction;
  /** The first `classes` columns are classes; the rest padding (no probability, zero gradient). */
  classes?: number;
}
export interface EmbeddingAttrs {
  /** i32 ids of any shape; must stay live until backward. */
  ids: Tensor;
}
export interface IndexSelectAttrs {
  axis: number;
  /** [n] i32; must stay live until backward. */
  index: Tensor;
}
/** Normalised (non-negative) [start, end) over the leading axes. */
export interface SliceAttrs {
  starts: number[];
  ends: number[];
}
export interface ConcatAttrs {
  /** Non-negative. */
  axis: number;
}

const view = (t: Tensor): Tensor => t.reshape(t.shape);
const prod = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

export const crossEntropyRule: Rule<CrossEntropyAttrs> = {
  forward: ([x], { targets, ignoreIndex, reduction, classes }) => {
    const { loss, lse } = crossEntropy(x!, targets, { ignoreIndex, reduction, classes });
    return { out: loss, save: [view(x!), lse] };
  },
  backward: (g, [x, lse], { targets, ignoreIndex, reduction, classes }) => [crossEntropyBackward(x!, targets, lse!, g, { ignoreIndex, reduction, classes })],
};

export const embeddingRule: Rule<EmbeddingAttrs> = {
  forward: ([w], { ids }) => ({ out: embedding(w!, ids), save: [] }),
  backward: (g, _s, { ids }, _n, [shape]) => [embeddingBackward(g, ids, shape![0]!)],
};

export const indexSelectRule: Rule<IndexSelectAttrs> = {
  forward: ([x], { axis, index }) => ({ out: indexSelect(x!, axis, index), save: [] }),
  backward: (g, _s, { axis, index }, _n, [shape]) => {
    const ax = axis < 0 ? axis + shape!.length : axis;
    const outer = prod(shape!.slice(0, ax));
    const D = shape![ax]!;
    const inner = prod(shape!.slice(ax + 1));
    const n = index.size;
    if (outer === 1) {
      const g2 = g.reshape([n, inner]);
      const dw = embeddingBackward(g2, index, D);
      const out = dw.reshape([...shape!]);
      g2.dispose();
      dw.dispose();
      return [out];
    }
    const tmp: Tensor[] = [];
    const k = <T extends Tensor>(t: T): T => (tmp.push(t), t);
    const rows = k(k(permute(k(g.reshape([outer, n, inner])), [1, 0, 2])).reshape([n, outer * inner]));
    const dw = k(k(embeddingBackward(rows, index, D)).reshape([D, outer, inner]));
    const back = k(permute(dw, [1, 0, 2]));
    const out = back.reshape([...shape!]);
    for (const t of tmp) t.dispose();
    return [out];
  },
};

export const quickGeluRule: Rule<null> = {
  forward: ([x]) => ({ out: quickGelu(x!), save: [view(x!)] }),
  backward: (g, [x]) => {
    const tmp: Tensor[] = [];
    const k = <T extends Tensor>(t: T): T => (tmp.push(t), t);
    const ax = k(mul(x!, 1.702));
    const s = k(sigmoid(ax));
    const d = k(mul(s, k(add(k(mul(ax, k(sub(1, s)))), 1))));
    const out = mul(g, d);
    for (const t of tmp) t.dispose();
    return [out];
  },
};

export const sliceRule: Rule<SliceAttrs> = {
  forward: ([x], { starts, ends }) => ({ out: slice(x!, starts, ends), save: [] }),
  backward: (g, _s, { starts, ends }, _n, [shape]) => {
    let cur = view(g);
    for (let i = starts.length - 1; i >= 0; i--) {
      const d = shape![i]!;
      const s = starts[i]!;
      const e = ends[i]!;
      if (s === 0 && e === d) continue;
      const pad = (len: number): Tensor => zeros(cur.shape.map((c, j) => (j === i ? len : c)));
      const parts = [...(s > 0 ? [pad(s)] : []), cur, ...(e < d ? [pad(d - e)] : [])];
      const next = concat(parts, i);
      for (const t of parts) t.dispose();
      cur = next;
    }
    return [cur];
  },
};

export const concatRule: Rule<ConcatAttrs> = {
  forward: (xs, { axis }) => ({ out: concat(xs, axis), save: [] }),
  backward: (g, _s, { axis }, needs, shapes) => {
    let off = 0;
    return shapes.map((s, k) => {
      const len = s[axis]!;
      const starts = s.slice(0, axis + 1).map((_, j) => (j === axis ? off : 0));
      const ends = s.slice(0, axis + 1).map((d, j) => (j === axis ? off + len : d));
      off += len;
      return needs[k] ? slice(g, starts, ends) : null;
    });
  },
};
