// copy: `clone` (a contiguous copy of any tensor) and `stridedCopy`, the gather copy behind
// permute and slice: out[i] = x[base + Σ_d c_d(i)·strides[d]] with c(i) = unravel(i, outShape).
// Elements move as raw 32-bit words, so every dtype shares the kernels.
// clone: 256 invocations a workgroup, each moving 4 consecutive items (vec4s for the bulk,
//   scalars for a tail of < 4 elements), grid() over the workgroups; tensors above one
//   binding go by chunks of one binding.
// stridedCopy: one output element per invocation, the unravel loop specialised per rank
//   (≤ 6); the output is processed in chunks of one binding and, when the input is above one
//   binding, each output chunk runs once per input chunk its index bounds can touch
//   (elements outside that input chunk are skipped by the kernel).
import { ReleasedError, ShapeError, fmtShape } from "../errors.js";
import { WG_ARGS, WG_INDEX, kernel, run } from "../kernel.js";
import type { Shape } from "../shape.js";
import { sizeOf, stridesOf } from "../shape.js";
import { alloc, type Tensor } from "../tensor.js";
import { expectLive, forChunks, maxChunkElems } from "./util.js";

const cloneKernel = (vec: boolean) =>
  kernel("clone", vec ? "v4" : "s", () => {
    const T = vec ? "vec4<u32>" : "u32";
    return {
      bindings: ["read", "rw"],
      code: `
struct P { n: u32, skipIn: u32, skipOut: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<${T}>;
@group(0) @binding(2) var<storage, read_write> dst: array<${T}>;
@compute @workgroup_size(256) fn main(${WG_ARGS}) {
  let i = (${WG_INDEX} * 256u + lid) * 4u;
  let a = p.skipIn + i;
  let b = p.skipOut + i;
  if (i + 3u < p.n) {
    dst[b] = src[a]; dst[b + 1u] = src[a + 1u]; dst[b + 2u] = src[a + 2u]; dst[b + 3u] = src[a + 3u];
  } else {
    for (var j = 0u; i + j < p.n; j++) { dst[b + j] = src[a + j]; }
  }
}`,
    };
  });

/** Copies `count` elements from x[xStart..] to out[outStart..] (chunked over bindings). */
export function copyRange(op: string, x: Tensor, xStart: number, out: Tensor, outStart: number, count: number): void {
  forChunks(count, maxChunkElems(), (s, n) => {
    const a = x.rangeBinding(op, "x", xStart + s, n);
    const b = out.rangeBinding(op, "out", outStart + s, n);
    let done = 0;
    if (a.skip % 4 === 0 && b.skip % 4 === 0 && n >= 4) {
      const items = Math.floor(n / 4);
      run(cloneKernel(true), [a.binding, b.binding], [items, a.skip / 4, b.skip / 4], Math.ceil(items / 1024), n);
      done = items * 4;
    }
    if (done < n) {
      run(cloneKernel(false), [a.binding, b.binding], [n - done, a.skip + done, b.skip + done], Math.ceil((n - done) / 1024), n - done);
    }
  });
}

/** A new contiguous tensor holding a copy of `x` (a kernel: it keeps the compute pass open). */
export function clone(x: Tensor): Tensor {
  expectLive("clone", "x", x);
  const out = alloc(x.shape, x.dtype);
  copyRange("clone", x, 0, out, 0, x.size);
  return out;
}

const MAX_RANK = 6;

const stridedKernel = (rank: number, vec: boolean) =>
  kernel("stridedCopy", `${rank}${vec ? "v4" : "s"}`, () => {
    const T = vec ? "vec4<u32>" : "u32";
    let body = "";
    for (let d = rank - 1; d >= 0; d--) {
      const dim = `p.shape[${d >> 2}][${d & 3}]`;
      const st = `p.strides[${d >> 2}][${d & 3}]`;
      body += d > 0 ? `  { let q = r / ${dim}; src += (r - q * ${dim}) * ${st}; r = q; }\n` : `  src += r * ${st};\n`;
    }
    return {
      bindings: ["read", "rw"],
      code: `
struct P { n: u32, outStart: u32, skipOut: u32, base: u32, lo: u32, hi: u32, skipIn: u32, pad: u32,
  shape: array<vec4<u32>, 2>, strides: array<vec4<u32>, 2> }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<${T}>;
@group(0) @binding(2) var<storage, read_write> dst: array<${T}>;
@compute @workgroup_size(256) fn main(${WG_ARGS}) {
  let i = ${WG_INDEX} * 256u + lid;
  if (i >= p.n) { return; }
  var r = p.outStart + i;
  var src = p.base;
${body}  if (src >= p.lo && src < p.hi) { dst[p.skipOut + i] = x[p.skipIn + src - p.lo]; }
}`,
    };
  });

/** Merges adjacent output axes that are also adjacent in the input (and drops size-1 axes). */
export function collapseStrided(shape: Shape, strides: readonly number[]): { shape: number[]; strides: number[] } {
  const outS: number[] = [];
  const outT: number[] = [];
  shape.forEach((d, i) => {
    if (d === 1) return;
    const st = strides[i]!;
    const last = outS.length - 1;
    if (last >= 0 && outT[last] === st * d) {
      outS[last] = outS[last]! * d;
      outT[last] = st;
    } else {
      outS.push(d);
      outT.push(st);
    }
  });
  if (outS.length === 0) return { shape: [1], strides: [0] };
  return { shape: outS, strides: outT };
}

/** Smallest and largest input index (inclusive) touched by output elements [s, e). */
function inputBounds(shape: readonly number[], strides: readonly number[], base: number, s: number, e: number): [number, number] {
  const ostr = stridesOf(shape);
  let lo = base;
  let hi = base;
  for (let d = 0; d < shape.length; d++) {
    const a = Math.floor(s / ostr[d]!) % shape[d]!;
    const b = Math.floor((e - 1) / ostr[d]!) % shape[d]!;
    const sameBefore = Math.floor(s / (ostr[d]! * shape[d]!)) === Math.floor((e - 1) / (ostr[d]! * shape[d]!));
    if (!sameBefore) {
      // an earlier axis already varies: this one spans its full range
      hi += (shape[d]! - 1) * strides[d]!;
    } else {
      lo += Math.min(a, b) * strides[d]!;
      hi += Math.max(a, b) * strides[d]!;
    }
  }
  return [lo, hi];
}

/**
 * out = a new tensor of `outShape` with out[c] = x[base + Σ c_d·strides[d]] (strides ≥ 0, in
 * elements of x). Works for any sizes: output and input are chunked over bindings as needed.
 */
export function stridedCopy(op: string, x: Tensor, outShape: Shape, base: number, strides: readonly number[]): Tensor {
  expectLive(op, "x", x);
  const c = collapseStrided(outShape, strides);
  if (c.shape.length > MAX_RANK) {
    throw new ShapeError(`${op}: expected at most ${MAX_RANK} axes that cannot be merged, got ${c.shape.length} (x=${fmtShape(x.shape)})`);
  }
  const out = alloc(outShape, x.dtype);
  const rank = c.shape.length;
  if (rank === 1 && c.strides[0] === 1) {
    copyRange(op, x, base, out, 0, out.size);
    return out;
  }
  // vec4 mode: the innermost axis is contiguous and everything is a multiple of 4 elements
  const vec = x.size % 4 === 0 && c.strides[rank - 1] === 1 && c.shape[rank - 1]! % 4 === 0 && base % 4 === 0 && c.strides.every((st, i) => i === rank - 1 || st % 4 === 0);
  const w = vec ? 4 : 1;
  const shapeW = c.shape.map((d, i) => (i === rank - 1 ? d / w : d));
  const stridesW = c.strides.map((st, i) => (i === rank - 1 ? st : st / w));
  const k = stridedKernel(rank, vec);
  const shapeU = [...shapeW, ...new Array<number>(8 - rank).fill(1)];
  const strideU = [...stridesW, ...new Array<number>(8 - rank).fill(0)];
  const chunk = maxChunkElems(); // a multiple of 64 elements
  const single = x.size <= chunk;
  forChunks(out.size, chunk, (s, n) => {
    const o = out.rangeBinding(op, "out", s, n);
    const [lo, hi] = single ? [0, x.size - 1] : inputBounds(c.shape, c.strides, base, s, s + n);
    for (let ci = Math.floor(lo / chunk); ci <= Math.floor(hi / chunk); ci++) {
      const inLo = ci * chunk;
      const inN = Math.min(chunk, x.size - inLo);
      const xi = single ? { binding: x.binding(op, "x"), skip: 0 } : x.rangeBinding(op, "x", inLo, inN);
      const u = [n / w, s / w, o.skip / w, base / w, inLo / w, (inLo + inN) / w, xi.skip / w, 0, ...shapeU, ...strideU];
      run(k, [xi.binding, o.binding], u, Math.ceil(n / w / 256), n);
    }
  });
  return out;
}

/** float64 reference of stridedCopy. */
export function stridedCopyRef(x: ArrayLike<number>, outShape: Shape, base: number, strides: readonly number[]): Float64Array {
  const n = sizeOf(outShape);
  const out = new Float64Array(n);
  const ostr = stridesOf(outShape);
  for (let i = 0; i < n; i++) {
    let src = base;
    for (let d = 0; d < outShape.length; d++) src += (Math.floor(i / ostr[d]!) % outShape[d]!) * strides[d]!;
    out[i] = x[src]!;
  }
  return out;
}

/** float64 reference of clone. */
export const cloneRef = (x: ArrayLike<number>): Float64Array => Float64Array.from(x);
