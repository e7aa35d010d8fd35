// infoNCE: CLIP's symmetric contrastive loss over a batch of B paired embeddings.
//   img, txt [B, E] (f32), logScale [1]: s = min(logScale, maxLogScale) (default ln 100)
//   logits [B, B] = exp(s) · l2Normalize(img) @ l2Normalize(txt)ᵀ
//   loss [1] = (CE(logits, arange(B)) + CE(logitsᵀ, arange(B))) / 2   (mean over rows)
// l2Normalize(x, axis) = x / max(‖x‖₂, 1e-12) along axis (torch's F.normalize).
// Passes: (1) l2Normalize img, with exp(s) folded into its rows (rows.ts layout: one
// invocation per row, vec4 loads, two passes over the row: sum of squares, write);
// (2) the same for txt, unscaled; (3) matmul(imgN, txtN, { transB: true }); (4) one
// workgroup of 256: invocation i takes row i and column i of the logits (for i ≡ lid mod
// 256), their log-sum-exp minus the diagonal, then a tree sum.
import { ShapeError, fmtShape } from "../errors.js";
import { kernel, run } from "../kernel.js";
import { f32 } from "../recorder.js";
import { alloc, type Tensor } from "../tensor.js";
import { matmul } from "./matmul.js";
import { ROW_WGSL, rowMainWgsl, alongAxis, rowChunks, rowsBinding, rowsPerWorkgroup, writeRowWgsl } from "./rows.js";
import { expectDType, expectLive, expectRank } from "./util.js";

export interface InfoNCEOptions {
  /** Upper clamp of logScale. Default ln 100 (CLIP's). */
  maxLogScale?: number;
}

const L2_EPS = 1e-12;

const normKernel = (W: number, scaled: boolean) =>
  kernel("l2Normalize", `w${W}${scaled ? "s" : ""}`, () => ({
    bindings: scaled ? ["read", "rw", "read"] : ["read", "rw"],
    code: `
struct P { rows: u32, width: u32, skip: u32, oskip: u32, maxLog: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4f>;
${scaled ? "@group(0) @binding(3) var<storage, read> logScale: array<f32>;" : ""}
${ROW_WGSL}
${rowMainWgsl(W)}
  var ss = vec4f(0.0);
  let a0 = s / 4u;
  let a1 = (e - 1u) / 4u;
  for (var j = a0; j <= a1; j++) {
    let v = select(vec4f(0.0), x[j], in_row(j, s, e));
    ss += v * v;
  }
  let g = ${scaled ? "exp(min(logScale[0], p.maxLog))" : "1.0"} / max(sqrt(ss.x + ss.y + ss.z + ss.w), ${L2_EPS});
${writeRowWgsl((v) => `${v} * g`)}
}`,
  }));

function normalizeRows(op: string, x: Tensor, logScale?: Tensor, maxLog = 0): Tensor {
  const width = x.shape[x.rank - 1]!;
  const rows = x.size / width;
  const W = rowsPerWorkgroup(rows);
  const k = normKernel(W, logScale !== undefined);
  const out = alloc(x.shape, "f32");
  for (const c of rowChunks(op, x.shape, rows, width)) {
    const xb = rowsBinding(op, "x", x, width, c.row0, c.rows);
    const ob = rowsBinding(op, "out", out, width, c.row0, c.rows);
    const bindings = [xb.binding, ob.binding];
    if (logScale) bindings.push(logScale.binding(op, "logScale"));
    run(k, bindings, [c.rows, width, xb.skip, ob.skip, f32(maxLog)], Math.ceil(c.rows / W), 4 * c.rows * width);
  }
  return out;
}

/** x / max(‖x‖₂, 1e-12) along `axis` (default the last). */
export function l2Normalize(x: Tensor, axis = -1): Tensor {
  expectLive("l2Normalize", "x", x);
  expectDType("l2Normalize", "x", x, "f32");
  return alongAxis("l2Normalize", x, axis, (xl) => normalizeRows("l2Normalize", xl));
}

const lossKernel = () =>
  kernel("infoNCE", "diag", () => ({
    bindings: ["read", "rw"],
    code: `
struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> L: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<workgroup> sums: array<f32, 256>;
fn lse_minus_diag(i: u32, stride: u32, step: u32) -> f32 {
  var m = -3.0e38;
  var l = 0.0;
  for (var j = 0u; j < p.n; j++) {
    let v = L[i * stride + j * step];
    let mn = max(m, v);
    l = l * exp(m - mn) + exp(v - mn);
    m = mn;
  }
  return m + log(l) - L[i * p.n + i];
}
@compute @workgroup_size(256) fn main(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var i = lid; i < p.n; i += 256u) {
    acc += lse_minus_diag(i, p.n, 1u) + lse_minus_diag(i, 1u, p.n); // row i, column i
  }
  sums[lid] = acc;
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) {
    if (lid < k) { sums[lid] += sums[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0u) { out[0] = sums[0] / f32(2u * p.n); }
}`,
  }));

/** CLIP's symmetric InfoNCE; see the file header. */
export function infoNCE(img: Tensor, txt: Tensor, logScale: Tensor, opts: InfoNCEOptions = {}): { loss: Tensor; logits: Tensor } {
  const op = "infoNCE";
  expectLive(op, "img", img);
  expectLive(op, "txt", txt);
  expectLive(op, "logScale", logScale);
  expectDType(op, "img", img, "f32");
  expectDType(op, "txt", txt, "f32");
  expectDType(op, "logScale", logScale, "f32");
  expectRank(op, "img", img, 2);
  if (txt.rank !== 2 || txt.shape[0] !== img.shape[0] || txt.shape[1] !== img.shape[1]) {
    throw new ShapeError(`${op}: expected shape ${fmtShape(img.shape)} (that of img) for txt, got ${fmtShape(txt.shape)} (img=${fmtShape(img.shape)}, txt=${fmtShape(txt.shape)})`);
  }
  if (logScale.size !== 1) throw new ShapeError(`${op}: expected shape [1] for logScale, got ${fmtShape(logScale.shape)}`);
  const maxLog = opts.maxLogScale ?? Math.log(100);
  const B = img.shape[0]!;
  const imgN = normalizeRows(op, img, logScale, maxLog);
  const txtN = normalizeRows(op, txt);
  const logits = matmul(imgN, txtN, { transB: true });
  imgN.dispose();
  txtN.dispose();
  const loss = alloc([1], "f32");
  run(lossKernel(), [logits.binding(op, "logits"), loss.binding(op, "loss")], [B], 1, 40 * B * B);
  return { loss, logits };
}

/** float64 reference of l2Normalize over the last axis of rows of `width`. */
export function l2NormalizeRef(x: ArrayLike<number>, width: number, scale = 1): Float64Array {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / width; r++) {
    let ss = 0;
    for (let j = 0; j < width; j++) ss += x[r * width + j]! ** 2;
    const g = scale / Math.max(Math.sqrt(ss), L2_EPS);
    for (let j = 0; j < width; j++) out[r * width + j] = x[r * width + j]! * g;
  }
  return out;
}

/** float64 reference: { loss, logits [B·B] } for img, txt [B, E]. */
export function infoNCERef(
  img: ArrayLike<number>,
  txt: ArrayLike<number>,
  B: number,
  E: number,
  logScale: number,
  maxLogScale = Math.log(100),
): { loss: number; logits: Float64Array } {
  const a = l2NormalizeRef(img, E, Math.exp(Math.min(logScale, maxLogScale)));
  const b = l2NormalizeRef(txt, E);
  const L = new Float64Array(B * B);
  for (let i = 0; i < B; i++) {
    for (let j = 0; j < B; j++) {
      let d = 0;
      for (let c = 0; c < E; c++) d += a[i * E + c]! * b[j * E + c]!;
      L[i * B + j] = d;
    }
  }
  const lse = (at: (j: number) => number): number => {
    let m = -Infinity;
    for (let j = 0; j < B; j++) m = Math.max(m, at(j));
    let s = 0;
    for (let j = 0; j < B; j++) s += Math.exp(at(j) - m);
    return m + Math.log(s);
  };
  let total = 0;
  for (let i = 0; i < B; i++) total += lse((j) => L[i * B + j]!) + lse((j) => L[j * B + i]!) - 2 * L[i * B + i]!;
  return { loss: total / (2 * B), logits: L };
}
