// concat: out = the inputs joined along `axis`; every other dimension must match.
// Each input x_k, viewed as [outer, d_k·inner], is one dispatch writing its rows into out
// viewed as [outer, D·inner] at column offset off_k·inner (D = Σ d_k): 256 invocations a
// workgroup, one element (or vec4 when rows are 4-aligned) each, grid() over the items. With
// one dispatch per input, only 2 storage buffers are bound at a time, so any number of inputs
// fits maxStorageBuffersPerShaderStage. When outer = 1 each input is one contiguous range and
// goes through copyRange (copy.ts). Inputs and output above one binding go by row groups
// (or pieces of a row) whose spans fit one binding.
import { DTypeError, ShapeError, fmtShape } from "../errors.js";
import { WG_ARGS, WG_INDEX, kernel, run } from "../kernel.js";
import { normAxis, sizeOf } from "../shape.js";
import { alloc, type Tensor } from "../tensor.js";
import { clone, copyRange } from "./copy.js";
import { expectLive, maxChunkElems } from "./util.js";

const concatKernel = (vec: boolean) =>
  kernel("concat", vec ? "v4" : "s", () => {
    const T = vec ? "vec4<u32>" : "u32";
    return {
      bindings: ["read", "rw"],
      code: `
struct P { n: u32, inRow: u32, outRow: u32, skipIn: u32, skipOut: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<${T}>;
@group(0) @binding(2) var<storage, read_write> dst: array<${T}>;
@compute @workgroup_size(256) fn main(${WG_ARGS}) {
  let i = ${WG_INDEX} * 256u + lid;
  if (i >= p.n) { return; }
  let r = i / p.inRow;
  dst[p.skipOut + r * p.outRow + (i - r * p.inRow)] = src[p.skipIn + i];
}`,
    };
  });

/** Copies x ([outer, inRow] elements) into out ([outer, outRow]) at column `col`. */
function copyRows(x: Tensor, out: Tensor, rows: number, inRow: number, outRow: number, col: number): void {
  const limit = maxChunkElems();
  const piece = (inStart: number, outStart: number, nrows: number, rowLen: number): void => {
    const n = nrows * rowLen;
    const a = x.rangeBinding("concat", "xs", inStart, n);
    const b = out.rangeBinding("concat", "out", outStart, (nrows - 1) * outRow + rowLen);
    const vec = rowLen % 4 === 0 && outRow % 4 === 0 && a.skip % 4 === 0 && b.skip % 4 === 0;
    const w = vec ? 4 : 1;
    run(concatKernel(vec), [a.binding, b.binding], [n / w, rowLen / w, outRow / w, a.skip / w, b.skip / w], Math.ceil(n / w / 256), n);
  };
  if (inRow <= limit) {
    // row groups whose input size and output span both fit one binding
    const per = Math.max(1, Math.min(Math.floor(limit / inRow), Math.floor((limit - inRow) / outRow) + 1));
    for (let r0 = 0; r0 < rows; r0 += per) piece(r0 * inRow, r0 * outRow + col, Math.min(per, rows - r0), inRow);
  } else {
    for (let r = 0; r < rows; r++) {
      for (let s = 0; s < inRow; s += limit) piece(r * inRow + s, r * outRow + col + s, 1, Math.min(limit, inRow - s));
    }
  }
}

/** Joins `xs` along `axis` (negative counts from the end) into a new tensor. */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  const first = xs[0];
  if (!first) throw new ShapeError("concat: expected at least one tensor for xs, got 0");
  xs.forEach((x, i) => expectLive("concat", `xs[${i}]`, x));
  const rank = first.rank;
  if (rank === 0) throw new ShapeError("concat: expected tensors of rank >= 1 for xs, got rank 0");
  const ax = normAxis("concat", axis, rank);
  xs.forEach((x, i) => {
    if (x.dtype !== first.dtype) {
      throw new DTypeError(`concat: expected dtype ${first.dtype} for xs[${i}], got ${x.dtype} (xs[${i}]=${fmtShape(x.shape)}, xs[0]=${fmtShape(first.shape)})`);
    }
    if (x.rank !== rank || x.shape.some((d, j) => j !== ax && d !== first.shape[j])) {
      throw new ShapeError(`concat: expected sizes equal to xs[0] outside axis ${ax} for xs[${i}], got ${fmtShape(x.shape)} (xs[0]=${fmtShape(first.shape)})`);
    }
  });
  if (xs.length === 1) return clone(first);
  const outShape = [...first.shape];
  outShape[ax] = xs.reduce((acc, x) => acc + x.shape[ax]!, 0);
  const out = alloc(outShape, first.dtype);
  const outer = sizeOf(first.shape.slice(0, ax));
  const inner = sizeOf(first.shape.slice(ax + 1));
  const outRow = outShape[ax]! * inner;
  let off = 0;
  for (const x of xs) {
    const inRow = x.shape[ax]! * inner;
    if (outer === 1) copyRange("concat", x, 0, out, off, inRow);
    else copyRows(x, out, outer, inRow, outRow, off);
    off += inRow;
  }
  return out;
}

/** float64 reference of concat. */
export function concatRef(xs: readonly ArrayLike<number>[], shapes: readonly (readonly number[])[], axis = 0): Float64Array {
  const s0 = shapes[0]!;
  const ax = axis < 0 ? axis + s0.length : axis;
  const outer = sizeOf(s0.slice(0, ax));
  const inner = sizeOf(s0.slice(ax + 1));
  const rows = shapes.map((s) => s[ax]! * inner);
  const outRow = rows.reduce((a, b) => a + b, 0);
  const out = new Float64Array(outer * outRow);
  let col = 0;
  xs.forEach((x, k) => {
    const w = rows[k]!;
    for (let o = 0; o < outer; o++) for (let j = 0; j < w; j++) out[o * outRow + col + j] = x[o * w + j]!;
    col += w;
  });
  return out;
}
