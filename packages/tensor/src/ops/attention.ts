// attention: fused scaled-dot-product attention, flash style.
//   q [B, H, Tq, Dh], k, v [B, H, Tk, Dh] (f32), Dh ≤ 128
//   s[i, j] = scale · q_i·k_j (default scale 1/√Dh), -∞ where masked
//   out [B, H, Tq, Dh] = softmax_j(s) v,  lse [B, H, Tq] = log Σ_j exp(s[i, j]) (for backward)
// Masks: `causal` aligns the query block to the END of the keys: query i sees keys
// j ≤ i + Tk - Tq (with Tq = Tk that is torch's is_causal; with Tq < Tk it is what a KV
// cache needs; Tq > Tk is rejected). keyPaddingMask [B, Tk], u32 or i32: nonzero = attend,
// 0 = padding. A query whose keys are all masked gets out = 0 and lse = -inf.
//
// Passes: one dispatch per block of KB keys (online softmax across dispatches; the [Tq, Tk]
// scores never reach memory). Workgroup = WQ = 64 queries of one (b, h), one per
// invocation. Each dispatch: stage the block's K and V rows (zero-padded to DP columns) and
// key mask in workgroup memory -> barrier -> each invocation loads its q row, its running
// (max, sum) from a [B·H·Tq] state buffer and its running output from `out` (stored
// normalised, so `out` and `lse` are valid after every block), then straight-line code
// fully unrolled over KB × DP: scores, rescale, P·V; then stores. Causal dispatches skip
// the query blocks that see none of the block's keys. Tensors above one storage binding
// run in chunks of whole heads.
//
// Why this shape (lavapipe, see matmul-cpu.ts): invocations are SIMD lanes; workgroup
// memory read at compile-time-constant addresses in straight-line code becomes one
// broadcast, while any load in a loop or at a per-lane address is scalarised. Measured on
// [8, 12, 256, 64] causal: ~10x faster than one invocation per query looping over keys
// read from storage (0.2-0.6 GFLOPS). The price is compile time (Mesa caches pipelines on
// disk; cold: ~3 s for DP 16, ~12 s for DP 64, ~20 s for DP 128), so pipelines are shared:
// DP = Dh rounded up to 16, 32, 64 or 128 with vec4 loads of q and out (Dh % 4 ≠ 0: scalar
// loads, DP = Dh rounded up to 4), KB = 1024 / DP keys (4..32; 1.0-2x faster than 512 / DP),
// and causal, mask and scale are uniforms.
import { ShapeError, fmtShape } from "../errors.js";
import { kernel, run } from "../kernel.js";
import { f32, type BufferBinding } from "../recorder.js";
import { alloc, type Tensor } from "../tensor.js";
import { NEG_BIG, vec4Binding } from "./rows.js";
import { expectDType, expectLive, expectRank, maxChunkElems } from "./util.js";

export interface AttentionOptions {
  causal?: boolean;
  /** [B, Tk], u32 or i32: nonzero = attend, 0 = padding. */
  keyPaddingMask?: Tensor;
  /** Default 1/√Dh. */
  scale?: number;
}

export const MAX_HEAD_DIM = 128;
const WQ = 64;

interface AttentionTile {
  /** padded head dim: columns of the staged K/V rows and of the unrolled code */
  dp: number;
  /** keys per dispatch */
  kb: number;
  /** q and out rows are loaded and stored as vec4 */
  vec4: boolean;
}

/** The kernel shape for a head dim (see the header). */
function attentionTile(dh: number): AttentionTile {
  const vec4 = dh % 4 === 0;
  const dp = vec4 ? Math.max(16, 2 ** Math.ceil(Math.log2(dh))) : Math.ceil(dh / 4) * 4;
  const kb = Math.min(32, Math.max(4, 2 ** Math.floor(Math.log2(1024 / dp))));
  return { dp, kb, vec4 };
}

const range = (n: number): number[] => [...Array(n).keys()];

function build({ dp: DP, kb: KB, vec4 }: AttentionTile): string {
  const L: string[] = [];
  const D4 = DP / 4;
  // q row (zero past Dh: the staged K columns there are zero, but q·0 must not be NaN·0)
  if (vec4) {
    for (const c of range(D4)) L.push(`  let qv${c} = select(vec4f(0.0), q[qb / 4u + ${c}u], ${4 * c}u < p.Dh);`);
  } else {
    for (const c of range(D4)) L.push(`  let qv${c} = vec4f(${range(4).map((t) => `select(0.0, q[qb + min(${4 * c + t}u, p.Dh - 1u)], ${4 * c + t}u < p.Dh)`).join(", ")});`);
  }
  // scores of the KB keys
  for (const t of range(KB)) L.push(`  var s${t} = 0.0;`);
  for (const d of range(DP)) for (const t of range(KB)) L.push(`  s${t} = fma(qv${d >> 2}.${"xyzw"[d & 3]}, Ks[${t * DP + d}u], s${t});`);
  for (const t of range(KB)) {
    L.push(`  let ok${t} = Ms[${t}u] != 0u && (p.causal == 0u || p.kb0 + ${t}u <= i + p.off);`);
    L.push(`  let t${t} = select(NEG_BIG, s${t} * p.scale, ok${t});`);
  }
  // online softmax: new max, rescale of the running sum and output
  L.push(`  let mn = ${range(KB).map((t) => `max(t${t}, `).join("")}m${")".repeat(KB)};`);
  L.push(`  let alpha = exp(m - mn);`);
  for (const t of range(KB)) L.push(`  let e${t} = select(0.0, exp(t${t} - mn), ok${t});`);
  L.push(`  let l2 = l * alpha + ${range(KB).map((t) => `e${t}`).join(" + ")};`);
  L.push(`  let keep = select(alpha * l, 0.0, p.first != 0u); // out holds o / l`);
  L.push(`  let inv = select(0.0, 1.0 / l2, l2 > 0.0);`);
  for (const c of range(D4)) {
    const ld = vec4
      ? `out[ob / 4u + ${c}u]`
      : `vec4f(${range(4).map((t) => `out[ob + min(${4 * c + t}u, p.Dh - 1u)]`).join(", ")})`;
    L.push(`  var o${c} = select(vec4f(0.0), ${ld} * keep, ${4 * c}u < p.Dh && p.first == 0u);`);
    for (const t of range(KB)) {
      const vs = range(4).map((u) => `Vs[${t * DP + 4 * c + u}u]`).join(", ");
      L.push(`  o${c} = fma(vec4f(e${t}), vec4f(${vs}), o${c});`);
    }
  }
  L.push(`  if (real) {`);
  for (const c of range(D4)) {
    if (vec4) L.push(`    if (${4 * c}u < p.Dh) { out[ob / 4u + ${c}u] = o${c} * inv; }`);
    else for (const t of range(4)) L.push(`    if (${4 * c + t}u < p.Dh) { out[ob + ${4 * c + t}u] = o${c}.${"xyzw"[t]} * inv; }`);
  }
  L.push(`    st[p.sskip + row] = vec2f(mn, l2);`);
  L.push(`    var ninf = 0xff800000u; // a var, not a constant: WGSL rejects infinite constants`);
  L.push(`    lse[p.lskip + row] = select(bitcast<f32>(ninf), mn + log(l2), l2 > 0.0);`);
  L.push(`  }`);
  const T = vec4 ? "vec4f" : "f32";
  return `
struct P {
  nrun: u32, qbMin: u32, nwg: u32, Tq: u32, Tk: u32, Dh: u32, H: u32, head0: u32, kb0: u32, first: u32,
  causal: u32, useMask: u32, off: u32, qskip: u32, kskip: u32, vskip: u32, oskip: u32, lskip: u32, sskip: u32, scale: f32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> q: array<${T}>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<${T}>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
@group(0) @binding(6) var<storage, read_write> st: array<vec2f>;
@group(0) @binding(7) var<storage, read> mask: array<u32>;
const NEG_BIG = ${NEG_BIG};
var<workgroup> Ks: array<f32, ${KB * DP}>;
var<workgroup> Vs: array<f32, ${KB * DP}>;
var<workgroup> Ms: array<u32, ${KB}>;
@compute @workgroup_size(${WQ}) fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  // no early return: it would put the unrolled code under a branch (see the header)
  let wl = wid.x + wid.y * nwg.x;
  let w = min(wl, p.nwg - 1u);
  let hl = w / p.nrun;                                // head within the chunk
  let qfirst = (p.qbMin + w % p.nrun) * ${WQ}u;
  let real = wl < p.nwg && qfirst + lid < p.Tq;       // lanes past Tq (clamped) do not store
  let i = min(qfirst + lid, p.Tq - 1u);
  let row = hl * p.Tq + i;
  let qb = p.qskip + row * p.Dh;
  let ob = p.oskip + row * p.Dh;
  let kbase = hl * p.Tk * p.Dh;
  for (var e = lid; e < ${KB * DP}u; e += ${WQ}u) {
    let t = e / ${DP}u;
    let d = e % ${DP}u;
    let src = kbase + min(p.kb0 + t, p.Tk - 1u) * p.Dh + min(d, p.Dh - 1u);
    let ok = p.kb0 + t < p.Tk && d < p.Dh;
    Ks[e] = select(0.0, k[p.kskip + src], ok);
    Vs[e] = select(0.0, v[p.vskip + src], ok);
  }
  for (var t = lid; t < ${KB}u; t += ${WQ}u) {
    let j = min(p.kb0 + t, p.Tk - 1u);
    let b = (p.head0 + hl) / p.H;
    Ms[t] = select(0u, select(1u, mask[b * p.Tk + j], p.useMask != 0u), p.kb0 + t < p.Tk);
  }
  let s = select(st[p.sskip + row], vec2f(NEG_BIG, 0.0), p.first != 0u);
  let m = s.x;
  let l = s.y;
  workgroupBarrier();
${L.join("\n")}
}`;
}

/** Fused softmax(q kᵀ · scale + mask) v; see the file header. */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): { out: Tensor; lse: Tensor } {
  const op = "attention";
  const shapes = `(q=${fmtShape(q.shape)}, k=${fmtShape(k.shape)}, v=${fmtShape(v.shape)})`;
  for (const [name, t] of [["q", q], ["k", k], ["v", v]] as const) {
    expectLive(op, name, t);
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
  const { causal, mask } = checkMasking(op, opts, B, Tq, Tk, shapes);
  const scale = opts.scale ?? 1 / Math.sqrt(Dh);
  const tile = attentionTile(Dh);
  const kern = kernel(op, `${tile.dp}x${tile.kb}${tile.vec4 ? "v" : "s"}`, () => ({
    code: build(tile),
    bindings: ["read", "read", "read", "rw", "rw", "rw", "read"],
  }));
  const dummy = mask ? undefined : alloc([1], "u32"); // bound but never used when there is no mask
  const maskBinding = (mask ?? dummy)!.binding(op, "keyPaddingMask");
  const out = alloc(q.shape, "f32");
  const lse = alloc([B, H, Tq], "f32");
  const state = alloc([B * H * Tq * 2], "f32");
  const nqb = Math.ceil(Tq / WQ);
  const off = causal ? Tk - Tq : 0;
  forHeadChunks(op, B * H, Math.max(Tq, Tk) * Dh, (h0, hc, bind) => {
    const [qb, qs] = bind(q, "q", Tq * Dh);
    const [kbd, ks] = bind(k, "k", Tk * Dh);
    const [vb, vs] = bind(v, "v", Tk * Dh);
    const [ob, os] = bind(out, "out", Tq * Dh);
    const [lb, ls] = bind(lse, "lse", Tq);
    const [sb, ss] = bind(state, "state", Tq * 2);
    for (let kb0 = 0; kb0 < Tk; kb0 += tile.kb) {
      // causal: query block b sees this key block when its last query does
      const qbMin = causal ? Math.max(0, Math.ceil((kb0 - off - WQ + 1) / WQ)) : 0;
      const nrun = nqb - qbMin;
      const nwg = hc * nrun;
      const uniforms = [nrun, qbMin, nwg, Tq, Tk, Dh, H, h0, kb0, kb0 === 0 ? 1 : 0, causal ? 1 : 0, mask ? 1 : 0, off, qs, ks, vs, os, ls, ss / 2, f32(scale)];
      run(kern, [qb, kbd, vb, ob, lb, sb, maskBinding], uniforms, nwg, 4 * nwg * WQ * tile.kb * tile.dp);
    }
  }, vec4Binding);
  state.dispose();
  dummy?.dispose();
  return { out, lse };
}

/** Checks the causal flag (Tq <= Tk) and the key padding mask ([B, Tk], u32/i32) of `opts`. */
export function checkMasking(op: string, opts: AttentionOptions, B: number, Tq: number, Tk: number, shapes: string): { causal: boolean; mask: Tensor | undefined } {
  const causal = opts.causal ?? false;
  if (causal && Tq > Tk) throw new ShapeError(`${op}: expected Tq <= Tk for causal attention, got Tq ${Tq} and Tk ${Tk} ${shapes}`);
  const mask = opts.keyPaddingMask;
  if (mask) {
    expectLive(op, "keyPaddingMask", mask);
    expectDType(op, "keyPaddingMask", mask, "u32", "i32");
    if (mask.rank !== 2 || mask.shape[0] !== B || mask.shape[1] !== Tk) {
      throw new ShapeError(`${op}: expected shape [${B}, ${Tk}] for keyPaddingMask, got ${fmtShape(mask.shape)} ${shapes}`);
    }
  }
  return { causal, mask };
}

/** Binds heads [h0, h0 + hc) of a (heads, perHead) tensor: its binding (through `wrap`) and the skip inside it. */
export type HeadBind = (t: Tensor, name: string, perHead: number) => [BufferBinding, number];

/**
 * Runs `each` over the B·H heads in chunks of at most maxChunkElems() / perHeadMax heads, so
 * every tensor's chunk fits one storage binding (the forward and backward attention passes).
 */
export function forHeadChunks(
  op: string,
  heads: number,
  perHeadMax: number,
  each: (h0: number, hc: number, bind: HeadBind) => void,
  wrap: (b: BufferBinding) => BufferBinding = (b) => b,
): void {
  const perChunk = Math.max(1, Math.floor(maxChunkElems() / perHeadMax));
  for (let h0 = 0; h0 < heads; h0 += perChunk) {
    const hc = Math.min(perChunk, heads - h0);
    each(h0, hc, (t, name, perHead) => {
      const r = t.rangeBinding(op, name, h0 * perHead, hc * perHead);
      return [wrap(r.binding), r.skip];
    });
  }
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
