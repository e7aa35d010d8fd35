// slice: out = x[s0:e0, s1:e1, ...] over the leading len(starts) axes (the rest kept whole);
// negative starts/ends count from the end like Python; out-of-range or empty ranges throw.
// When the selected block is contiguous in x (axes before the sliced one reduced to one
// index, axes after it whole) and starts at a binding-aligned offset, the result is a view
// (rowsView) sharing x's storage; otherwise it is one stridedCopy pass (copy.ts: one element,
// or one vec4 when rows stay 4-aligned, per invocation; chunked above one binding).
import { ShapeError, fmtShape } from "../errors.js";
import { sizeOf, stridesOf } from "../shape.js";
import type { Tensor } from "../tensor.js";
import { stridedCopy, stridedCopyRef } from "./copy.js";
import { expectLive } from "./util.js";

/** Normalised [start, end) per axis of `shape` (all axes; trailing ones whole). */
function sliceRanges(op: string, shape: readonly number[], starts: readonly number[], ends: readonly number[]): [number, number][] {
  const ctx = `(starts=[${starts.join(", ")}], ends=[${ends.join(", ")}], x=${fmtShape(shape)})`;
  if (starts.length !== ends.length || starts.length > shape.length) {
    throw new ShapeError(`${op}: expected starts and ends of equal length <= rank ${shape.length}, got ${starts.length} and ${ends.length} ${ctx}`);
  }
  return shape.map((d, i): [number, number] => {
    if (i >= starts.length) return [0, d];
    const s0 = starts[i]!;
    const e0 = ends[i]!;
    const s = s0 < 0 ? s0 + d : s0;
    const e = e0 < 0 ? e0 + d : e0;
    if (!Number.isInteger(s0) || !Number.isInteger(e0) || s < 0 || e > d || s >= d) {
      throw new ShapeError(`${op}: expected start in [${-d}, ${d}) and end in [${-d}, ${d}] on axis ${i}, got ${s0}:${e0} ${ctx}`);
    }
    if (e <= s) throw new ShapeError(`${op}: expected a non-empty range on axis ${i}, got ${s0}:${e0} (${s}:${e}) ${ctx}`);
    return [s, e];
  });
}

/** x[starts[0]:ends[0], starts[1]:ends[1], ...]: a view when contiguous and aligned, else a copy. */
export function slice(x: Tensor, starts: readonly number[], ends: readonly number[]): Tensor {
  expectLive("slice", "x", x);
  const ranges = sliceRanges("slice", x.shape, starts, ends);
  const outShape = ranges.map(([s, e]) => e - s);
  const strides = stridesOf(x.shape);
  const base = ranges.reduce((acc, [s], i) => acc + s * strides[i]!, 0);
  // contiguous block: first axis k not reduced to one index; all axes after k whole
  let k = 0;
  while (k < x.rank - 1 && outShape[k] === 1) k++;
  if (x.rank > 0 && ranges.every(([s, e], i) => i <= k || (s === 0 && e === x.shape[i]))) {
    const rowLen = strides[k]!;
    const flat = x.reshape([x.size / rowLen, rowLen]);
    const row0 = base / rowLen;
    const view = flat.rowsView(row0, row0 + sizeOf(outShape) / rowLen);
    flat.dispose();
    if (view) {
      const out = view.reshape(outShape);
      view.dispose();
      return out;
    }
  }
  return stridedCopy("slice", x, outShape, base, strides);
}

/** float64 reference of slice. */
export function sliceRef(x: ArrayLike<number>, shape: readonly number[], starts: readonly number[], ends: readonly number[]): Float64Array {
  const ranges = sliceRanges("sliceRef", shape, starts, ends);
  const strides = stridesOf(shape);
  const base = ranges.reduce((acc, [s], i) => acc + s * strides[i]!, 0);
  return stridedCopyRef(x, ranges.map(([s, e]) => e - s), base, strides);
}
