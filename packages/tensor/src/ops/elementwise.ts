// elementwise: unary f32 maps and binary ops with NumPy broadcasting.
//   unary   y = f(x), x f32 of any shape; one table (UNARY) of {WGSL expression, float64 reference}
//           drives the kernel generator and the tests. gelu/quickGelu/relu come from activation.ts.
//   binary  out = a ∘ b, out shape = broadcast(a, b) (ranks up to 6); f32, and i32 for
//           add/sub/mul/maximum/minimum (a, b the same dtype). A number operand is a uniform.
// Before dispatch the dims are collapsed (size-1 dims dropped, neighbours with the same
// broadcast pattern merged): same-shape and tensor∘number ops become rank 1, x + bias rank 2.
// Workgroup: 256 invocations, 4 elements each (one vec4 when the innermost dim allows, else
// 4 consecutive elements), grid() over ceil(n / 1024).
// One pass. Tensors above one binding (128 MiB) run in chunks of leading collapsed rows; an
// operand broadcast along those rows must fit one binding (LimitError otherwise).
import type { DType } from "../dtype.js";
import { DTypeError, LimitError, ReleasedError, ShapeError, fmtShape } from "../errors.js";
import { WG_ARGS, WG_INDEX, kernel, run } from "../kernel.js";
import { type BufferBinding, type Uniform, f32 } from "../recorder.js";
import { type Shape, broadcastShapes, sizeOf, stridesOf } from "../shape.js";
import { alloc, Tensor } from "../tensor.js";
import { ACTIVATION_WGSL, activationRef } from "./activation.js";
import { expectDType, maxChunkElems } from "./util.js";

const MAX_RANK = 6;

// ---- tables ---------------------------------------------------------------------------

interface UnaryDef {
  /** WGSL expression in the f32 `x` (ACTIVATION_WGSL's functions are in scope). */
  wgsl: string;
  ref: (x: number) => number;
}

export const UNARY = {
  neg: { wgsl: "-x", ref: (x) => -x },
  exp: { wgsl: "exp(x)", ref: Math.exp },
  log: { wgsl: "log(x)", ref: Math.log },
  sqrt: { wgsl: "sqrt(x)", ref: Math.sqrt },
  // 1/sqrt rather than inverseSqrt: exact at 0 (inf) on every backend
  rsqrt: { wgsl: "1.0 / sqrt(x)", ref: (x) => 1 / Math.sqrt(x) },
  abs: { wgsl: "abs(x)", ref: Math.abs },
  // tanh(±10) is ±1 in f32; clamping keeps builtins that go through exp from returning NaN
  tanh: { wgsl: "tanh(clamp(x, -10.0, 10.0))", ref: Math.tanh },
  relu: { wgsl: "act_relu(x)", ref: activationRef.relu },
  sigmoid: { wgsl: "1.0 / (1.0 + exp(-x))", ref: (x) => 1 / (1 + Math.exp(-x)) },
  gelu: { wgsl: "act_gelu(x)", ref: activationRef.gelu },
  quickGelu: { wgsl: "act_quickGelu(x)", ref: activationRef.quickGelu },
  square: { wgsl: "x * x", ref: (x) => x * x },
  reciprocal: { wgsl: "1.0 / x", ref: (x) => 1 / x },
} satisfies Record<string, UnaryDef>;
export type UnaryOp = keyof typeof UNARY;
export const UNARY_OPS = Object.keys(UNARY) as UnaryOp[];

interface BinaryDef {
  /** WGSL expression in `a` and `b` (POW_WGSL's pow_ is in scope). */
  wgsl: string;
  ref: (a: number, b: number) => number;
  /** Reference with i32 wrap-around; present when the op accepts i32. */
  intRef?: (a: number, b: number) => number;
}

export const BINARY = {
  add: { wgsl: "a + b", ref: (a, b) => a + b, intRef: (a, b) => (a + b) | 0 },
  sub: { wgsl: "a - b", ref: (a, b) => a - b, intRef: (a, b) => (a - b) | 0 },
  mul: { wgsl: "a * b", ref: (a, b) => a * b, intRef: Math.imul },
  div: { wgsl: "a / b", ref: (a, b) => a / b },
  pow: { wgsl: "pow_(a, b)", ref: Math.pow },
  maximum: { wgsl: "max(a, b)", ref: Math.max, intRef: Math.max },
  minimum: { wgsl: "min(a, b)", ref: Math.min, intRef: Math.min },
} satisfies Record<string, BinaryDef>;
export type BinaryOp = keyof typeof BINARY;
export const BINARY_OPS = Object.keys(BINARY) as BinaryOp[];

// WGSL's pow is exp2(b·log2(a)): undefined for a < 0 and NaN for pow(0, 0). pow_ follows
// Math.pow / torch.pow: integer exponents of negative bases, pow(x, 0) = 1.
const POW_WGSL = `
fn pow_(a: f32, b: f32) -> f32 {
  if (b == 0.0) { return 1.0; }
  let r = select(pow(abs(a), b), select(1.0 / abs(a), 0.0, b > 0.0), a == 0.0); // 1/0 -> inf
  if (a >= 0.0) { return r; }
  if (floor(b) != b) { return bitcast<f32>(0x7fc00000u | (bitcast<u32>(b) & 0u)); } // NaN (not a const-expression)
  if (floor(b * 0.5) != b * 0.5) { return -r; }
  return r;
}`;

// ---- float64 references ---------------------------------------------------------------

/** float64 reference of a unary op. */
export function unaryRef(op: UnaryOp, x: ArrayLike<number>): Float64Array {
  const f = UNARY[op].ref;
  return Float64Array.from(x, (v) => f(v));
}

/** float64 reference of a binary op with broadcasting (i32 ops wrap around like WGSL). */
export function binaryRef(
  op: BinaryOp,
  a: ArrayLike<number> | number,
  aShape: Shape,
  b: ArrayLike<number> | number,
  bShape: Shape,
  dtype: DType = "f32",
): Float64Array {
  const def: BinaryDef = BINARY[op];
  const f = dtype === "f32" ? def.ref : def.intRef!;
  const shape = broadcastShapes(op, typeof a === "number" ? [] : aShape, typeof b === "number" ? [] : bShape);
  const n = sizeOf(shape);
  const idx = (s: Shape): ((i: number) => number) => {
    const st = stridesOf(s);
    const pad = shape.length - s.length;
    return (i) => {
      let r = 0;
      for (let k = shape.length - 1, rem = i; k >= 0; k--) {
        const d = shape[k]!;
        const c = rem % d;
        rem = Math.floor(rem / d);
        if (k >= pad && s[k - pad] !== 1) r += c * st[k - pad]!;
      }
      return r;
    };
  };
  const ia = typeof a === "number" ? null : idx(aShape);
  const ib = typeof b === "number" ? null : idx(bShape);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const av = typeof a === "number" ? a : a[ia!(i)]!;
    const bv = typeof b === "number" ? b : b[ib!(i)]!;
    out[i] = f(av, bv);
  }
  return out;
}

// ---- kernel ---------------------------------------------------------------------------

/**
 * One generator for every map: `fn f(a, b)` returns the scalar `expr` (unary: over `x`); each
 * invocation computes 4 elements, as one vec4 (w = 4, `f` applied per component) or as 4
 * consecutive elements (w = 1; one division chain for the first, then steps). Tensor
 * operands are indexed through the collapsed dims (rank, dims and strides are uniforms, so
 * one pipeline serves every shape); a number operand is the uniform `p.xa`/`p.xb`, selected
 * by a flag while its binding slot holds the other operand (read at index 0, ignored).
 */
function mapKernel(name: string, expr: string, dtype: DType, w: 1 | 4, arity: 1 | 2) {
  return kernel("elementwise", `${name}:${dtype}:${w}`, () => {
    const T = dtype;
    const V = w === 4 ? `vec4<${T}>` : T;
    const two = arity === 2;
    const call = w === 4 ? `${V}(${[0, 1, 2, 3].map((c) => (two ? `f(av[${c}], bv[${c}])` : `f(av[${c}])`)).join(", ")})` : two ? "f(av, bv)" : "f(av)";
    return {
      bindings: two ? ["read", "read", "rw"] : ["read", "rw"],
      code: `
struct P { n: u32, ka: u32, kb: u32, ko: u32, xa: ${T}, xb: ${T}, rank: u32, scalars: u32,
           d: array<vec4u, 2>, sa: array<vec4u, 2>, sb: array<vec4u, 2> }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a_: array<${V}>;
${two ? `@group(0) @binding(2) var<storage, read> b_: array<${V}>;` : ""}
@group(0) @binding(${arity + 1}) var<storage, read_write> out: array<${V}>;
${expr.includes("act_") ? ACTIVATION_WGSL : ""}${expr.includes("pow_") ? POW_WGSL : ""}
fn f(a: ${T}${two ? `, b: ${T}` : ""}) -> ${T} {${two ? "" : " let x = a;"} return ${expr}; }

// (ia, ib, position along the innermost dim) of element e, innermost dim first; unrolled
// with uniform guards and constant indices (a runtime loop indexing the uniform arrays was
// 2x slower on lavapipe)
fn locate(e: u32) -> vec3u {
  var ia = 0u; var ib = 0u; var q = e; var inner = e;
${[5, 4, 3, 2, 1]
  .map((k) => {
    const c = `[${k >> 2}].${"xyzw"[k & 3]}`;
    return `  if (p.rank > ${k}u) {
    let d = p.d${c}; let n = q / d; let c = q - n * d; q = n;
    ia += c * p.sa${c}; ib += c * p.sb${c};
    if (p.rank == ${k + 1}u) { inner = c; }
  }`;
  })
  .join("\n")}
  return vec3u(ia + q * p.sa[0].x, ib + q * p.sb[0].x, inner);
}

fn apply(e: u32, l: vec3u) {
  let av = select(a_[p.ka + l.x], ${V}(p.xa), (p.scalars & 1u) != 0u);
  ${two ? `let bv = select(b_[p.kb + l.y], ${V}(p.xb), (p.scalars & 2u) != 0u);` : ""}
  out[p.ko + e] = ${call};
}

@compute @workgroup_size(256) fn main(${WG_ARGS}) {
${
  w === 4
    ? `  let e = ${WG_INDEX} * 256u + lid;
  if (e < p.n) { apply(e, locate(e)); }`
    : `  // 4 consecutive elements: one division chain, then steps along the innermost dim
  let e0 = (${WG_INDEX} * 256u + lid) * 4u;
  if (e0 >= p.n) { return; }
  let r = p.rank - 1u;
  let dIn = p.d[r >> 2u][r & 3u];
  let step = vec3u(p.sa[r >> 2u][r & 3u], p.sb[r >> 2u][r & 3u], 1u);
  var l = locate(e0);
  apply(e0, l);
  for (var j = 1u; j < 4u; j++) {
    let e = e0 + j;
    if (e >= p.n) { return; }
    if (l.z + 1u < dIn) { l += step; } else { l = locate(e); }
    apply(e, l);
  }`
}
}`,
    };
  });
}

// ---- dispatch -------------------------------------------------------------------------

/**
 * Collapses the output dims: drops size-1 dims and merges a dim into its left neighbour when
 * every operand is contiguous across the pair. Returns dims and per-operand strides (0 where
 * the operand is broadcast).
 */
function collapse(shape: Shape, operands: Shape[]): { dims: number[]; strides: number[][] } {
  const dims: number[] = [];
  const strides: number[][] = operands.map(() => []);
  const full = operands.map((s) => {
    const st = stridesOf(s);
    const pad = shape.length - s.length;
    return shape.map((_, k) => (k < pad || s[k - pad] === 1 ? 0 : st[k - pad]!));
  });
  shape.forEach((d, k) => {
    if (d === 1) return;
    const last = dims.length - 1;
    if (last >= 0 && full.every((st, j) => strides[j]![last] === st[k]! * d)) {
      dims[last]! *= d;
      full.forEach((st, j) => (strides[j]![last] = st[k]!));
      return;
    }
    dims.push(d);
    full.forEach((st, j) => strides[j]!.push(st[k]!));
  });
  if (dims.length === 0) {
    dims.push(1);
    strides.forEach((s) => s.push(0));
  }
  return { dims, strides };
}

function expectLive(op: string, name: string, t: Tensor): void {
  if (t.disposed) throw new ReleasedError(`${op}: expected a live tensor for ${name}, got one released by dispose() (shape ${fmtShape(t.shape)})`);
}

/** The binding grown to whole vec4s, if its buffer has the room (pool buffers always do). */
function widen(b: BufferBinding): BufferBinding | null {
  const size = Math.ceil(b.size / 16) * 16;
  return b.offset % 16 === 0 && b.offset + size <= b.buffer.size ? { ...b, size } : null;
}

const vec8 = (v: number[]): number[] => [...v, ...new Array<number>(8 - v.length).fill(0)];

function launch(op: string, expr: string, dtype: DType, a: Tensor | number, b: Tensor | number | null): Tensor {
  const ta = a instanceof Tensor ? a : null;
  const tb = b instanceof Tensor ? b : null;
  const aShape = ta ? ta.shape : [];
  const bShape = tb ? tb.shape : [];
  for (const [t, name] of [[ta, "a"], [tb, "b"]] as const) {
    if (t && t.rank > MAX_RANK) throw new ShapeError(`${op}: expected rank at most ${MAX_RANK} for ${name}, got ${t.rank} (shape ${fmtShape(t.shape)})`);
  }
  const shape = broadcastShapes(op, aShape, bShape);
  if (ta) expectLive(op, "a", ta);
  if (tb) expectLive(op, "b", tb);
  const { dims, strides } = collapse(shape, [aShape, bShape]);
  const [sa, sb] = strides as [number[], number[]];
  const rank = dims.length;
  const inner = dims[rank - 1]!;
  const rowOut = sizeOf(dims.slice(1));
  const rows = dims[0]!;
  const maxChunk = maxChunkElems();
  // operands broadcast along dim 0 are bound whole; the others by row chunks
  for (const [t, s, name] of [[ta, sa, "a"], [tb, sb, "b"]] as const) {
    if (t && s[0] === 0 && t.size > maxChunk) {
      throw new LimitError(
        `${op}: expected at most ${maxChunk * 4} bytes (maxStorageBufferBindingSize) for ${name}, which is broadcast over a chunked output, got ${t.bytes} (a=${fmtShape(aShape)}, b=${fmtShape(bShape)})`,
      );
    }
  }
  const fits = sizeOf(shape) <= maxChunk && (!ta || ta.size <= maxChunk) && (!tb || tb.size <= maxChunk);
  const span = Math.max(rowOut, ta ? sa[0]! : 0, tb ? sb[0]! : 0);
  const rowsPerChunk = fits ? rows : Math.floor(maxChunk / span);
  if (rowsPerChunk < 1) {
    throw new LimitError(`${op}: expected a row of at most ${maxChunk * 4} bytes to chunk over, got ${span * 4} (a=${fmtShape(aShape)}, b=${fmtShape(bShape)})`);
  }
  const scalarU = (v: Tensor | number | null): Uniform => (typeof v !== "number" ? 0 : dtype === "f32" ? f32(v) : v);
  const arity = b === null ? 1 : 2;
  const out = alloc(shape, dtype);
  for (let r0 = 0; r0 < rows; r0 += rowsPerChunk) {
    const nr = Math.min(rowsPerChunk, rows - r0);
    const count = nr * rowOut;
    const bind = (t: Tensor, s: number[], name: string): { binding: BufferBinding; skip: number } =>
      s[0] === 0 || fits ? { binding: t.binding(op, name), skip: 0 } : t.rangeBinding(op, name, r0 * s[0]!, Math.min(nr * s[0]!, t.size - r0 * s[0]!));
    const ins = [ta ? { ...bind(ta, sa, "a"), s: sa } : null, tb ? { ...bind(tb, sb, "b"), s: sb } : null];
    const o = fits ? { binding: out.binding(op, "out"), skip: 0 } : out.rangeBinding(op, "out", r0 * rowOut, count);
    // width 4 when the innermost dim holds whole vec4s and every tensor operand is contiguous
    // along it and vec4-aligned; an unchunked rank-1 op rounds up into its buffers' slack
    // (pool buffers are whole vec4s and `out` is fresh, so the extra lanes harm nothing)
    const vecOk = (x: { binding: BufferBinding; skip: number; s: number[] }): boolean => x.s[rank - 1] === 1 && x.skip % 4 === 0 && widen(x.binding) !== null;
    const w: 1 | 4 = (inner % 4 === 0 || (rank === 1 && fits)) && o.skip % 4 === 0 && widen(o.binding) !== null && ins.every((x) => !x || vecOk(x)) ? 4 : 1;
    // a number operand's slot holds the other operand's binding (read at index 0, ignored)
    const slot = (j: 0 | 1): { binding: BufferBinding; skip: number; s: number[] } => {
      const x = ins[j] ?? ins[1 - j]!;
      const own = ins[j] !== null;
      return {
        binding: w === 4 ? widen(x.binding)! : x.binding,
        skip: own ? x.skip / w : 0,
        s: own ? x.s.map((v, i) => (w === 4 ? (i === rank - 1 ? 1 : v / 4) : v)) : [],
      };
    };
    const A = slot(0);
    const B = arity === 2 ? slot(1) : null;
    const d = [nr, ...dims.slice(1)];
    d[rank - 1] = Math.ceil(d[rank - 1]! / w);
    const bindings = B ? [A.binding, B.binding] : [A.binding];
    bindings.push(w === 4 ? widen(o.binding)! : o.binding);
    const scalars = (ta ? 0 : 1) | (arity === 2 && !tb ? 2 : 0);
    run(
      mapKernel(op, expr, dtype, w, arity),
      bindings,
      [Math.ceil(count / w), A.skip, B?.skip ?? 0, o.skip / w, scalarU(a), scalarU(b), rank, scalars, ...vec8(d), ...vec8(A.s), ...vec8(B?.s ?? [])],
      Math.ceil(count / 1024),
      count * (arity + 1),
    );
  }
  return out;
}

// ---- public ops -----------------------------------------------------------------------

function unary(op: UnaryOp, x: Tensor): Tensor {
  expectDType(op, "x", x, "f32");
  return launch(op, UNARY[op].wgsl, "f32", x, null);
}

function binary(op: BinaryOp, a: Tensor | number, b: Tensor | number): Tensor {
  const def: BinaryDef = BINARY[op];
  const allowed: DType[] = def.intRef ? ["f32", "i32"] : ["f32"];
  if (!(a instanceof Tensor) && !(b instanceof Tensor)) {
    throw new DTypeError(`${op}: expected a tensor for a or b, got two numbers (${a}, ${b})`);
  }
  const first = a instanceof Tensor ? a : (b as Tensor);
  const dtype = first.dtype;
  if (a instanceof Tensor) expectDType(op, "a", a, ...allowed);
  if (b instanceof Tensor) expectDType(op, "b", b, ...allowed);
  if (a instanceof Tensor && b instanceof Tensor && a.dtype !== b.dtype) {
    throw new DTypeError(`${op}: expected the same dtype for a and b, got ${a.dtype} and ${b.dtype} (a=${fmtShape(a.shape)}, b=${fmtShape(b.shape)})`);
  }
  for (const [v, name] of [[a, "a"], [b, "b"]] as const) {
    if (typeof v === "number" && dtype === "i32" && (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31)) {
      throw new DTypeError(`${op}: expected an i32 integer for ${name} (the tensor is i32), got ${v}`);
    }
  }
  return launch(op, def.wgsl, dtype, a, b);
}

export const neg = (x: Tensor): Tensor => unary("neg", x);
export const exp = (x: Tensor): Tensor => unary("exp", x);
export const log = (x: Tensor): Tensor => unary("log", x);
export const sqrt = (x: Tensor): Tensor => unary("sqrt", x);
export const rsqrt = (x: Tensor): Tensor => unary("rsqrt", x);
export const abs = (x: Tensor): Tensor => unary("abs", x);
export const tanh = (x: Tensor): Tensor => unary("tanh", x);
export const relu = (x: Tensor): Tensor => unary("relu", x);
export const sigmoid = (x: Tensor): Tensor => unary("sigmoid", x);
export const gelu = (x: Tensor): Tensor => unary("gelu", x);
export const quickGelu = (x: Tensor): Tensor => unary("quickGelu", x);
export const square = (x: Tensor): Tensor => unary("square", x);
export const reciprocal = (x: Tensor): Tensor => unary("reciprocal", x);
/** Any op of the UNARY table by name. */
export const unaryOp = (op: UnaryOp, x: Tensor): Tensor => unary(op, x);

export const add = (a: Tensor | number, b: Tensor | number): Tensor => binary("add", a, b);
export const sub = (a: Tensor | number, b: Tensor | number): Tensor => binary("sub", a, b);
export const mul = (a: Tensor | number, b: Tensor | number): Tensor => binary("mul", a, b);
export const div = (a: Tensor | number, b: Tensor | number): Tensor => binary("div", a, b);
export const pow = (a: Tensor | number, b: Tensor | number): Tensor => binary("pow", a, b);
export const maximum = (a: Tensor | number, b: Tensor | number): Tensor => binary("maximum", a, b);
export const minimum = (a: Tensor | number, b: Tensor | number): Tensor => binary("minimum", a, b);
/** Any op of the BINARY table by name. */
export const binaryOp = (op: BinaryOp, a: Tensor | number, b: Tensor | number): Tensor => binary(op, a, b);
/** x·s: mul with a number. */
export const scale = (x: Tensor, s: number): Tensor => mul(x, s);
