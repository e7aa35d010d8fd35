// reduce: sum / mean / max / min over any set of axes, and argmax along one axis.
//   x [d0, ..., dn-1] -> out with the reduced axes removed (keepDims: kept as 1); no axes = all.
// The reduced axes are grouped into runs of neighbouring dims and each run is reduced in turn
// (last first) as a 3-D problem x [O, R, I] -> [O, I]. One pass splits R into segments of at
// most B rows and writes one partial per (o, segment, i); passes repeat until one segment
// is left, so long reductions are a tree of short f32 sums (Kahan-compensated within a
// segment): 1e6 -> 245 -> 1 for a flat sum.
// Layouts of one pass (workgroups of 64 invocations):
//   rows (I = 1), software adapters: one invocation per segment, four interleaved accumulators
//     (lavapipe runs invocations as SIMD lanes; a workgroup tree was 3-5x slower there:
//     sum over the last axis of [1600, 768] 1.8 vs 9.5 ms, [400, 50257] 19 vs 48 ms)
//   rows (I = 1), GPUs: one workgroup per segment, lanes stride the segment, tree in workgroup memory
//   columns (I > 1): one invocation per (segment, i); neighbouring invocations read neighbouring i
// Inputs above one binding (128 MiB) are processed in chunks of whole segments (contiguous).
// argmax is one pass (B = R) with the same layouts; ties go to the first index.
// NaN: max/min/argmax follow WGSL's max/min and comparisons (unspecified; torch propagates it).
import { device } from "../device.js";
import type { DType } from "../dtype.js";
import { LimitError, ReleasedError, ShapeError, fmtShape } from "../errors.js";
import { WG_ARGS, WG_INDEX, kernel, run } from "../kernel.js";
import { f32 } from "../recorder.js";
import { type Shape, normAxis, sizeOf } from "../shape.js";
import { alloc, type Tensor } from "../tensor.js";
import { expectDType, maxChunkElems } from "./util.js";

export type ReduceKind = "sum" | "max" | "min" | "argmax";
type Layout = "rowInv" | "rowWg" | "col";

/** Tuning knob for tests and benchmarks: force the row layout ("auto": by adapter type). */
export const reduceConfig: { rows: "auto" | "invocation" | "workgroup" } = { rows: "auto" };

/** Rows per segment: row layouts and column layouts. */
const ROW_BLOCK = 4096;
const COL_BLOCK = 256;
const WG = 64;

// ---- kernel ---------------------------------------------------------------------------

function reduceKernel(kind: ReduceKind, dtype: DType, layout: Layout) {
  return kernel("reduce", `${kind}:${dtype}:${layout}`, () => {
    const T = dtype;
    const arg = kind === "argmax";
    const kahan = kind === "sum" && dtype === "f32";
    const cmp = kind === "min" ? "<" : ">";
    // scalar accumulation of v (at index r) into (s, c) or (s, bi)
    const acc1 = arg
      ? (s: string, bi: string, v: string, r: string) => `if (${v} > ${s}) { ${s} = ${v}; ${bi} = ${r}; }`
      : kind === "sum"
        ? kahan
          ? (s: string, c: string, v: string) => `{ let y = ${v} - ${c}; let t = ${s} + y; ${c} = (t - ${s}) - y; ${s} = t; }`
          : (s: string, _c: string, v: string) => `${s} += ${v};`
        : (s: string, _c: string, v: string) => `${s} = ${kind}(${s}, ${v});`;
    // the identity-free start: sums start at 0, max/min/argmax at the segment's first element
    const init = (first: string) => (kind === "sum" ? `${T}(0)` : first);
    // combine (s2, i2) into (s, i) in the tree: argmax keeps the lower index on ties
    const merge = arg
      ? `if (v2 > v || (v2 == v && i2 < i)) { v = v2; i = i2; }`
      : kind === "sum"
        ? "v = v + v2;"
        : `v = ${kind}(v, v2);`;
    const result = (v: string) => (kind === "sum" && dtype === "f32" ? `(${v}) * p.scale` : v);
    const outT = arg ? "i32" : T;
    let body: string;
    if (layout === "rowInv") {
      const A = `vec4<${T}>`;
      const v4 = "vec4(x[j + i], x[j + i + 1u], x[j + i + 2u], x[j + i + 3u])";
      const loop4 = arg
        ? `let v = ${v4}; let up = v > s; s = select(s, v, up); bi = select(bi, vec4u(i) + vec4u(0u, 1u, 2u, 3u), up);`
        : kind === "sum"
          ? kahan
            ? `let v = ${v4}; let y = v - c; let t = s + y; c = (t - s) - y; s = t;`
            : `s += ${v4};`
          : `s = ${kind}(s, ${v4});`;
      const fin = arg
        ? `var v = s.x; var i = bi.x;
  for (var k = 1u; k < 4u; k++) { let v2 = s[k]; let i2 = bi[k]; ${merge} }`
        : kind === "sum"
          ? `let v = ${kahan ? "((s.x + s.y) + (s.z + s.w)) - ((c.x + c.y) + (c.z + c.w))" : "(s.x + s.y) + (s.z + s.w)"};`
          : `let v = ${kind}(${kind}(s.x, s.y), ${kind}(s.z, s.w));`;
      body = `
  let t = ${WG_INDEX} * ${WG}u + lid;
  if (t >= p.count) { return; }
  let g = p.g0 + t;
  let seg = segment(g);
  let j = seg.x; let len = seg.y;
  var s = ${A}(${init("x[j]")});
  ${kahan ? `var c = ${A}(0);` : ""}${arg ? "var bi = vec4u(0u);" : ""}
  let n4 = len & ~3u;
  var i = 0u;
  for (; i < n4; i += 4u) { ${loop4} }
  for (; i < len; i++) { let v = x[j + i]; ${arg ? acc1("s.x", "bi.x", "v", "i") : acc1("s.x", "c.x", "v", "")} }
  {
    ${fin}
    out[p.ko + g] = ${result(arg ? "i32(i + seg.z)" : "v")};
  }`;
    } else if (layout === "rowWg") {
      body = `
  let g = p.g0 + ${WG_INDEX};
  let live = g < p.g0 + p.count;
  let seg = segment(min(g, p.g0 + p.count - 1u));
  let j = seg.x; let len = seg.y;
  var s = ${init("x[j]")};
  var c = ${T}(0); var bi = 0u;
  for (var i = lid; i < len; i += ${WG}u) { let v = x[j + i]; ${arg ? acc1("s", "bi", "v", "i") : acc1("s", "c", "v", "")} }
  sv[lid] = s${kahan ? " - c" : ""};
  ${arg ? "si[lid] = bi;" : ""}
  workgroupBarrier();
  for (var h = ${WG / 2}u; h > 0u; h >>= 1u) {
    if (lid < h) {
      var v = sv[lid]; let v2 = sv[lid + h];
      ${arg ? "var i = si[lid]; let i2 = si[lid + h];" : ""}
      ${merge}
      sv[lid] = v;
      ${arg ? "si[lid] = i;" : ""}
    }
    workgroupBarrier();
  }
  if (live && lid == 0u) { out[p.ko + g] = ${result(arg ? "i32(si[0] + seg.z)" : "sv[0]")}; }`;
    } else {
      body = `
  let t = ${WG_INDEX} * ${WG}u + lid;
  if (t >= p.count * p.I) { return; }
  let g = p.g0 + t / p.I;
  let col = t % p.I;
  let seg = segment(g);
  let j = seg.x + col; let len = seg.y;
  var s = ${init("x[j]")};
  var c = ${T}(0); var bi = 0u;
  for (var r = 0u; r < len; r++) { let v = x[j + r * p.I]; ${arg ? acc1("s", "bi", "v", "r") : acc1("s", "c", "v", "")} }
  out[p.ko + g * p.I + col] = ${result(arg ? "i32(bi + seg.z)" : `s${kahan ? " - c" : ""}`)};`;
    }
    return {
      bindings: ["read", "rw"],
      code: `
struct P { R: u32, I: u32, B: u32, nSeg: u32, g0: u32, count: u32, base: u32, skip: u32, ko: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<${T}>;
@group(0) @binding(2) var<storage, read_write> out: array<${outT}>;
${layout === "rowWg" ? `var<workgroup> sv: array<${T}, ${WG}>;\n${arg ? `var<workgroup> si: array<u32, ${WG}>;` : ""}` : ""}
// segment g = (o, rb): (first element in this chunk's binding, rows, first row index)
fn segment(g: u32) -> vec3u {
  let o = g / p.nSeg; let rb = g - o * p.nSeg;
  let r0 = rb * p.B;
  return vec3u(o * p.R * p.I + r0 * p.I - p.base + p.skip, min(p.B, p.R - r0), r0);
}
@compute @workgroup_size(${WG}) fn main(${WG_ARGS}) {${body}
}`,
    };
  });
}

// ---- one pass and one group -----------------------------------------------------------

function rowLayout(): Layout {
  const mode = reduceConfig.rows;
  if (mode === "invocation") return "rowInv";
  if (mode === "workgroup") return "rowWg";
  return device().adapter.software ? "rowInv" : "rowWg";
}

/** One pass over x viewed as [O, R, I] with segments of B rows -> out [O, ceil(R/B), I]. */
function pass(op: string, kind: ReduceKind, x: Tensor, O: number, R: number, I: number, B: number, out: Tensor, scale: number): void {
  const nSeg = Math.ceil(R / B);
  const layout = I === 1 ? rowLayout() : "col";
  const k = reduceKernel(kind, x.dtype, layout);
  const segElems = B * I;
  const maxChunk = maxChunkElems();
  if (segElems > maxChunk) {
    throw new LimitError(`${op}: expected a reduced slice of at most ${maxChunk * 4} bytes, got ${segElems * 4} (x=${fmtShape(x.shape)})`);
  }
  const total = O * nSeg;
  const perChunk = x.size <= maxChunk ? total : Math.floor(maxChunk / segElems);
  const segStart = (g: number): number => {
    const o = Math.floor(g / nSeg);
    return o * R * I + (g - o * nSeg) * B * I;
  };
  const ob = out.binding(op, "out");
  for (let g0 = 0; g0 < total; g0 += perChunk) {
    const count = Math.min(perChunk, total - g0);
    const base = segStart(g0);
    const end = g0 + count === total ? x.size : segStart(g0 + count);
    const { binding, skip } = perChunk === total ? { binding: x.binding(op, "x"), skip: 0 } : x.rangeBinding(op, "x", base, end - base);
    const groups = layout === "rowWg" ? count : Math.ceil((layout === "col" ? count * I : count) / WG);
    run(k, [binding, ob], [R, I, B, nSeg, g0, count, perChunk === total ? 0 : base, skip, 0, f32(scale)], groups, end - base);
  }
}

/** Reduces x viewed as [O, R, I] over R (multi-pass); writes `into` when given. */
function reduceGroup(op: string, kind: ReduceKind, x: Tensor, O: number, R: number, I: number, scale: number, into?: Tensor): Tensor {
  let cur = x;
  let rows = R;
  for (;;) {
    // column segments shrink so that one (B rows x I) slice fits a binding
    const B = kind === "argmax" ? rows : I === 1 ? Math.min(rows, ROW_BLOCK) : Math.min(rows, COL_BLOCK, Math.max(1, Math.floor(maxChunkElems() / I)));
    const nSeg = Math.ceil(rows / B);
    const last = nSeg === 1;
    const out = last && into ? into : alloc([O * nSeg * I], kind === "argmax" ? "i32" : x.dtype);
    pass(op, kind, cur, O, rows, I, B, out, last ? scale : 1);
    if (cur !== x) cur.dispose();
    cur = out;
    rows = nSeg;
    if (last) return cur;
  }
}

// ---- public ops -----------------------------------------------------------------------

function expectLive(op: string, x: Tensor): void {
  if (x.disposed) throw new ReleasedError(`${op}: expected a live tensor for x, got one released by dispose() (shape ${fmtShape(x.shape)})`);
}

function normAxes(op: string, x: Tensor, axes: number | readonly number[] | undefined): number[] {
  if (axes === undefined) return x.shape.map((_, i) => i);
  const list = (typeof axes === "number" ? [axes] : [...axes]).map((a) => normAxis(op, a, x.rank));
  if (new Set(list).size !== list.length) {
    throw new ShapeError(`${op}: expected distinct axes, got [${(typeof axes === "number" ? [axes] : axes).join(", ")}] (x=${fmtShape(x.shape)})`);
  }
  return list.sort((a, b) => a - b);
}

function reduce(op: string, kind: ReduceKind, x: Tensor, axes: number | readonly number[] | undefined, keepDims: boolean, mean: boolean): Tensor {
  if (mean) expectDType(op, "x", x, "f32");
  else expectDType(op, "x", x, "f32", "i32");
  expectLive(op, x);
  const ax = normAxes(op, x, axes);
  const outShape: number[] = [];
  x.shape.forEach((d, i) => {
    if (!ax.includes(i)) outShape.push(d);
    else if (keepDims) outShape.push(1);
  });
  const count = ax.reduce((n, a) => n * x.shape[a]!, 1);
  // runs of neighbouring dims with the same role; size-1 dims play no part
  const dims: { size: number; red: boolean }[] = [];
  x.shape.forEach((d, i) => {
    if (d === 1) return;
    const red = ax.includes(i);
    const last = dims[dims.length - 1];
    if (last && last.red === red) last.size *= d;
    else dims.push({ size: d, red });
  });
  if (!dims.some((d) => d.red)) dims.push({ size: 1, red: true });
  const out = alloc(outShape, x.dtype);
  let cur = x;
  while (dims.some((d) => d.red)) {
    const k = dims.map((d) => d.red).lastIndexOf(true);
    const O = sizeOf(dims.slice(0, k).map((d) => d.size));
    const I = sizeOf(dims.slice(k + 1).map((d) => d.size));
    const final = !dims.slice(0, k).some((d) => d.red);
    const next = reduceGroup(op, kind, cur, O, dims[k]!.size, I, final && mean ? 1 / count : 1, final ? out : undefined);
    if (cur !== x) cur.dispose();
    cur = next;
    dims.splice(k, 1);
  }
  return out;
}

/** Sum over `axes` (default: all). */
export const sum = (x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor => reduce("sum", "sum", x, axes, keepDims, false);
/** Mean over `axes` (default: all); f32 only. */
export const mean = (x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor => reduce("mean", "sum", x, axes, keepDims, true);
/** Maximum over `axes` (default: all). */
export const max = (x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor => reduce("max", "max", x, axes, keepDims, false);
/** Minimum over `axes` (default: all). */
export const min = (x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor => reduce("min", "min", x, axes, keepDims, false);

/** Index (i32) of the largest value along `axis`; the first one on ties. */
export function argmax(x: Tensor, axis = -1, keepDims = false): Tensor {
  expectDType("argmax", "x", x, "f32", "i32");
  expectLive("argmax", x);
  const a = normAxis("argmax", axis, x.rank);
  const O = sizeOf(x.shape.slice(0, a));
  const R = x.shape[a]!;
  const I = sizeOf(x.shape.slice(a + 1));
  const outShape = keepDims ? x.shape.map((d, i) => (i === a ? 1 : d)) : x.shape.filter((_, i) => i !== a);
  return reduceGroup("argmax", "argmax", x, O, R, I, 1, alloc(outShape, "i32"));
}

// ---- float64 references ---------------------------------------------------------------

/** float64 reference of sum/mean/max/min over `axes` (sorted, distinct, non-negative). */
export function reduceRef(kind: "sum" | "mean" | "max" | "min", x: ArrayLike<number>, shape: Shape, axes: readonly number[]): Float64Array {
  const outShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const n = sizeOf(outShape);
  const out = new Float64Array(n).fill(kind === "max" ? -Infinity : kind === "min" ? Infinity : 0);
  const strides = outShape.map((_, i) => sizeOf(outShape.slice(i + 1)));
  for (let e = 0; e < x.length; e++) {
    let rem = e;
    let o = 0;
    for (let k = shape.length - 1; k >= 0; k--) {
      const c = rem % shape[k]!;
      rem = Math.floor(rem / shape[k]!);
      if (!axes.includes(k)) o += c * strides[k]!;
    }
    const v = x[e]!;
    out[o] = kind === "max" ? Math.max(out[o]!, v) : kind === "min" ? Math.min(out[o]!, v) : out[o]! + v;
  }
  if (kind === "mean") {
    const count = axes.reduce((c, a) => c * shape[a]!, 1);
    for (let i = 0; i < n; i++) out[i]! /= count;
  }
  return out;
}

/** float64 reference of argmax along `axis` (first index on ties). */
export function argmaxRef(x: ArrayLike<number>, shape: Shape, axis: number): Int32Array {
  const O = sizeOf(shape.slice(0, axis));
  const R = shape[axis]!;
  const I = sizeOf(shape.slice(axis + 1));
  const out = new Int32Array(O * I);
  for (let o = 0; o < O; o++) {
    for (let i = 0; i < I; i++) {
      let best = 0;
      for (let r = 1; r < R; r++) if (x[(o * R + r) * I + i]! > x[(o * R + best) * I + i]!) best = r;
      out[o * I + i] = best;
    }
  }
  return out;
}
