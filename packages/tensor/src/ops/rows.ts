// Row-wise kernel plumbing shared by softmax, logSoftmax, crossEntropy and l2Normalize
// (internal, not exported from index.ts).
//
// Layout: one invocation per row, W rows per workgroup, no workgroup memory and no
// barriers. On lavapipe (invocations are SIMD lanes, barriers are costly) this beat one
// workgroup per row with a tree reduction by ~3x on [400, 50257] (2.8 vs 0.85 GB/s).
// Rows are read as vec4 (a load costs about the same for 1 or 4 floats there): the row
// [s, e) of the flat binding is its first and last vec4 (masked) plus the whole vec4s
// between. Tensors above one storage binding are cut into chunks of whole rows.
import { device } from "../device.js";
import { WG_ARGS, WG_INDEX } from "../kernel.js";
import { LimitError, fmtShape } from "../errors.js";
import type { BufferBinding } from "../recorder.js";
import { normAxis } from "../shape.js";
import type { Tensor } from "../tensor.js";
import { permute } from "./permute.js";
import { maxChunkElems } from "./util.js";

/** `fn` applied along `axis`: natively on the last axis, otherwise between two permutes. */
export function alongAxis(op: string, x: Tensor, axis: number, fn: (x: Tensor) => Tensor): Tensor {
  const ax = normAxis(op, axis, x.rank);
  if (ax === x.rank - 1) return fn(x);
  const perm = [...Array(x.rank).keys()];
  perm[ax] = x.rank - 1;
  perm[x.rank - 1] = ax;
  const xt = permute(x, perm);
  const yt = fn(xt);
  xt.dispose();
  const y = permute(yt, perm);
  yt.dispose();
  return y;
}

/** A stand-in for -inf in WGSL arithmetic (f32 max is 3.4e38). */
export const NEG_BIG = "-3.0e38";

/** The binding rounded up to whole vec4s (a pooled buffer always holds them). */
export function vec4Binding(b: BufferBinding): BufferBinding {
  return { ...b, size: Math.ceil(b.size / 16) * 16 };
}

/** Rows [row0, row0 + rows) of a [*, width] tensor as a vec4 binding, and its `skip`. */
export function rowsBinding(op: string, name: string, t: Tensor, width: number, row0: number, rows: number): { binding: BufferBinding; skip: number } {
  const { binding, skip } = t.rangeBinding(op, name, row0 * width, rows * width);
  return { binding: vec4Binding(binding), skip };
}

export interface RowChunk {
  row0: number;
  rows: number;
}

/** Whole-row chunks, of balanced sizes, whose elements fit one storage binding. */
export function rowChunks(op: string, shape: readonly number[], rows: number, width: number): RowChunk[] {
  const max = Math.floor(maxChunkElems() / width);
  if (max < 1) {
    throw new LimitError(
      `${op}: expected rows of at most ${maxChunkElems()} elements (maxStorageBufferBindingSize ${device().maxBinding} bytes), got ${width} (shape ${fmtShape(shape)})`,
    );
  }
  const n = Math.ceil(rows / max);
  const per = Math.ceil(rows / n);
  const out: RowChunk[] = [];
  for (let row0 = 0; row0 < rows; row0 += per) out.push({ row0, rows: Math.min(per, rows - row0) });
  return out;
}

/** Rows per workgroup: 64, fewer when there are few rows (keeps both CPU threads busy). */
export function rowsPerWorkgroup(rows: number): number {
  let w = 64;
  while (w > 8 && Math.ceil(rows / w) < 4) w /= 2;
  return w;
}

/**
 * WGSL statements writing row [s, e) of `out: array<vec4f>` (declared by the kernel; its
 * binding begins `p.oskip - p.skip` elements after x's, a multiple of 4) as `f(value)`,
 * where f maps an f32 or a vec4f expression of x. The whole vec4s are written as vec4, the
 * first and last (shared with the neighbouring rows) element by element.
 */
export const writeRowWgsl = (f: (v: string) => string): string => `
  let d = p.oskip - p.skip; // u32 arithmetic wraps, so a negative difference works too
  let d4 = p.oskip / 4u - p.skip / 4u;
  let v0 = s / 4u;
  let v1 = (e - 1u) / 4u;
  for (var i = s; i < min(4u * v0 + 4u, e); i++) { let o = i + d; out[o / 4u][o % 4u] = ${f("x_at(i)")}; }
  if (v1 > v0) {
    for (var i = 4u * v1; i < e; i++) { let o = i + d; out[o / 4u][o % 4u] = ${f("x_at(i)")}; }
  }
  for (var j = v0 + 1u; j < v1; j++) { out[j + d4] = ${f("x[j]")}; }`;

/**
 * WGSL: the entry point of a row kernel with `W` rows a workgroup, one row per invocation:
 * row `r` (returns past `p.rows`) spans elements [s, e) of `x`, after `p.skip`.
 */
export const rowMainWgsl = (W: number): string => `@compute @workgroup_size(${W}) fn main(${WG_ARGS}) {
  let r = ${WG_INDEX} * ${W}u + lid;
  if (r >= p.rows) { return; }
  let s = p.skip + r * p.width;
  let e = s + p.width;`;

/**
 * WGSL over `x: array<vec4f>` (declared by the kernel): element access, masked vec4
 * loads, and `row_stats(s, e)` = (max, sum of exp(x - max)) over elements [s, e) in one
 * streaming pass (online max: the sum is rescaled when the max grows, once per vec4). The
 * max starts at NEG_BIG, not -inf, so it stays finite: a row of -inf gives sum 0, hence
 * logsumexp -inf and softmax NaN, as torch.
 */
export const ROW_WGSL = `
const NEG_BIG = ${NEG_BIG};
fn x_at(i: u32) -> f32 { return x[i / 4u][i % 4u]; }
fn in_row(j: u32, s: u32, e: u32) -> vec4<bool> {
  let i = vec4u(4u * j) + vec4u(0u, 1u, 2u, 3u);
  return (i >= vec4u(s)) & (i < vec4u(e));
}
fn neg_inf() -> f32 { var b = 0xff800000u; return bitcast<f32>(b); } // WGSL has no infinite constants
// outside the row: -inf, so exp(. - m) is 0 even when every element of the row is -inf
fn x_masked(j: u32, s: u32, e: u32) -> vec4f { return select(vec4f(neg_inf()), x[j], in_row(j, s, e)); }
fn hmax(v: vec4f) -> f32 { return max(max(v.x, v.y), max(v.z, v.w)); }
fn online(st: ptr<function, vec2f>, v: vec4f) {
  let m = max((*st).x, hmax(v));
  *st = vec2f(m, (*st).y * exp((*st).x - m) + dot(exp(v - m), vec4f(1.0)));
}
fn row_stats(s: u32, e: u32) -> vec2f {
  let v0 = s / 4u;
  let v1 = (e - 1u) / 4u;
  var st = vec2f(NEG_BIG, 0.0);
  online(&st, x_masked(v0, s, e));
  if (v1 > v0) { online(&st, x_masked(v1, s, e)); }
  for (var j = v0 + 1u; j < v1; j++) { online(&st, x[j]); }
  return st;
}`;
