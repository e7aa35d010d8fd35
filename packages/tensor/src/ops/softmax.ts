// softmax / logSoftmax along one axis, numerically stable (the row max is subtracted):
//   softmax(x)_i = exp(x_i - m) / Σ_j exp(x_j - m),  logSoftmax(x)_i = x_i - m - log Σ_j exp(x_j - m)
// x: any shape, f32; out: same shape. The last axis runs natively; another axis is moved
// last with permute, and back afterwards.
// Kernel (rows.ts layout): one invocation per row of `width` elements, W rows per
// workgroup, vec4 loads; two passes over the row inside the invocation: (1) online max and
// sum, (2) write (rows.ts writeRowWgsl). Tensors above one storage binding run in
// chunks of whole rows (e.g. [1600, 50257], 321 MB, in 3 chunks).
import { kernel, run } from "../kernel.js";
import { alloc, type Tensor } from "../tensor.js";
import { ROW_WGSL, rowMainWgsl, alongAxis, rowChunks, rowsBinding, rowsPerWorkgroup, writeRowWgsl } from "./rows.js";
import { expectDType, expectLive } from "./util.js";

type Mode = "softmax" | "logSoftmax";

const build = (mode: Mode, W: number) => ({
  bindings: ["read", "rw"] as const,
  code: `
struct P { rows: u32, width: u32, skip: u32, oskip: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4f>;
${ROW_WGSL}
${rowMainWgsl(W)}
  let st = row_stats(s, e);
  ${mode === "softmax" ? "let m = st.x; let inv = 1.0 / st.y;" : "let c = st.x + log(st.y);"}
${writeRowWgsl((v) => (mode === "softmax" ? `exp(${v} - m) * inv` : `${v} - c`))}
}`,
});

function lastAxis(mode: Mode, x: Tensor): Tensor {
  const width = x.shape[x.rank - 1]!;
  const rows = x.size / width;
  const W = rowsPerWorkgroup(rows);
  const k = kernel(mode, `w${W}`, () => build(mode, W));
  const chunks = rowChunks(mode, x.shape, rows, width);
  const out = alloc(x.shape, "f32");
  for (const c of chunks) {
    const xb = rowsBinding(mode, "x", x, width, c.row0, c.rows);
    const ob = rowsBinding(mode, "out", out, width, c.row0, c.rows);
    run(k, [xb.binding, ob.binding], [c.rows, width, xb.skip, ob.skip], Math.ceil(c.rows / W), 32 * c.rows * width);
  }
  return out;
}

function rowwise(mode: Mode, x: Tensor, axis: number): Tensor {
  expectLive(mode, "x", x);
  expectDType(mode, "x", x, "f32");
  return alongAxis(mode, x, axis, (xl) => lastAxis(mode, xl));
}

/** softmax along `axis` (default the last). */
export const softmax = (x: Tensor, axis = -1): Tensor => rowwise("softmax", x, axis);

/** log(softmax(x)) along `axis` (default the last), computed as x - logsumexp(x). */
export const logSoftmax = (x: Tensor, axis = -1): Tensor => rowwise("logSoftmax", x, axis);

/** float64 reference: softmax (or logSoftmax) of row-major `x` of `shape` along `axis`. */
export function softmaxRef(x: ArrayLike<number>, shape: readonly number[], axis = -1, log = false): Float64Array {
  const ax = axis < 0 ? axis + shape.length : axis;
  const n = shape[ax]!;
  const inner = shape.slice(ax + 1).reduce((a, b) => a * b, 1);
  const outer = x.length / (n * inner);
  const out = new Float64Array(x.length);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const at = (j: number): number => o * n * inner + j * inner + i;
      let m = -Infinity;
      for (let j = 0; j < n; j++) m = Math.max(m, x[at(j)]!);
      let s = 0;
      for (let j = 0; j < n; j++) s += Math.exp(x[at(j)]! - m);
      for (let j = 0; j < n; j++) out[at(j)] = log ? x[at(j)]! - m - Math.log(s) : Math.exp(x[at(j)]! - m) / s;
    }
  }
  return out;
}

/** float64 reference of logSoftmax. */
export const logSoftmaxRef = (x: ArrayLike<number>, shape: readonly number[], axis = -1): Float64Array => softmaxRef(x, shape, axis, true);
