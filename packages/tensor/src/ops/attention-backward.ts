// attentionBackward: gradients of fused attention (attention.ts), FlashAttention-2 style.
//   q, out, dOut [B, H, Tq, Dh], k, v [B, H, Tk, Dh], lse [B, H, Tq] (from the forward)
//   P = exp(scale · q kᵀ − lse) (0 where masked), D_i = Σ_c dOut[i, c] · out[i, c]
//   dv = Pᵀ dOut, dP = dOut vᵀ, dS = P ∘ (dP − D), dq = scale · dS k, dk = scale · dSᵀ q
// returns { dq, dk, dv } with the shapes of q, k, v. Masks and scale as in the forward.
// Nothing of size [Tq, Tk] is ever stored: P and dS are recomputed per (query, key) pair.
// Passes (per chunk of whole heads, so tensors above one storage binding work):
// (0) stats [rows, 2] = (lse, D): one invocation per query row.
// (1) dk, dv: workgroup = WB = 64 keys of one head, one per invocation, holding its k, v
//     rows and dk, dv accumulators in registers; loops over blocks of QB queries staged
//     (q, dOut, stats) in workgroup memory. Causal: starts at the first query that sees
//     the workgroup's first key.
// (2) dq: workgroup = 64 queries, one per invocation, holding q, dOut, dq; loops over
//     blocks of QB keys staged (k, v, mask) in workgroup memory. Causal: stops after the
//     last key the workgroup's last query sees.
// The head dim is unrolled over DP / 4 vec4 columns (DP = Dh rounded up to a power of two
// ≥ 4; zero-padded) so each lane's rows and accumulators are registers, not a scratch array
// indexed at run time (2.6x faster on lavapipe); the loop over the QB staged rows is NOT
// unrolled: that made DP 64 pipelines take minutes to compile. QB = 1024 / DP in [4, 32].
// DP 128 loops over the columns at run time (unrolled, it took ~165 s to compile). Cold
// compile (Mesa caches pipelines on disk): the three DP 64 pipelines ~58 s (~40 s with
// run-time column loops), DP 128 ~38 s.
// Measured on lavapipe (2 cores, noisy): [8, 12, 64, 64] causal ~220 ms vs ~45 ms forward;
// [2, 12, 197, 64] ~350 ms vs ~85 ms forward.
import { ShapeError, fmtShape } from "../errors.js";
import { WG_ARGS, WG_INDEX, kernel, run } from "../kernel.js";
import { f32 } from "../recorder.js";
import { alloc, type Tensor } from "../tensor.js";
import { MAX_HEAD_DIM, type AttentionOptions, checkMasking, forHeadChunks } from "./attention.js";
import { expectDType, expectLive, expectRank } from "./util.js";

const WB = 64;

const tileOf = (dh: number): { dp: number; qb: number } => {
  const dp = Math.max(4, 2 ** Math.ceil(Math.log2(dh)));
  return { dp, qb: Math.min(32, Math.max(4, 1024 / dp)) };
};

/** WGSL: vec4 `c` (columns 4c..4c+3) of row `base` of `buf`, zero past Dh and past `ok`. */
const load4 = (buf: string, base: string, c: string, ok: string): string =>
  `vec4f(${[0, 1, 2, 3].map((t) => `select(0.0, ${buf}[${base} + min(4u * ${c} + ${t}u, p.Dh - 1u)], ${ok} && 4u * ${c} + ${t}u < p.Dh)`).join(", ")})`;

const store4 = (buf: string, base: string, c: string, val: string): string =>
  [0, 1, 2, 3].map((t) => `if (4u * ${c} + ${t}u < p.Dh) { ${buf}[${base} + 4u * ${c} + ${t}u] = ${val}[${t}]; }`).join("\n      ");

/** WGSL lines `f(c)` for every vec4 column c of the padded head dim (unrolled: the per-lane rows
 * and accumulators stay in registers instead of a scratch array indexed at run time). */
const cols = (DP: number, f: (c: string) => string, sep = "\n  "): string =>
  DP <= UNROLL_MAX_DP ? [...Array(DP / 4).keys()].map((c) => f(`${c}u`)).join(sep) : `for (var c = 0u; c < D4; c++) {${sep}  ${f("c")}${sep}}`;
/** Above this the columns loop at run time: DP 128 unrolled took ~165 s to compile on lavapipe. */
const UNROLL_MAX_DP = 64;
const arrays = (DP: number, names: string[]): string => names.map((n) => `var ${n}: array<vec4f, ${DP / 4}>;`).join("\n  ");

const HEAD = `
struct P {
  nrun: u32, nwg: u32, Tq: u32, Tk: u32, Dh: u32, H: u32, head0: u32, causal: u32, useMask: u32, off: u32,
  qskip: u32, kskip: u32, vskip: u32, gskip: u32, sskip: u32, oskip: u32, oskip2: u32, scale: f32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;
@group(0) @binding(5) var<storage, read> st: array<vec2f>;
@group(0) @binding(6) var<storage, read> mask: array<u32>;`;

/** Pass 1: dk, dv, one invocation per key. */
const dkdvKernel = (DP: number, QB: number) =>
  kernel("attentionBackward", `kv${DP}x${QB}`, () => ({
    bindings: ["read", "read", "read", "read", "read", "read", "rw", "rw"],
    code: `${HEAD}
@group(0) @binding(7) var<storage, read_write> dk: array<f32>;
@group(0) @binding(8) var<storage, read_write> dv: array<f32>;
const D4 = ${DP / 4}u;
const QB = ${QB}u;
var<workgroup> Qs: array<vec4f, ${QB * (DP / 4)}>;
var<workgroup> Gs: array<vec4f, ${QB * (DP / 4)}>;
var<workgroup> Ss: array<vec2f, ${QB}>;
@compute @workgroup_size(${WB}) fn main(${WG_ARGS}) {
  let wl = ${WG_INDEX};
  let w = min(wl, p.nwg - 1u);
  let hl = w / p.nrun;
  let kfirst = (w % p.nrun) * ${WB}u;
  let real = wl < p.nwg && kfirst + lid < p.Tk;
  let j = min(kfirst + lid, p.Tk - 1u);
  let kb = (hl * p.Tk + j) * p.Dh;
  let b = (p.head0 + hl) / p.H;
  let keyOk = p.useMask == 0u || mask[b * p.Tk + j] != 0u;
  ${arrays(DP, ["kr", "vr", "dkr", "dvr"])}
  ${cols(DP, (c) => `kr[${c}] = ${load4("k", "p.kskip + kb", c, "true")};`)}
  ${cols(DP, (c) => `vr[${c}] = ${load4("v", "p.vskip + kb", c, "true")};`)}
  ${cols(DP, (c) => `dkr[${c}] = vec4f(0.0);\n  dvr[${c}] = vec4f(0.0);`)}
  let qStart = select(0u, select(0u, kfirst - p.off, kfirst > p.off), p.causal != 0u);
  for (var i0 = qStart; i0 < p.Tq; i0 += QB) {
    for (var e = lid; e < QB * D4; e += ${WB}u) {
      let i = i0 + e / D4;
      let rb = (hl * p.Tq + min(i, p.Tq - 1u)) * p.Dh;
      Qs[e] = ${load4("q", "p.qskip + rb", "(e % D4)", "i < p.Tq")};
      Gs[e] = ${load4("g", "p.gskip + rb", "(e % D4)", "i < p.Tq")};
    }
    for (var t = lid; t < QB; t += ${WB}u) {
      Ss[t] = st[p.sskip + hl * p.Tq + min(i0 + t, p.Tq - 1u)];
    }
    workgroupBarrier();
    for (var t = 0u; t < QB; t++) {
      let i = i0 + t;
      var s = 0.0;
      var dp = 0.0;
      let o = t * D4;
      ${cols(DP, (c) => `s += dot(Qs[o + ${c}], kr[${c}]);\n      dp += dot(Gs[o + ${c}], vr[${c}]);`, "\n      ")}
      let sv = Ss[t];
      let vis = keyOk && i < p.Tq && (p.causal == 0u || j <= i + p.off);
      let pr = select(0.0, exp(s * p.scale - sv.x), vis);
      let ds = pr * (dp - sv.y);
      ${cols(DP, (c) => `dvr[${c}] = fma(vec4f(pr), Gs[o + ${c}], dvr[${c}]);\n      dkr[${c}] = fma(vec4f(ds), Qs[o + ${c}], dkr[${c}]);`, "\n      ")}
    }
    workgroupBarrier();
  }
  if (real) {
    ${cols(DP, (c) => `${store4("dk", "p.oskip + kb", c, `(dkr[${c}] * p.scale)`)}\n    ${store4("dv", "p.oskip2 + kb", c, `dvr[${c}]`)}`, "\n    ")}
  }
}`,
  }));

/** Pass 2: dq, one invocation per query. */
const dqKernel = (DP: number, KB: number) =>
  kernel("attentionBackward", `q${DP}x${KB}`, () => ({
    bindings: ["read", "read", "read", "read", "read", "read", "rw"],
    code: `${HEAD}
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;
const D4 = ${DP / 4}u;
const KB = ${KB}u;
var<workgroup> Ks: array<vec4f, ${KB * (DP / 4)}>;
var<workgroup> Vs: array<vec4f, ${KB * (DP / 4)}>;
var<workgroup> Ms: array<u32, ${KB}>;
@compute @workgroup_size(${WB}) fn main(${WG_ARGS}) {
  let wl = ${WG_INDEX};
  let w = min(wl, p.nwg - 1u);
  let hl = w / p.nrun;
  let qfirst = (w % p.nrun) * ${WB}u;
  let real = wl < p.nwg && qfirst + lid < p.Tq;
  let i = min(qfirst + lid, p.Tq - 1u);
  let row = hl * p.Tq + i;
  let b = (p.head0 + hl) / p.H;
  ${arrays(DP, ["qr", "gr", "dqr"])}
  ${cols(DP, (c) => `qr[${c}] = ${load4("q", "p.qskip + row * p.Dh", c, "true")};`)}
  ${cols(DP, (c) => `gr[${c}] = ${load4("g", "p.gskip + row * p.Dh", c, "true")};`)}
  ${cols(DP, (c) => `dqr[${c}] = vec4f(0.0);`)}
  let sv = st[p.sskip + row];
  let kEnd = select(p.Tk, min(p.Tk, min(qfirst + ${WB}u, p.Tq) + p.off), p.causal != 0u);
  for (var j0 = 0u; j0 < kEnd; j0 += KB) {
    for (var e = lid; e < KB * D4; e += ${WB}u) {
      let jj = j0 + e / D4;
      let rb = (hl * p.Tk + min(jj, p.Tk - 1u)) * p.Dh;
      Ks[e] = ${load4("k", "p.kskip + rb", "(e % D4)", "jj < p.Tk")};
      Vs[e] = ${load4("v", "p.vskip + rb", "(e % D4)", "jj < p.Tk")};
    }
    for (var t = lid; t < KB; t += ${WB}u) {
      let jj = min(j0 + t, p.Tk - 1u);
      Ms[t] = select(0u, select(1u, mask[b * p.Tk + jj], p.useMask != 0u), j0 + t < p.Tk);
    }
    workgroupBarrier();
    for (var t = 0u; t < KB; t++) {
      var s = 0.0;
      var dp = 0.0;
      let o = t * D4;
      ${cols(DP, (c) => `s += dot(qr[${c}], Ks[o + ${c}]);\n      dp += dot(gr[${c}], Vs[o + ${c}]);`, "\n      ")}
      let vis = Ms[t] != 0u && (p.causal == 0u || j0 + t <= i + p.off);
      let pr = select(0.0, exp(s * p.scale - sv.x), vis);
      let ds = pr * (dp - sv.y);
      ${cols(DP, (c) => `dqr[${c}] = fma(vec4f(ds), Ks[o + ${c}], dqr[${c}]);`, "\n      ")}
    }
    workgroupBarrier();
  }
  if (real) {
    ${cols(DP, (c) => store4("dq", "p.oskip + row * p.Dh", c, `(dqr[${c}] * p.scale)`), "\n    ")}
  }
}`,
  }));

/** Pass 0: stats[row] = (lse, Σ dOut·out). */
const statsKernel = () =>
  kernel("attentionBackward", "stats", () => ({
    bindings: ["read", "read", "read", "rw"],
    code: `
struct P { rows: u32, Dh: u32, oskip: u32, gskip: u32, lskip: u32, sskip: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> o: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read> lse: array<f32>;
@group(0) @binding(4) var<storage, read_write> st: array<vec2f>;
@compute @workgroup_size(64) fn main(${WG_ARGS}) {
  let r = ${WG_INDEX} * 64u + lid;
  if (r >= p.rows) { return; }
  var d = 0.0;
  for (var c = 0u; c < p.Dh; c++) { d = fma(o[p.oskip + r * p.Dh + c], g[p.gskip + r * p.Dh + c], d); }
  st[p.sskip + r] = vec2f(lse[p.lskip + r], d);
}`,
  }));

/** Gradients of attention(q, k, v, opts) given its out, lse and d loss / d out; see the header. */
export function attentionBackward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  lse: Tensor,
  dOut: Tensor,
  opts: AttentionOptions = {},
): { dq: Tensor; dk: Tensor; dv: Tensor } {
  const op = "attentionBackward";
  const named = [["q", q], ["k", k], ["v", v], ["out", out], ["lse", lse], ["dOut", dOut]] as const;
  for (const [name, t] of named) {
    expectLive(op, name, t);
    expectDType(op, name, t, "f32");
  }
  for (const [name, t] of named) if (name !== "lse") expectRank(op, name, t, 4);
  const shapes = `(q=${fmtShape(q.shape)}, k=${fmtShape(k.shape)}, v=${fmtShape(v.shape)})`;
  const [B, H, Tq, Dh] = q.shape as [number, number, number, number];
  const Tk = k.shape[2]!;
  if (Dh > MAX_HEAD_DIM) throw new ShapeError(`${op}: expected head dim Dh <= ${MAX_HEAD_DIM} for q, got ${Dh} ${shapes}`);
  const same = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);
  if (!same(k.shape, [B, H, Tk, Dh])) throw new ShapeError(`${op}: expected shape [${B}, ${H}, Tk, ${Dh}] for k, got ${fmtShape(k.shape)} ${shapes}`);
  for (const [name, t, want] of [["v", v, k.shape], ["out", out, q.shape], ["dOut", dOut, q.shape], ["lse", lse, [B, H, Tq]]] as const) {
    if (!same(t.shape, want)) throw new ShapeError(`${op}: expected shape ${fmtShape(want)} for ${name}, got ${fmtShape(t.shape)} ${shapes}`);
  }
  const { causal, mask } = checkMasking(op, opts, B, Tq, Tk, shapes);
  const scale = opts.scale ?? 1 / Math.sqrt(Dh);
  const { dp, qb } = tileOf(Dh);
  const kv = dkdvKernel(dp, qb);
  const kq = dqKernel(dp, qb);
  const ks = statsKernel();
  const dummy = mask ? undefined : alloc([1], "u32");
  const maskBinding = (mask ?? dummy)!.binding(op, "keyPaddingMask");
  const dq = alloc(q.shape, "f32");
  const dk = alloc(k.shape, "f32");
  const dv = alloc(v.shape, "f32");
  const stats = alloc([B * H * Tq * 2], "f32");
  const off = causal ? Tk - Tq : 0;
  forHeadChunks(op, B * H, Math.max(Tq, Tk, 2) * Dh, (h0, hc, bind) => {
    const [qB, qS] = bind(q, "q", Tq * Dh);
    const [kB, kS] = bind(k, "k", Tk * Dh);
    const [vB, vS] = bind(v, "v", Tk * Dh);
    const [gB, gS] = bind(dOut, "dOut", Tq * Dh);
    const [oB, oS] = bind(out, "out", Tq * Dh);
    const [lB, lS] = bind(lse, "lse", Tq);
    const [sB, sS] = bind(stats, "stats", Tq * 2);
    const rows = hc * Tq;
    run(ks, [oB, gB, lB, sB], [rows, Dh, oS, gS, lS, sS / 2], Math.ceil(rows / 64), 2 * rows * Dh);
    const [dkB, dkS] = bind(dk, "dk", Tk * Dh);
    const [dvB, dvS] = bind(dv, "dv", Tk * Dh);
    const nk = Math.ceil(Tk / WB);
    const common = (nrun: number, nwg: number) => [nrun, nwg, Tq, Tk, Dh, H, h0, causal ? 1 : 0, mask ? 1 : 0, off, qS, kS, vS, gS, sS / 2];
    const pairs = hc * Tq * Tk * (causal ? 0.5 : 1);
    run(kv, [qB, kB, vB, gB, sB, maskBinding, dkB, dvB], [...common(nk, hc * nk), dkS, dvS, f32(scale)], hc * nk, 8 * pairs * Dh);
    const [dqB, dqS] = bind(dq, "dq", Tq * Dh);
    const nq = Math.ceil(Tq / WB);
    run(kq, [qB, kB, vB, gB, sB, maskBinding, dqB], [...common(nq, hc * nq), dqS, 0, f32(scale)], hc * nq, 6 * pairs * Dh);
  });
  stats.dispose();
  dummy?.dispose();
  return { dq, dk, dv };
}

/** float64 reference: the analytic backward with the explicit [Tq, Tk] probabilities. */
export function attentionBackwardRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dOut: ArrayLike<number>,
  dims: { B: number; H: number; Tq: number; Tk: number; Dh: number },
  opts: { causal?: boolean; mask?: ArrayLike<number>; scale?: number } = {},
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { B, H, Tq, Tk, Dh } = dims;
  const scale = opts.scale ?? 1 / Math.sqrt(Dh);
  const dq = new Float64Array(B * H * Tq * Dh);
  const dk = new Float64Array(B * H * Tk * Dh);
  const dv = new Float64Array(B * H * Tk * Dh);
  const P = new Float64Array(Tk);
  const dP = new Float64Array(Tk);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const head = b * H + h;
      for (let i = 0; i < Tq; i++) {
        const qi = (head * Tq + i) * Dh;
        let m = -Infinity;
        for (let j = 0; j < Tk; j++) {
          const visible = (!opts.causal || j <= i + Tk - Tq) && (!opts.mask || opts.mask[b * Tk + j] !== 0);
          let d = 0;
          for (let c = 0; c < Dh; c++) d += q[qi + c]! * k[(head * Tk + j) * Dh + c]!;
          P[j] = visible ? d * scale : -Infinity;
          m = Math.max(m, P[j]!);
        }
        if (m === -Infinity) continue;
        let sum = 0;
        for (let j = 0; j < Tk; j++) sum += (P[j] = Math.exp(P[j]! - m));
        let D = 0;
        for (let j = 0; j < Tk; j++) {
          P[j] = P[j]! / sum;
          let d = 0;
          for (let c = 0; c < Dh; c++) d += dOut[qi + c]! * v[(head * Tk + j) * Dh + c]!;
          dP[j] = d;
          D += P[j]! * d;
        }
        for (let j = 0; j < Tk; j++) {
          const kj = (head * Tk + j) * Dh;
          const ds = P[j]! * (dP[j]! - D) * scale;
          for (let c = 0; c < Dh; c++) {
            dv[kj + c] = dv[kj + c]! + P[j]! * dOut[qi + c]!;
            dq[qi + c] = dq[qi + c]! + ds * k[kj + c]!;
            dk[kj + c] = dk[kj + c]! + ds * q[qi + c]!;
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}
