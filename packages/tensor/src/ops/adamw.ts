// Optimizer updates, in place, one fused kernel each; param, grad and state share one shape.
//   adamw (torch.optim.AdamW, decoupled weight decay), per element with g = grad · gradScale:
//     p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//     p ← p − (lr / bc1) · m / (sqrt(v)/sqrt(bc2) + eps),  bc1 = 1 − β1^t, bc2 = 1 − β2^t
//     (bias corrections, step size and 1/sqrt(bc2) computed on the host in float64)
//   sgd (torch.optim.SGD): d = g + wd·p; buf ← momentum·buf + (1 − dampening)·d (buf ← d at
//     step 1); d ← nesterov ? d + momentum·buf : buf; p ← p − lr·d
// Workgroup: 256 invocations, 4 elements each (one vec4 when the size allows), grid() over
// ceil(n / 1024). Tensors above one binding (wte is 154 MB) are updated in chunks.
import { DTypeError, ReleasedError, ShapeError, fmtShape } from "../errors.js";
import { WG_ARGS, WG_INDEX, kernel, run } from "../kernel.js";
import { type Uniform, f32 } from "../recorder.js";
import { sameShape } from "../shape.js";
import type { Tensor } from "../tensor.js";
import { forChunks, maxChunkElems } from "./util.js";

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** 1-based step count t (after this update). */
  step: number;
  /** Multiplies the gradient (e.g. global-norm clipping); default 1. */
  gradScale?: number;
}

export interface SGDOptions {
  lr: number;
  momentum?: number;
  weightDecay?: number;
  dampening?: number;
  nesterov?: boolean;
  /** 1-based step count; at step 1 the momentum buffer is set to the update, as torch does. */
  step?: number;
  /** Multiplies the gradient; default 1. */
  gradScale?: number;
}

// ---- kernels --------------------------------------------------------------------------

/**
 * An in-place map over `names` (storage bindings, read-write unless listed in `readOnly`):
 * `body` updates the scalars named like the bindings; 4 elements an invocation.
 */
function updateKernel(op: string, names: string[], readOnly: string[], uniforms: string, body: string, w: 1 | 4) {
  return kernel(op, `${names.length}:${w}`, () => {
    const V = w === 4 ? "vec4f" : "f32";
    const decl = names
      .map((n, i) => `@group(0) @binding(${i + 1}) var<storage, ${readOnly.includes(n) ? "read" : "read_write"}> ${n}_: array<${V}>;`)
      .join("\n");
    const load = names.map((n, i) => `var ${n} = ${n}_[p.k[${i >> 2}][${i & 3}] + e];`).join(" ");
    const store = names
      .filter((n) => !readOnly.includes(n))
      .map((n) => `${n}_[p.k[${names.indexOf(n) >> 2}][${names.indexOf(n) & 3}] + e] = ${n};`)
      .join(" ");
    const step = `{ ${load}\n    ${body}\n    ${store} }`;
    return {
      bindings: names.map((n) => (readOnly.includes(n) ? "read" : "rw")),
      code: `
struct P { n: u32, pad0: u32, pad1: u32, pad2: u32, k: array<vec4u, 1>, ${uniforms} }
@group(0) @binding(0) var<uniform> p: P;
${decl}
@compute @workgroup_size(256) fn main(${WG_ARGS}) {
${
  w === 4
    ? `  let e = ${WG_INDEX} * 256u + lid;
  if (e < p.n) ${step}`
    : `  let e0 = (${WG_INDEX} * 256u + lid) * 4u;
  for (var j = 0u; j < 4u; j++) {
    let e = e0 + j;
    if (e >= p.n) { return; }
    ${step}
  }`
}
}`,
    };
  });
}

const ADAMW_UNIFORMS = "decay: f32, b1: f32, omb1: f32, b2: f32, omb2: f32, stepSize: f32, invSqrtBc2: f32, eps: f32, gscale: f32";
const ADAMW_BODY = `let g = grad * p.gscale;
    m = p.b1 * m + p.omb1 * g;
    v = p.b2 * v + p.omb2 * g * g;
    param = param * p.decay - p.stepSize * (m / (sqrt(v) * p.invSqrtBc2 + p.eps));`;

const SGD_UNIFORMS = "lr: f32, momentum: f32, omd: f32, wd: f32, nesterov: u32, first: u32, gscale: f32";
const SGD_BODY = (buf: boolean): string => `var d = grad * p.gscale + p.wd * param;
    ${
      buf
        ? `buf = select(p.momentum * buf + p.omd * d, d, p.first != 0u);
    d = select(buf, d + p.momentum * buf, p.nesterov != 0u);`
        : ""
    }
    param = param - p.lr * d;`;

// ---- dispatch -------------------------------------------------------------------------

function check(op: string, ts: [string, Tensor][]): void {
  const [, first] = ts[0]!;
  for (const [name, t] of ts) {
    if (t.disposed) throw new ReleasedError(`${op}: expected a live tensor for ${name}, got one released by dispose() (shape ${fmtShape(t.shape)})`);
    if (t.dtype !== "f32") throw new DTypeError(`${op}: expected dtype f32 for ${name}, got ${t.dtype} (shape ${fmtShape(t.shape)})`);
    if (!sameShape(t.shape, first.shape)) {
      throw new ShapeError(`${op}: expected the shape of param for ${name}, got ${fmtShape(t.shape)} (${ts.map(([n, x]) => `${n}=${fmtShape(x.shape)}`).join(", ")})`);
    }
  }
}

function finite(op: string, values: Record<string, number>): void {
  for (const [name, v] of Object.entries(values)) {
    if (!Number.isFinite(v)) throw new ShapeError(`${op}: expected a finite number for ${name}, got ${v}`);
  }
}

function launch(op: string, ts: [string, Tensor][], readOnly: string[], uniforms: string, body: string, values: Uniform[]): void {
  const names = ts.map(([n]) => n);
  const n = ts[0]![1].size;
  forChunks(n, maxChunkElems(), (start, count) => {
    const parts = ts.map(([name, t]) => t.rangeBinding(op, name, start, count));
    const w: 1 | 4 = count % 4 === 0 && parts.every((x) => x.skip % 4 === 0) ? 4 : 1;
    const k = updateKernel(op, names, readOnly, uniforms, body, w);
    const skips = [0, 1, 2, 3].map((i) => (parts[i] ? parts[i].skip / w : 0));
    run(k, parts.map((x) => x.binding), [count / w, 0, 0, 0, ...skips, ...values], Math.ceil(count / 1024), count * (names.length + names.length - readOnly.length));
  });
}

/** One torch.optim.AdamW step on param, m and v in place (recorded, not waited on). */
export function adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, opts: AdamWOptions): void {
  const { lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.01, step, gradScale = 1 } = opts;
  check("adamw", [["param", param], ["grad", grad], ["m", m], ["v", v]]);
  finite("adamw", { lr, beta1, beta2, eps, weightDecay, gradScale });
  if (!Number.isInteger(step) || step < 1) throw new ShapeError(`adamw: expected a positive integer for step, got ${step}`);
  const bc1 = 1 - beta1 ** step;
  const bc2 = 1 - beta2 ** step;
  const values = [1 - lr * weightDecay, beta1, 1 - beta1, beta2, 1 - beta2, lr / bc1, 1 / Math.sqrt(bc2), eps, gradScale].map(f32);
  launch("adamw", [["param", param], ["grad", grad], ["m", m], ["v", v]], ["grad"], ADAMW_UNIFORMS, ADAMW_BODY, values);
}

/** One torch.optim.SGD step on param (and momentumBuf when momentum ≠ 0) in place. */
export function sgd(param: Tensor, grad: Tensor, momentumBuf: Tensor | null, opts: SGDOptions): void {
  const { lr, momentum = 0, weightDecay = 0, dampening = 0, nesterov = false, step, gradScale = 1 } = opts;
  finite("sgd", { lr, momentum, weightDecay, dampening, gradScale });
  if (nesterov && (momentum <= 0 || dampening !== 0)) {
    throw new ShapeError(`sgd: expected momentum > 0 and dampening 0 for nesterov, got momentum ${momentum}, dampening ${dampening}`);
  }
  const useBuf = momentum !== 0;
  if (useBuf && !momentumBuf) throw new ShapeError(`sgd: expected a momentum buffer for momentum ${momentum}, got null`);
  const ts: [string, Tensor][] = [["param", param], ["grad", grad]];
  if (useBuf) ts.push(["buf", momentumBuf!]);
  check("sgd", ts);
  const values = [f32(lr), f32(momentum), f32(1 - dampening), f32(weightDecay), nesterov ? 1 : 0, step === 1 ? 1 : 0, f32(gradScale)];
  launch("sgd", ts, ["grad"], SGD_UNIFORMS, SGD_BODY(useBuf), values);
}

// ---- float64 references ---------------------------------------------------------------

/** float64 reference of one adamw step (returns new arrays). */
export function adamwRef(
  param: ArrayLike<number>,
  grad: ArrayLike<number>,
  m: ArrayLike<number>,
  v: ArrayLike<number>,
  opts: AdamWOptions,
): { param: Float64Array; m: Float64Array; v: Float64Array } {
  const { lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.01, step, gradScale = 1 } = opts;
  const bc1 = 1 - beta1 ** step;
  const bc2 = 1 - beta2 ** step;
  const n = param.length;
  const out = { param: new Float64Array(n), m: new Float64Array(n), v: new Float64Array(n) };
  for (let i = 0; i < n; i++) {
    const g = grad[i]! * gradScale;
    const mi = beta1 * m[i]! + (1 - beta1) * g;
    const vi = beta2 * v[i]! + (1 - beta2) * g * g;
    const denom = Math.sqrt(vi) / Math.sqrt(bc2) + eps;
    out.param[i] = param[i]! * (1 - lr * weightDecay) - (lr / bc1) * (mi / denom);
    out.m[i] = mi;
    out.v[i] = vi;
  }
  return out;
}

/** float64 reference of one sgd step (returns new arrays; buf is all zeros when unused). */
export function sgdRef(param: ArrayLike<number>, grad: ArrayLike<number>, buf: ArrayLike<number> | null, opts: SGDOptions): { param: Float64Array; buf: Float64Array } {
  const { lr, momentum = 0, weightDecay = 0, dampening = 0, nesterov = false, step, gradScale = 1 } = opts;
  const n = param.length;
  const out = { param: new Float64Array(n), buf: new Float64Array(n) };
  for (let i = 0; i < n; i++) {
    let d = grad[i]! * gradScale + weightDecay * param[i]!;
    if (momentum !== 0) {
      const b = step === 1 ? d : momentum * buf![i]! + (1 - dampening) * d;
      out.buf[i] = b;
      d = nesterov ? d + momentum * b : b;
    }
    out.param[i] = param[i]! - lr * d;
  }
  return out;
}
