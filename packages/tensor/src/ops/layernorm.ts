// layerNorm: y = (x - mean) · rstd · weight + bias over the last axis, as torch.nn.LayerNorm:
//   x [..., C], weight [C], bias [C] -> y [..., C]; mean and rstd = 1/sqrt(var + eps) per row,
//   var biased (divided by C), computed in two passes over the row (mean, then Σ(x - mean)²).
// layerNormWithStats also returns mean [rows] and rstd [rows] for the backward pass.
// Layouts (one dispatch; rows of 4-aligned width C are read as vec4s):
//   software adapters: one invocation per row, 64 rows a workgroup (lavapipe runs invocations
//     as SIMD lanes; at [1600, 768] 5-17 ms against 38-47 ms for a workgroup per row, best of
//     runs on a loaded 2-core machine; a one-pass shifted-moments variant was no faster)
//   GPUs: one workgroup (64) per row, lanes stride the row, two tree reductions in workgroup memory
// x above one binding (128 MiB) is processed in chunks of whole rows.
import { device } from "../device.js";
import { LimitError, ReleasedError, ShapeError, fmtShape } from "../errors.js";
import { WG_ARGS, WG_INDEX, kernel, run } from "../kernel.js";
import type { BufferBinding } from "../recorder.js";
import { f32 } from "../recorder.js";
import { type Shape, sizeOf } from "../shape.js";
import { alloc, type Tensor } from "../tensor.js";
import { expectDType, expectRank, maxChunkElems } from "./util.js";

type Layout = "rowInv" | "rowWg";

/** Tuning knob for tests and benchmarks: force the layout ("auto": by adapter type). */
export const layerNormConfig: { rows: "auto" | "invocation" | "workgroup" } = { rows: "auto" };

const WG = 64;

function lnKernel(layout: Layout, w: 1 | 4) {
  return kernel("layerNorm", `${layout}:${w}`, () => {
    const V = w === 4 ? "vec4f" : "f32";
    // the row as n = C / w items of type V; hsum folds an item to a scalar
    const hsum = w === 4 ? (v: string) => `dot(${v}, vec4f(1.0))` : (v: string) => `(${v})`;
    const head = `
struct P { rows: u32, n: u32, r0: u32, kx: u32, ko: u32, eps: f32, C: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<${V}>;
@group(0) @binding(2) var<storage, read> weight: array<${V}>;
@group(0) @binding(3) var<storage, read> bias: array<${V}>;
@group(0) @binding(4) var<storage, read_write> y: array<${V}>;
@group(0) @binding(5) var<storage, read_write> means: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstds: array<f32>;`;
    const body =
      layout === "rowInv"
        ? `
@compute @workgroup_size(${WG}) fn main(${WG_ARGS}) {
  let row = ${WG_INDEX} * ${WG}u + lid;
  if (row >= p.rows) { return; }
  let bx = p.kx + row * p.n;
  let bo = p.ko + row * p.n;
  // two accumulators for a little instruction-level parallelism
  var s0 = ${V}(0.0); var s1 = ${V}(0.0);
  var i = 0u;
  for (; i + 1u < p.n; i += 2u) { s0 += x[bx + i]; s1 += x[bx + i + 1u]; }
  if (i < p.n) { s0 += x[bx + i]; }
  let mean = ${hsum("s0 + s1")} / p.C;
  var q0 = ${V}(0.0); var q1 = ${V}(0.0);
  for (i = 0u; i + 1u < p.n; i += 2u) { let d0 = x[bx + i] - mean; let d1 = x[bx + i + 1u] - mean; q0 += d0 * d0; q1 += d1 * d1; }
  if (i < p.n) { let d0 = x[bx + i] - mean; q0 += d0 * d0; }
  let rstd = 1.0 / sqrt(${hsum("q0 + q1")} / p.C + p.eps);
  for (i = 0u; i < p.n; i++) { y[bo + i] = (x[bx + i] - mean) * rstd * weight[i] + bias[i]; }
  means[p.r0 + row] = mean;
  rstds[p.r0 + row] = rstd;
}`
        : `
var<workgroup> sh: array<f32, ${WG}>;
fn total(v: f32, lid: u32) -> f32 {
  sh[lid] = v;
  workgroupBarrier();
  for (var h = ${WG / 2}u; h > 0u; h >>= 1u) {
    if (lid < h) { sh[lid] += sh[lid + h]; }
    workgroupBarrier();
  }
  let t = sh[0];
  workgroupBarrier();
  return t;
}
@compute @workgroup_size(${WG}) fn main(${WG_ARGS}) {
  // grid() may add workgroups past the last row: they redo it (same values, uniform barriers)
  let row = min(${WG_INDEX}, p.rows - 1u);
  let bx = p.kx + row * p.n;
  let bo = p.ko + row * p.n;
  var s = ${V}(0.0);
  for (var i = lid; i < p.n; i += ${WG}u) { s += x[bx + i]; }
  let mean = total(${hsum("s")}, lid) / p.C;
  var q = ${V}(0.0);
  for (var i = lid; i < p.n; i += ${WG}u) { let d = x[bx + i] - mean; q += d * d; }
  let rstd = 1.0 / sqrt(total(${hsum("q")}, lid) / p.C + p.eps);
  for (var i = lid; i < p.n; i += ${WG}u) { y[bo + i] = (x[bx + i] - mean) * rstd * weight[i] + bias[i]; }
  if (lid == 0u) { means[p.r0 + row] = mean; rstds[p.r0 + row] = rstd; }
}`;
    return { bindings: ["read", "read", "read", "rw", "rw", "rw"], code: head + body };
  });
}

function layout(): Layout {
  const mode = layerNormConfig.rows;
  if (mode === "invocation") return "rowInv";
  if (mode === "workgroup") return "rowWg";
  return device().adapter.software ? "rowInv" : "rowWg";
}

const live = (op: string, name: string, t: Tensor): void => {
  if (t.disposed) throw new ReleasedError(`${op}: expected a live tensor for ${name}, got one released by dispose() (shape ${fmtShape(t.shape)})`);
};

function launch(op: string, x: Tensor, weight: Tensor, bias: Tensor, eps: number): { out: Tensor; mean: Tensor; rstd: Tensor } {
  for (const [t, name] of [[x, "x"], [weight, "weight"], [bias, "bias"]] as const) {
    live(op, name, t);
    expectDType(op, name, t, "f32");
  }
  if (x.rank < 1) throw new ShapeError(`${op}: expected rank >= 1 for x, got 0 (shape [])`);
  expectRank(op, "weight", weight, 1);
  expectRank(op, "bias", bias, 1);
  const C = x.shape[x.rank - 1]!;
  if (weight.shape[0] !== C || bias.shape[0] !== C) {
    throw new ShapeError(
      `${op}: expected weight and bias of shape [${C}] (the last dim of x), got weight=${fmtShape(weight.shape)}, bias=${fmtShape(bias.shape)} (x=${fmtShape(x.shape)})`,
    );
  }
  if (!(eps >= 0)) throw new ShapeError(`${op}: expected eps >= 0, got ${eps}`);
  const rows = x.size / C;
  const maxChunk = maxChunkElems();
  if (C > maxChunk) throw new LimitError(`${op}: expected a row of at most ${maxChunk * 4} bytes, got ${C * 4} (x=${fmtShape(x.shape)})`);
  const fits = x.size <= maxChunk;
  const perChunk = fits ? rows : Math.floor(maxChunk / C);
  const out = alloc(x.shape, "f32");
  const mean = alloc([rows], "f32");
  const rstd = alloc([rows], "f32");
  const lay = layout();
  const wb = weight.binding(op, "weight");
  const bb = bias.binding(op, "bias");
  const mb = mean.binding(op, "mean");
  const rb = rstd.binding(op, "rstd");
  for (let r0 = 0; r0 < rows; r0 += perChunk) {
    const n = Math.min(perChunk, rows - r0);
    const xs = fits ? { binding: x.binding(op, "x"), skip: 0 } : x.rangeBinding(op, "x", r0 * C, n * C);
    const os = fits ? { binding: out.binding(op, "out"), skip: 0 } : out.rangeBinding(op, "out", r0 * C, n * C);
    const w: 1 | 4 = C % 4 === 0 && xs.skip % 4 === 0 && os.skip % 4 === 0 ? 4 : 1;
    const bindings: BufferBinding[] = [xs.binding, wb, bb, os.binding, mb, rb];
    run(
      lnKernel(lay, w),
      bindings,
      [n, C / w, r0, xs.skip / w, os.skip / w, f32(eps), f32(C)],
      lay === "rowInv" ? Math.ceil(n / WG) : n,
      4 * n * C,
    );
  }
  return { out, mean, rstd };
}

/** torch.nn.functional.layer_norm over the last axis. */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps = 1e-5): Tensor {
  const { out, mean, rstd } = launch("layerNorm", x, weight, bias, eps);
  mean.dispose();
  rstd.dispose();
  return out;
}

/**
 * layerNorm that also returns the per-row mean and rstd = 1/sqrt(var + eps) (shape [rows],
 * rows = x.size / C) for the backward pass.
 */
export function layerNormWithStats(x: Tensor, weight: Tensor, bias: Tensor, eps = 1e-5): { out: Tensor; mean: Tensor; rstd: Tensor } {
  return launch("layerNormWithStats", x, weight, bias, eps);
}

// ---- float64 references ---------------------------------------------------------------

/** float64 per-row mean and rstd of x [..., C]. */
export function layerNormStatsRef(x: ArrayLike<number>, shape: Shape, eps = 1e-5): { mean: Float64Array; rstd: Float64Array } {
  const C = shape[shape.length - 1]!;
  const rows = sizeOf(shape) / C;
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += x[r * C + c]!;
    const m = s / C;
    let q = 0;
    for (let c = 0; c < C; c++) q += (x[r * C + c]! - m) ** 2;
    mean[r] = m;
    rstd[r] = 1 / Math.sqrt(q / C + eps);
  }
  return { mean, rstd };
}

/** float64 reference of layerNorm. */
export function layerNormRef(x: ArrayLike<number>, shape: Shape, weight: ArrayLike<number>, bias: ArrayLike<number>, eps = 1e-5): Float64Array {
  const C = shape[shape.length - 1]!;
  const { mean, rstd } = layerNormStatsRef(x, shape, eps);
  const out = new Float64Array(sizeOf(shape));
  for (let i = 0; i < out.length; i++) {
    const r = Math.floor(i / C);
    out[i] = (x[i]! - mean[r]!) * rstd[r]! * weight[i % C]! + bias[i % C]!;
  }
  return out;
}
