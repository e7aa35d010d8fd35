// crossEntropy: softmax cross-entropy of logits [N, V] (f32) against targets [N] (i32):
//   lse_n = log Σ_v exp(logits[n, v]),  loss_n = lse_n - logits[n, targets[n]]
// reduced as torch's F.cross_entropy: "mean" over rows whose target is not ignoreIndex
// (every row ignored: NaN), "sum" (every row ignored: 0), "none" ([N], ignored rows 0).
// lse [N] is returned for the backward pass. `classes` C <= V: only the first C columns are
// classes (a vocabulary padded to a multiple of 64, as llm.c pads GPT-2's): the softmax
// ignores the rest, whose gradient is 0.
// Pass 1 (rows.ts layout): one invocation per row, W rows per workgroup, one streaming
// vec4 pass over the row (online max and sum), then the target logit; no copy of the
// logits. Targets outside [0, V) other than ignoreIndex report kernel error 200 (an
// IndexError on the next read back). Logits above one storage binding run in chunks of
// whole rows ([1600, 50257], 321 MB: 3 chunks).
// Pass 2 ("mean"/"sum"): one workgroup of 256 sums the row losses and counts the rows kept.
// crossEntropyBackward: dlogits [N, V] = (softmax(logits) - onehot(target)) · s_n, s_n = g/count
// ("mean", count = rows kept), g ("sum") or g_n ("none"); ignored rows 0. Pass 1: one
// workgroup of 256 counts the kept rows and writes s [N] (no read back). Pass 2 (rows.ts
// layout, like the forward): one invocation per row, vec4 reads and writes of
// exp(x - lse_n)·s_n, then the target element minus s_n; chunks of whole rows above one
// binding. (One invocation per element measured ~10x slower on lavapipe, [512, 50257].)
import { ShapeError, fmtShape } from "../errors.js";
import { errorBinding, errorWgsl, kernel, run } from "../kernel.js";
import { f32, registerKernelError } from "../recorder.js";
import { alloc, type Tensor } from "../tensor.js";
import { ROW_WGSL, rowMainWgsl, rowChunks, rowsBinding, rowsPerWorkgroup, writeRowWgsl } from "./rows.js";
import { expectDType, expectLive, expectRank } from "./util.js";

export type Reduction = "mean" | "sum" | "none";

export interface CrossEntropyOptions {
  /** Target value whose rows are skipped (loss 0, not counted by "mean"). Default -100. */
  ignoreIndex?: number;
  /** Columns that are classes (the first C of each row); the rest are padding. Default: all. */
  classes?: number;
  /** Default "mean". */
  reduction?: Reduction;
}

const CE_TARGET_ERROR = registerKernelError(
  200,
  (t, v) => `crossEntropy: expected targets in [0, ${v}) or ignoreIndex, got ${t | 0} (${v} classes)`,
);

const rowsKernel = (W: number) =>
  kernel("crossEntropy", `w${W}`, () => ({
    bindings: ["read", "read", "rw", "rw", "rw"],
    code: `
struct P { rows: u32, width: u32, skip: u32, row0: u32, ignore: i32, classes: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;
${errorWgsl(5)}
${ROW_WGSL}
${rowMainWgsl(W)}
  let st = row_stats(s, s + p.classes);
  let l = st.x + log(st.y);
  let n = p.row0 + r;
  let t = targets[n];
  var v = 0.0;
  if (t != p.ignore) {
    if (t < 0 || u32(t) >= p.classes) { report(${CE_TARGET_ERROR}u, bitcast<u32>(t), p.classes); }
    else { v = l - x_at(s + u32(t)); }
  }
  loss[n] = v;
  lse[n] = l;
}`,
  }));

const reduceKernel = (mean: boolean) =>
  kernel("crossEntropyReduce", mean ? "mean" : "sum", () => ({
    bindings: ["read", "read", "rw"],
    code: `
struct P { n: u32, ignore: i32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> loss: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
var<workgroup> sums: array<vec2f, 256>;
@compute @workgroup_size(256) fn main(@builtin(local_invocation_index) lid: u32) {
  var acc = vec2f(0.0);
  for (var i = lid; i < p.n; i += 256u) {
    if (targets[i] != p.ignore) { acc += vec2f(loss[i], 1.0); }
  }
  sums[lid] = acc;
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) {
    if (lid < k) { sums[lid] += sums[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let t = sums[0];
    var nan = 0x7fc00000u; // a var, not a constant: WGSL rejects NaN constants
    ${mean ? "out[0] = select(bitcast<f32>(nan), t.x / t.y, t.y > 0.0);" : "out[0] = t.x;"}
  }
}`,
  }));

function classesOf(op: string, opts: CrossEntropyOptions, V: number, logits: Tensor): number {
  const c = opts.classes ?? V;
  if (!Number.isInteger(c) || c < 1 || c > V) throw new ShapeError(`${op}: expected classes in [1, ${V}], got ${c} (logits=${fmtShape(logits.shape)})`);
  return c;
}

/** Softmax cross-entropy; see the file header. Returns the loss and each row's log-sum-exp. */
export function crossEntropy(logits: Tensor, targets: Tensor, opts: CrossEntropyOptions = {}): { loss: Tensor; lse: Tensor } {
  const op = "crossEntropy";
  const ignore = opts.ignoreIndex ?? -100;
  const reduction = opts.reduction ?? "mean";
  expectLive(op, "logits", logits);
  expectLive(op, "targets", targets);
  expectDType(op, "logits", logits, "f32");
  expectDType(op, "targets", targets, "i32");
  expectRank(op, "logits", logits, 2);
  const [N, V] = logits.shape as [number, number];
  if (targets.rank !== 1 || targets.shape[0] !== N) {
    throw new ShapeError(`${op}: expected shape [${N}] for targets, got ${fmtShape(targets.shape)} (logits=${fmtShape(logits.shape)})`);
  }
  if (!Number.isInteger(ignore) || ignore < -(2 ** 31) || ignore >= 2 ** 31) {
    throw new ShapeError(`${op}: expected an i32 for ignoreIndex, got ${ignore}`);
  }
  if (reduction !== "mean" && reduction !== "sum" && reduction !== "none") {
    throw new ShapeError(`${op}: expected "mean", "sum" or "none" for reduction, got ${String(reduction)}`);
  }
  const classes = classesOf(op, opts, V, logits);
  const tb = targets.binding(op, "targets");
  const W = rowsPerWorkgroup(N);
  const k = rowsKernel(W);
  const chunks = rowChunks(op, logits.shape, N, V);
  const rowLoss = alloc([N], "f32");
  const lse = alloc([N], "f32");
  for (const c of chunks) {
    const xb = rowsBinding(op, "logits", logits, V, c.row0, c.rows);
    run(
      k,
      [xb.binding, tb, rowLoss.binding(op, "loss"), lse.binding(op, "lse"), errorBinding()],
      [c.rows, V, xb.skip, c.row0, ignore, classes],
      Math.ceil(c.rows / W),
      8 * c.rows * V,
    );
  }
  if (reduction === "none") return { loss: rowLoss, lse };
  const loss = alloc([1], "f32");
  run(reduceKernel(reduction === "mean"), [rowLoss.binding(op, "loss"), tb, loss.binding(op, "out")], [N, ignore], 1, 4 * N);
  rowLoss.dispose();
  return { loss, lse };
}

/** float64 reference: { loss (length 1, or N for "none"), lse (N) }. */
export function crossEntropyRef(
  logits: ArrayLike<number>,
  targets: ArrayLike<number>,
  N: number,
  V: number,
  opts: CrossEntropyOptions = {},
): { loss: Float64Array; lse: Float64Array } {
  const ignore = opts.ignoreIndex ?? -100;
  const reduction = opts.reduction ?? "mean";
  const rows = new Float64Array(N);
  const lse = new Float64Array(N);
  let sum = 0;
  let count = 0;
  const C = opts.classes ?? V;
  for (let n = 0; n < N; n++) {
    let m = -Infinity;
    for (let v = 0; v < C; v++) m = Math.max(m, logits[n * V + v]!);
    let s = 0;
    for (let v = 0; v < C; v++) s += Math.exp(logits[n * V + v]! - m);
    lse[n] = m + Math.log(s);
    const t = targets[n]!;
    if (t === ignore) continue;
    if (!(t >= 0 && t < C)) throw new RangeError(`crossEntropyRef: target ${t} out of [0, ${C})`);
    rows[n] = lse[n]! - logits[n * V + t]!;
    sum += rows[n]!;
    count++;
  }
  if (reduction === "none") return { loss: rows, lse };
  return { loss: Float64Array.of(reduction === "sum" ? sum : sum / count), lse };
}

const scaleKernel = (mode: string) =>
  kernel("crossEntropyBackwardScale", mode, () => ({
    bindings: ["read", "read", "rw"],
    code: `
struct P { n: u32, ignore: i32, g: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> targets: array<i32>;
@group(0) @binding(2) var<storage, read> gt: array<f32>;
@group(0) @binding(3) var<storage, read_write> s: array<f32>;
var<workgroup> counts: array<u32, 256>;
@compute @workgroup_size(256) fn main(@builtin(local_invocation_index) lid: u32) {
  var c = 0u;
  for (var i = lid; i < p.n; i += 256u) { c += select(0u, 1u, targets[i] != p.ignore); }
  counts[lid] = c;
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) {
    if (lid < k) { counts[lid] += counts[lid + k]; }
    workgroupBarrier();
  }
  let count = f32(max(counts[0], 1u));
  for (var i = lid; i < p.n; i += 256u) {
    let g = ${mode.startsWith("t") ? (mode === "tnone" ? "gt[i]" : "gt[0]") : "p.g"};
    s[i] = select(0.0, ${mode.endsWith("mean") ? "g / count" : "g"}, targets[i] != p.ignore);
  }
}`,
  }));

const gradKernel = (W: number) =>
  kernel("crossEntropyBackward", `w${W}`, () => ({
    bindings: ["read", "read", "read", "read", "rw"],
    code: `
struct P { rows: u32, width: u32, skip: u32, oskip: u32, row0: u32, ignore: i32, classes: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read> lse: array<f32>;
@group(0) @binding(4) var<storage, read> scale: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4f>;
${ROW_WGSL}
${rowMainWgsl(W)}
  let n = p.row0 + r;
  let t = targets[n];
  let keep = t != p.ignore;
  let l = lse[n];
  let sc = scale[n];
${writeRowWgsl((v) => `select(${v.startsWith("x_at") ? "0.0" : "vec4f(0.0)"}, exp(${v} - l) * sc, keep)`)}
  for (var i = s + p.classes; i < e; i++) { let o = i + d; out[o / 4u][o % 4u] = 0.0; } // padding columns
  if (keep && t >= 0 && u32(t) < p.classes) { let o = s + u32(t) + d; out[o / 4u][o % 4u] -= sc; }
}`,
  }));

/**
 * d loss / d logits of crossEntropy (see the file header). `gradLoss`: the loss's incoming
 * gradient, a number or a tensor of one element ("mean"/"sum") or [N] ("none"). `lse` is the
 * forward's. Ignored rows get 0; with every row ignored, "mean" gives zeros (torch: NaN).
 * Targets out of range (reported by the forward) get no one-hot term.
 */
export function crossEntropyBackward(logits: Tensor, targets: Tensor, lse: Tensor, gradLoss: number | Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const op = "crossEntropyBackward";
  const ignore = opts.ignoreIndex ?? -100;
  const reduction = opts.reduction ?? "mean";
  for (const [name, t] of [["logits", logits], ["targets", targets], ["lse", lse]] as const) expectLive(op, name, t);
  expectDType(op, "logits", logits, "f32");
  expectDType(op, "targets", targets, "i32");
  expectDType(op, "lse", lse, "f32");
  expectRank(op, "logits", logits, 2);
  const [N, V] = logits.shape as [number, number];
  const ctx = `(logits=${fmtShape(logits.shape)})`;
  if (targets.rank !== 1 || targets.shape[0] !== N) throw new ShapeError(`${op}: expected shape [${N}] for targets, got ${fmtShape(targets.shape)} ${ctx}`);
  if (lse.rank !== 1 || lse.shape[0] !== N) throw new ShapeError(`${op}: expected shape [${N}] for lse, got ${fmtShape(lse.shape)} ${ctx}`);
  if (reduction !== "mean" && reduction !== "sum" && reduction !== "none") {
    throw new ShapeError(`${op}: expected "mean", "sum" or "none" for reduction, got ${String(reduction)}`);
  }
  const classes = classesOf(op, opts, V, logits);
  const tb = targets.binding(op, "targets");
  let mode: string = reduction;
  let gb = tb; // any binding when the gradient is a number (unused by the kernel)
  let g = 0;
  if (typeof gradLoss === "number") g = gradLoss;
  else {
    expectLive(op, "gradLoss", gradLoss);
    expectDType(op, "gradLoss", gradLoss, "f32");
    const want = reduction === "none" ? N : 1;
    if (gradLoss.size !== want) throw new ShapeError(`${op}: expected ${want} element(s) for gradLoss, got ${fmtShape(gradLoss.shape)} ${ctx}`);
    gb = gradLoss.binding(op, "gradLoss");
    mode = `t${reduction}`;
  }
  const s = alloc([N], "f32");
  run(scaleKernel(mode), [tb, gb, s.binding(op, "scale")], [N, ignore, f32(g)], 1, 2 * N);
  const out = alloc([N, V], "f32");
  const W = rowsPerWorkgroup(N);
  const k = gradKernel(W);
  const lb = lse.binding(op, "lse");
  const sb = s.binding(op, "scale");
  for (const c of rowChunks(op, logits.shape, N, V)) {
    const xb = rowsBinding(op, "logits", logits, V, c.row0, c.rows);
    const ob = rowsBinding(op, "out", out, V, c.row0, c.rows);
    run(k, [xb.binding, tb, lb, sb, ob.binding], [c.rows, V, xb.skip, ob.skip, c.row0, ignore, classes], Math.ceil(c.rows / W), 16 * c.rows * V);
  }
  s.dispose();
  return out;
}

/** float64 reference of crossEntropyBackward (lse recomputed); gradLoss a number or per-row values ("none"). */
export function crossEntropyBackwardRef(
  logits: ArrayLike<number>,
  targets: ArrayLike<number>,
  N: number,
  V: number,
  gradLoss: number | ArrayLike<number>,
  opts: CrossEntropyOptions = {},
): Float64Array {
  const ignore = opts.ignoreIndex ?? -100;
  const reduction = opts.reduction ?? "mean";
  const { lse } = crossEntropyRef(logits, targets, N, V, opts);
  let count = 0;
  for (let n = 0; n < N; n++) if (targets[n] !== ignore) count++;
  const out = new Float64Array(N * V);
  for (let n = 0; n < N; n++) {
    const t = targets[n]!;
    if (t === ignore) continue;
    const g = typeof gradLoss === "number" ? gradLoss : reduction === "none" ? gradLoss[n]! : gradLoss[0]!;
    const sc = reduction === "mean" ? g / count : g;
    for (let v = 0; v < (opts.classes ?? V); v++) out[n * V + v] = (Math.exp(logits[n * V + v]! - lse[n]!) - (v === t ? 1 : 0)) * sc;
  }
  return out;
}
