// attention: fused scaled-dot-product attention, flash style.
//   q [B, H, Tq, Dh], k, v [B, H, Tk, Dh] (f32), Dh ≤ 128
//   s[i, j] = scale · q_i·k_j (default scale 1/√Dh), minus ∞ where masked
//   out [B, H, Tq, Dh] = softmax_j(s) v,  lse [B, H, Tq] = log Σ_j exp(s[i, j]) (for backward)
// Masks: `causal` aligns the query block to the END of the keys (query i sees keys
// j ≤ i + Tk - Tq; with Tq = Tk that is torch's is_causal, and it is what a KV cache needs;
// Tq > Tk is rejected). keyPaddingMask [B, Tk] (u32 or i32, nonzero = attend, 0 = padding).
// A query whose keys are all masked gets out = 0 and lse = -inf.
// Kernel: one invocation per query row, WQ rows of one (b, h) per workgroup, no workgroup
// memory and no barriers (lavapipe runs invocations as SIMD lanes). Each invocation keeps
// its q row and output accumulator in registers, walks the keys in blocks of KB (loads of
// K and V rows are uniform across the workgroup), keeps a running max and sum (online
// softmax, one rescale per block), and never writes the [Tq, Tk] scores. Causal
// workgroups stop at their last visible key. One pass; tensors above one storage binding
// run in chunks of whole heads.
import { ShapeError, fmtShape } from "../errors.js";
import { WG_ARGS, WG_INDEX, kernel, run } from "../kernel.js";
import type { BufferBinding } from "../recorder.js";
import { f32 } from "../recorder.js";
import { alloc, type Tensor } from "../tensor.js";
import { NEG_BIG, vec4Binding } from "./rows.js";
import { expectDType, expectRank, maxChunkElems } from "./util.js";

export interface AttentionOptions {
  causal?: boolean;
  /** [B, Tk], u32 or i32: nonzero = attend, 0 = padding. */
  keyPaddingMask?: Tensor;
  /** Default 1/√Dh. */
  scale?: number;
}

export const MAX_HEAD_DIM = 128;

interface Variant {
  dh: number;
  causal: boolean;
  mask: boolean;
  wq: number;
  kb: number;
}

/** Tuning: queries per workgroup and keys per block (measured on lavapipe, see bench). */
export const ATTENTION_TILE = { wq: 32, kb: 8 };

const rep = (n: number, f: (i: number) => string, sep = "\n    "): string => Array.from({ length: n }, (_, i) => f(i)).join(sep);

// The WGSL is unrolled here over the head dim (in vec4s) and the key block, so the q row,
// the output accumulator and the block's scores are plain values (registers or spill
// slots): indexing a private array with a loop variable compiled to per-lane scratch
// memory on lavapipe and ran ~10x slower.
export function build(v: Variant) {
  const DV = Math.ceil(v.dh / 4);
  const aligned = v.dh % 4 === 0;
  const arr = aligned ? "array<vec4f>" : "array<f32>";
  // the c-th vec4 of the row beginning at element `base`, zeros past Dh
  const ld = (buf: string, base: string, c: number): string =>
    aligned
      ? `${buf}[${base} / 4u + ${c}u]`
      : `vec4f(${[0, 1, 2, 3].map((t) => (4 * c + t < v.dh ? `${buf}[${base} + ${4 * c + t}u]` : "0.0")).join(", ")})`;
  const KB = v.kb;
  return {
    bindings: (v.mask ? ["read", "read", "read", "rw", "rw", "read"] : ["read", "read", "read", "rw", "rw"]) as readonly ("read" | "rw")[],
    code: `
struct P { heads: u32, nqb: u32, Tq: u32, Tk: u32, H: u32, head0: u32, qskip: u32, kskip: u32, vskip: u32, oskip: u32, lskip: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> q: ${arr};
@group(0) @binding(2) var<storage, read> k: ${arr};
@group(0) @binding(3) var<storage, read> v: ${arr};
@group(0) @binding(4) var<storage, read_write> out: ${arr};
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
${v.mask ? "@group(0) @binding(6) var<storage, read> mask: array<u32>;" : ""}
const NEG_BIG = ${NEG_BIG};
@compute @workgroup_size(${v.wq}) fn main(${WG_ARGS}) {
  let w = ${WG_INDEX};
  if (w >= p.heads * p.nqb) { return; }
  let hl = w / p.nqb;               // head within this chunk
  let qfirst = (w % p.nqb) * ${v.wq}u;   // first query of the workgroup
  let i = qfirst + lid;
  let qb = p.qskip + (hl * p.Tq + min(i, p.Tq - 1u)) * ${v.dh}u;
  ${rep(DV, (c) => `let qv${c} = ${ld("q", "qb", c)} * p.scale;`, "\n  ")}
  ${rep(DV, (c) => `var ov${c} = vec4f(0.0);`, "\n  ")}
  ${v.causal ? `let off = p.Tk - p.Tq;
  let kEnd = min(p.Tk, qfirst + ${v.wq}u + off); // keys past the workgroup's last query are never visible
  let lim = i + off;` : "let kEnd = p.Tk;"}
  ${v.mask ? "let mrow = ((p.head0 + hl) / p.H) * p.Tk;" : ""}
  let kbase = p.kskip + hl * p.Tk * ${v.dh}u;
  let vbase = p.vskip + hl * p.Tk * ${v.dh}u;
  var m = NEG_BIG;
  var l = 0.0;
  for (var jb = 0u; jb < kEnd; jb += ${KB}u) {
    ${rep(KB, (t) => `let j${t} = min(jb + ${t}u, kEnd - 1u);`)}
    ${rep(KB, (t) => {
      const kb = `(kbase + j${t} * ${v.dh}u)`;
      let ok = `jb + ${t}u < kEnd`;
      if (v.causal) ok += ` && j${t} <= lim`;
      if (v.mask) ok += ` && mask[mrow + j${t}] != 0u`;
      return `let a${t} = ${rep(DV, (c) => `qv${c} * ${ld("k", kb, c)}`, " + ")};
    let s${t} = select(NEG_BIG, a${t}.x + a${t}.y + a${t}.z + a${t}.w, ${ok});`;
    })}
    let mn = ${rep(KB, (t) => `max(s${t}, `, "")}m${")".repeat(KB)};
    let alpha = exp(m - mn);
    l *= alpha;
    ${rep(DV, (c) => `ov${c} *= alpha;`)}
    ${rep(KB, (t) => `let pr${t} = select(0.0, exp(s${t} - mn), s${t} > -1.0e38);`)}
    l += ${rep(KB, (t) => `pr${t}`, " + ")};
    ${rep(KB, (t) => rep(DV, (c) => `ov${c} += pr${t} * ${ld("v", `(vbase + j${t} * ${v.dh}u)`, c)};`), "\n    ")}
    m = mn;
  }
  if (i >= p.Tq) { return; }
  var ninf = 0xff800000u; // a var, not a constant: WGSL rejects infinite constants
  lse[p.lskip + hl * p.Tq + i] = select(bitcast<f32>(ninf), m + log(l), l > 0.0);
  let inv = select(0.0, 1.0 / l, l > 0.0);
  let ob = p.oskip + (hl * p.Tq + i) * ${v.dh}u;
  ${rep(DV, (c) =>
    aligned
      ? `out[ob / 4u + ${c}u] = ov${c} * inv;`
      : rep(4, (t) => (4 * c + t < v.dh ? `out[ob + ${4 * c + t}u] = ov${c}[${t}] * inv;` : ""), " "),
  "\n  ")}
}`,
  };
}

/** Fused softmax(q kᵀ · scale + mask) v; see the file header. */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): { out: Tensor; lse: Tensor } {
  const op = "attention";
  const shapes = `(q=${fmtShape(q.shape)}, k=${fmtShape(k.shape)}, v=${fmtShape(v.shape)})`;
  for (const [name, t] of [["q", q], ["k", k], ["v", v]] as const) {
    expectDType(op, name, t, "f32");
    expectRank(op, name, t, 4);
  }
  const [B, H, Tq, Dh] = q.shape as [number, number, number, number];
  const Tk = k.shape[2]!;
  if (Dh > MAX_HEAD_DIM) throw new ShapeError(`${op}: expected head dim Dh <= ${MAX_HEAD_DIM} for q, got ${Dh} ${shapes}`);
  if (k.shape[0] !== B || k.shape[1] !== H || k.shape[3] !== Dh) {
    throw new ShapeError(`${op}: expected shape [${B}, ${H}, Tk, ${Dh}] for k, got ${fmtShape(k.shape)} ${shapes}`);
  }
  if (v.shape.some((d, i) => d !== k.shape[i])) {
    throw new ShapeError(`${op}: expected shape ${fmtShape(k.shape)} (that of k) for v, got ${fmtShape(v.shape)} ${shapes}`);
  }
  const causal = opts.causal ?? false;
  if (causal && Tq > Tk) throw new ShapeError(`${op}: expected Tq <= Tk for causal attention, got Tq ${Tq} and Tk ${Tk} ${shapes}`);
  const mask = opts.keyPaddingMask;
  if (mask) {
    expectDType(op, "keyPaddingMask", mask, "u32", "i32");
    if (mask.rank !== 2 || mask.shape[0] !== B || mask.shape[1] !== Tk) {
      throw new ShapeError(`${op}: expected shape [${B}, ${Tk}] for keyPaddingMask, got ${fmtShape(mask.shape)} ${shapes}`);
    }
  }
  const scale = opts.scale ?? 1 / Math.sqrt(Dh);
  const { wq, kb } = ATTENTION_TILE;
  const variant: Variant = { dh: Dh, causal, mask: mask !== undefined, wq, kb };
  const kern = kernel(op, `${Dh}:${causal ? "c" : ""}${mask ? "m" : ""}:${wq}x${kb}`, () => build(variant));
  const maskBinding = mask?.binding(op, "keyPaddingMask");
  const out = alloc(q.shape, "f32");
  const lse = alloc([B, H, Tq], "f32");
  const heads = B * H;
  const perChunk = Math.max(1, Math.floor(maxChunkElems() / (Math.max(Tq, Tk) * Dh)));
  const nqb = Math.ceil(Tq / wq);
  const bind = (t: Tensor, name: string, start: number, count: number): [BufferBinding, number] => {
    const r = t.rangeBinding(op, name, start, count);
    return [vec4Binding(r.binding), r.skip];
  };
  for (let h0 = 0; h0 < heads; h0 += perChunk) {
    const hc = Math.min(perChunk, heads - h0);
    const [qb, qs] = bind(q, "q", h0 * Tq * Dh, hc * Tq * Dh);
    const [kbd, ks] = bind(k, "k", h0 * Tk * Dh, hc * Tk * Dh);
    const [vb, vs] = bind(v, "v", h0 * Tk * Dh, hc * Tk * Dh);
    const [ob, os] = bind(out, "out", h0 * Tq * Dh, hc * Tq * Dh);
    const [lb, ls] = bind(lse, "lse", h0 * Tq, hc * Tq);
    const bindings = [qb, kbd, vb, ob, lb];
    if (maskBinding) bindings.push(maskBinding);
    const flops = 4 * hc * Tq * Tk * Dh * (causal ? 0.5 : 1);
    run(kern, bindings, [hc, nqb, Tq, Tk, H, h0, qs, ks, vs, os, ls, f32(scale)], hc * nqb, flops);
  }
  return { out, lse };
}

/**
 * float64 reference: explicit softmax(q kᵀ · scale + mask) v over row-major arrays.
 * `mask` is [B, Tk] (nonzero = attend). Fully masked rows give zeros and lse = -Infinity.
 */
export function attentionRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dims: { B: number; H: number; Tq: number; Tk: number; Dh: number },
  opts: { causal?: boolean; mask?: ArrayLike<number>; scale?: number } = {},
): { out: Float64Array; lse: Float64Array } {
  const { B, H, Tq, Tk, Dh } = dims;
  const scale = opts.scale ?? 1 / Math.sqrt(Dh);
  const out = new Float64Array(B * H * Tq * Dh);
  const lse = new Float64Array(B * H * Tq);
  const s = new Float64Array(Tk);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const head = b * H + h;
      for (let i = 0; i < Tq; i++) {
        let m = -Infinity;
        for (let j = 0; j < Tk; j++) {
          const visible = (!opts.causal || j <= i + Tk - Tq) && (!opts.mask || opts.mask[b * Tk + j] !== 0);
          let d = 0;
          for (let c = 0; c < Dh; c++) d += q[(head * Tq + i) * Dh + c]! * k[(head * Tk + j) * Dh + c]!;
          s[j] = visible ? d * scale : -Infinity;
          m = Math.max(m, s[j]!);
        }
        const row = head * Tq + i;
        if (m === -Infinity) {
          lse[row] = -Infinity;
          continue;
        }
        let sum = 0;
        for (let j = 0; j < Tk; j++) sum += Math.exp(s[j]! - m);
        lse[row] = m + Math.log(sum);
        for (let j = 0; j < Tk; j++) {
          const pj = Math.exp(s[j]! - m) / sum;
          if (pj === 0) continue;
          for (let c = 0; c < Dh; c++) out[row * Dh + c] = out[row * Dh + c]! + pj * v[(head * Tk + j) * Dh + c]!;
        }
      }
    }
  }
  return { out, lse };
}
