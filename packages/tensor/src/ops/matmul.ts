// matmul: C[..., M, N] = act(A[..., M, K] @ B[..., K, N] + bias[N]), batched with broadcasting.
// A is stored [..., K, M] when transA, B [..., N, K] when transB. Batch dims broadcast
// (NumPy rules; a 2-D operand is shared by every batch). f32 only.
//
// Variants (force with `variant`):
//   cpu  for software adapters, one dispatch per K slice of 64, bias + activation as one
//        elementwise pass afterwards; two kernels (matmulTuning.cpuKernel, "auto" picks):
//        matmul-tex.ts  A copied (or packed) into an rgba32float texture, 4 rows of C a lane,
//                       256-row tiles: large grids with A cheap to pack
//        matmul-cpu.ts  the tile kernel, A by per-lane storage loads, 64-row tiles: small
//                       GEMMs, A^T with few columns (N < 256), K past the texture limit
//        when N % 4 != 0 (and M >= 32) C is computed with rows padded to a multiple of 4
//        (vec4 stores) in a temporary, then copied into the output
//   gpu  matmul-gpu.ts  64x64 workgroup-memory tile, 256 invocations, 4x4 outputs each,
//                       fused epilogue; one pipeline (strides, bias, activation are uniforms)
// "auto" = cpu on a software adapter, else gpu. One `pnpm bench` run (lavapipe, Mesa 25.0.7,
// 2-core AVX-512, 512-bit lanes; mul+add probe 75 GFLOPS), tex vs tile kernel: 2048^3 18.3 vs
// 10.2 GFLOPS, 1600x768x3072 18.7 vs 9.6, its transA weight gradient 18.8 vs 10.2, LM head
// 1600x768x50257 transB 15.4 vs 10.2 (24-25% vs 13% of the probe). Why not more: the headers of
// matmul-tex.ts and matmul-cpu.ts; on a GPU the cpu variant would work but waste the device.
//
// Host side (this file): a batched A against a shared B (no transA) is one GEMM over all
// the batch's rows. Otherwise the output batch is cut into runs whose operand offsets advance by
// constant strides (one dispatch z-range each). Each run is cut into sub-GEMMs whose bound
// ranges of A, B and C each fit one storage binding (maxStorageBufferBindingSize) and whose
// grid fits 65535 workgroups per dimension: halve the batch count, then the operand's
// leading (row) dimension, then its contiguous one. When K is cut, the first K chunk writes
// C, later chunks add to it, and only the last applies bias and activation.
import { device } from "../device.js";
import { ReleasedError, ShapeError, fmtShape } from "../errors.js";
import { kernel, run, type Kernel } from "../kernel.js";
import type { BufferBinding } from "../recorder.js";
import { sizeOf } from "../shape.js";
import { alloc, type Tensor } from "../tensor.js";
import { ACTIVATION_WGSL, ACTIVATIONS, activationRef, type Activation } from "./activation.js";
import { TILE, cpuEpilogue, splitKSum, tileGemmWgsl, unpadRows, type TileOptions } from "./matmul-cpu.js";
import { GPU_TILE, gpuGemmWgsl } from "./matmul-gpu.js";
import { TEX_TILE, packA, texGemmSlice, texLimits } from "./matmul-tex.js";
import { expectDType, maxChunkElems } from "./util.js";

export type MatmulVariant = "auto" | "cpu" | "gpu";

/** Knobs for tests: `maxBindingElems` > 0 replaces the device's per-binding limit (in f32
 * elements) so the chunked paths can be exercised on small tensors. */
export const matmulTuning = {
  maxBindingElems: 0,
  /** cpu variant: a sub-GEMM with fewer workgroups than this per K slice and several slices runs split-K (0: never). */
  splitKWorkgroups: 256,
  /** cpu variant's kernel: "tex" (A through a texture, matmul-tex.ts), "tile" (matmul-cpu.ts, also the
   * fallback past the texture limits), "auto": tex where it is faster (large grids, A cheap to pack). */
  cpuKernel: "auto" as "auto" | "tex" | "tile",
  /** Texture rows the tex kernel may stack (0: the device's maxTextureDimension2D); tests lower it to exercise the row blocks. */
  maxTextureRows: 0,
};

/** Elements one operand binding may span: the device's limit, or the test knob. */
const bindingLimit = (): number => matmulTuning.maxBindingElems || maxChunkElems();

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  /** [N], added before the activation */
  bias?: Tensor;
  activation?: Activation;
  variant?: MatmulVariant;
}

interface Geometry {
  M: number;
  N: number;
  K: number;
  batch: number[];
  aBatch: number[];
  bBatch: number[];
}

function geometry(op: string, a: Tensor, b: Tensor, opts: MatmulOptions): Geometry {
  const shapes = `(a=${fmtShape(a.shape)}, b=${fmtShape(b.shape)}${opts.transA ? ", transA" : ""}${opts.transB ? ", transB" : ""})`;
  for (const [name, t] of [["a", a], ["b", b]] as const) {
    if (t.rank < 2) throw new ShapeError(`${op}: expected rank >= 2 for ${name}, got ${t.rank} ${shapes}`);
  }
  const [ar, ac] = a.shape.slice(-2) as [number, number];
  const [br, bc] = b.shape.slice(-2) as [number, number];
  const [M, K] = opts.transA ? [ac, ar] : [ar, ac];
  const [Kb, N] = opts.transB ? [bc, br] : [br, bc];
  if (K !== Kb) throw new ShapeError(`${op}: expected equal inner dimensions K for a and b, got ${K} and ${Kb} ${shapes}`);
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  const n = Math.max(aBatch.length, bBatch.length);
  const batch: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = aBatch[aBatch.length - n + i] ?? 1;
    const db = bBatch[bBatch.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new ShapeError(`${op}: expected broadcastable batch dimensions, got ${fmtShape(aBatch)} and ${fmtShape(bBatch)} ${shapes}`);
    batch.push(Math.max(da, db));
  }
  return { M, N, K, batch, aBatch: pad(aBatch, n), bBatch: pad(bBatch, n) };
}

const pad = (s: readonly number[], n: number): number[] => [...Array<number>(n - s.length).fill(1), ...s];

/** For each output batch index, the batch index into an operand of batch shape `s` (broadcast). */
function batchIndex(out: number[], s: number[], i: number): number {
  let idx = 0;
  let rest = i;
  let stride = 1;
  for (let d = out.length - 1; d >= 0; d--) {
    const pos = rest % out[d]!;
    rest = Math.floor(rest / out[d]!);
    if (s[d] !== 1) idx += pos * stride;
    stride *= s[d]!;
  }
  return idx;
}

interface Run {
  start: number;
  count: number;
  a0: number;
  sa: number;
  b0: number;
  sb: number;
}

/** Groups output batches into runs whose operand batch indices advance by constant steps. */
function batchRuns(batch: number[], aBatch: number[], bBatch: number[]): Run[] {
  const total = sizeOf(batch);
  const runs: Run[] = [];
  let i = 0;
  while (i < total) {
    const a0 = batchIndex(batch, aBatch, i);
    const b0 = batchIndex(batch, bBatch, i);
    let count = 1;
    let sa = 0;
    let sb = 0;
    if (i + 1 < total) {
      sa = batchIndex(batch, aBatch, i + 1) - a0;
      sb = batchIndex(batch, bBatch, i + 1) - b0;
      count = 2;
      while (i + count < total && batchIndex(batch, aBatch, i + count) === a0 + count * sa && batchIndex(batch, bBatch, i + count) === b0 + count * sb) count++;
    }
    runs.push({ start: i, count, a0, sa, b0, sb });
    i += count;
  }
  return runs;
}

export interface Chunking {
  bc: number;
  mc: number;
  nc: number;
  kc: number;
}

/**
 * Chunk sizes (batches, rows of C, columns of C, K) such that each operand's bound range
 * holds at most `limit` elements and the grid stays within `maxWg` per dimension.
 * Batch strides are in elements (0 for a shared operand).
 */
export function planChunks(
  g: { M: number; N: number; K: number; nb: number; sa: number; sb: number; transA: boolean; transB: boolean; ldc?: number },
  limit: number,
  tile: { tm: number; tn: number },
  maxWg: number,
): Chunking {
  const { M, N, K, transA, transB } = g;
  const ldc = g.ldc ?? N;
  const sc = M * ldc;
  const ch = { bc: Math.min(g.nb, maxWg), mc: Math.min(M, tile.tm * maxWg), nc: Math.min(N, tile.tn * maxWg), kc: K };
  const half = (x: number, t: number): number => {
    const h = Math.ceil(x / 2);
    return h > t ? Math.floor(h / t) * t : h;
  };
  type Dim = "mc" | "nc" | "kc";
  // [batch stride, row dim, row stride, col dim] for A, B, C
  const ops: [number, Dim, number, Dim][] = [
    transA ? [g.sa, "kc", M, "mc"] : [g.sa, "mc", K, "kc"],
    transB ? [g.sb, "nc", K, "kc"] : [g.sb, "kc", N, "nc"],
    [sc, "mc", ldc, "nc"],
  ];
  const tileOf = (d: Dim): number => (d === "mc" ? tile.tm : d === "nc" ? tile.tn : 64);
  for (;;) {
    let done = true;
    for (const [s, row, ld, col] of ops) {
      const span = (ch.bc - 1) * s + (ch[row] - 1) * ld + ch[col];
      if (span <= limit) continue;
      done = false;
      if (ch.bc > 1 && ((ch.bc - 1) * s >= span / 2 || ch[row] === 1)) ch.bc = Math.ceil(ch.bc / 2);
      else if (ch[row] > 1) ch[row] = half(ch[row], tileOf(row));
      else ch[col] = half(ch[col], tileOf(col));
      break;
    }
    if (done) return ch;
  }
}

/** Uniform block shared by the variants. Element (m, k) of A is at aOff + z*aBatch + m*sam +
 * k*sak; (k, n) of B at bOff + z*bBatch + k*sbk + n*sbn; (m, n) of C at cOff + z*cBatch +
 * m*ldc + n*scn. flags: 1 = add to C (a later K chunk); gpu variant only: 2 = epilogue (the
 * last K chunk), 4 = add bias. */
const gemmHeader = (aType = "f32", cType = "f32"): string => `
struct P { M: u32, N: u32, K: u32, sam: u32, sak: u32, sbk: u32, sbn: u32, ldc: u32,
           aOff: u32, bOff: u32, cOff: u32, aBatch: u32, bBatch: u32, cBatch: u32,
           biasOff: u32, flags: u32, act: u32, scn: u32, kEnd: u32, kStep: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> A: array<${aType}>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<${cType}>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
${ACTIVATION_WGSL}
fn activate(x: f32) -> f32 {
  switch p.act {
    ${ACTIVATIONS.map((a, i) => `case ${i}u: { return act_${a}(x); }`).join("\n    ")}
    default: { return x; }
  }
}`;

const BINDINGS = ["read", "read", "rw", "read"] as const;

const gpuKernel = (): Kernel => kernel("matmul", "gpu", () => ({ code: gpuGemmWgsl(gemmHeader()), bindings: BINDINGS }));
const cpuKernel = (o: TileOptions): Kernel =>
  kernel("matmul", `cpu:${o.vec4A ? "a4" : "a1"}${o.vec4C ? "c4" : "c1"}`, () => ({ code: tileGemmWgsl(o, gemmHeader), bindings: BINDINGS }));

/** One sub-GEMM in the kernels' terms (bindings cover exactly the ranges it touches). */
interface SubGemm {
  M: number;
  N: number;
  K: number;
  A: { binding: BufferBinding; skip: number };
  B: { binding: BufferBinding; skip: number };
  C: { binding: BufferBinding; skip: number };
  sam: number;
  sak: number;
  sbk: number;
  sbn: number;
  ldc: number;
  scn: number;
  aBatch: number;
  bBatch: number;
  cBatch: number;
  batches: number;
  biasOff: number;
  /** C rows are padded: columns up to the next multiple of 4 may be written */
  cPad: boolean;
  /** K chunk position: first (writes C) and last (epilogue) */
  first: boolean;
  last: boolean;
}

function dispatchGpu(s: SubGemm, bias: BufferBinding | undefined, act: number): void {
  const flags = (s.first ? 0 : 1) | (s.last ? 2 : 0) | (bias ? 4 : 0);
  const u = [s.M, s.N, s.K, s.sam, s.sak, s.sbk, s.sbn, s.ldc, s.A.skip, s.B.skip, s.C.skip, s.aBatch, s.bBatch, s.cBatch, s.biasOff, flags, act, s.scn, NO_SPLIT, 0];
  // without a bias, A stands in for the binding (never read: flag 4 is off)
  const wg: [number, number, number] = [Math.ceil(s.N / GPU_TILE.tn), Math.ceil(s.M / GPU_TILE.tm), s.batches];
  run(gpuKernel(), [s.A.binding, s.B.binding, s.C.binding, bias ?? s.A.binding], u, wg, 2 * s.batches * s.M * s.N * s.K);
}

/**
 * The cpu tile kernel, one dispatch per TILE.tk slice of K. Lanes run over rows of C, so when
 * M is small and N is not, the product is computed transposed (C^T = B^T A^T: lanes over N).
 * Bias and activation follow as one elementwise pass (cpuEpilogue()): fused into the unrolled
 * kernel they tripled its compile time.
 */
function dispatchCpu(s: SubGemm): void {
  const swap = s.M < TILE.wg / 2 && s.N > s.M;
  const t: SubGemm = swap
    ? { ...s, M: s.N, N: s.M, A: s.B, B: s.A, sam: s.sbn, sak: s.sbk, sbk: s.sak, sbn: s.sam, ldc: s.scn, scn: s.ldc, aBatch: s.bBatch, bBatch: s.aBatch }
    : s;
  const vec4C = t.scn === 1 && t.C.skip % 4 === 0 && t.ldc % 4 === 0 && t.cBatch % 4 === 0 && (t.N % 4 === 0 || t.cPad);
  const kind = matmulTuning.cpuKernel;
  if (kind !== "tile" && t.K <= texLimits().k && (kind === "tex" || texPays(t))) return dispatchTex(t, vec4C);
  const vec4A = t.sak === 1 && t.A.skip % 4 === 0 && t.sam % 4 === 0 && t.aBatch % 4 === 0;
  const wg: [number, number, number] = [Math.ceil(t.N / TILE.tn), Math.ceil(t.M / TILE.wg), t.batches];
  const slices = Math.ceil(t.K / TILE.tk);
  if (t.batches === 1 && slices > 1 && wg[0] * wg[1] < matmulTuning.splitKWorkgroups) {
    const split = splitKPlan(t.M, t.N, slices, wg[0] * wg[1]);
    if (split) return dispatchSplitK(t, split, vec4A);
  }
  const k = cpuKernel({ vec4A, vec4C });
  for (let k0 = 0; k0 < t.K; k0 += TILE.tk) {
    const kc = Math.min(TILE.tk, t.K - k0);
    const first = t.first && k0 === 0;
    const u = [t.M, t.N, kc, t.sam, t.sak, t.sbk, t.sbn, t.ldc, t.A.skip + k0 * t.sak, t.B.skip + k0 * t.sbk, t.C.skip, t.aBatch, t.bBatch, t.cBatch, 0, first ? 0 : 1, 0, t.scn, NO_SPLIT, 0];
    run(k, [t.A.binding, t.B.binding, t.C.binding, t.A.binding], u, wg, 2 * t.batches * t.M * t.N * kc);
  }
}

/**
 * The tex kernel (matmul-tex.ts): A packed into a texture once, then one dispatch per K slice.
 * Row blocks (and batch groups) keep the stacked rows within the texture's height; a grid too
 * small to occupy the adapter runs split-K as the tile kernel does.
 */
function dispatchTex(t: SubGemm, vec4C: boolean): void {
  const maxRows = matmulTuning.maxTextureRows || texLimits().rows;
  if (t.batches * t.M > maxRows) {
    if (t.batches > 1) {
      const per = Math.max(1, Math.floor(maxRows / t.M));
      for (let z0 = 0; z0 < t.batches; z0 += per) {
        const zc = Math.min(per, t.batches - z0);
        dispatchTex({ ...t, batches: zc, A: shift(t.A, z0 * t.aBatch), B: shift(t.B, z0 * t.bBatch), C: shift(t.C, z0 * t.cBatch) }, vec4C);
      }
      return;
    }
    const rows = Math.floor(maxRows / 256) * 256 || maxRows;
    for (let m0 = 0; m0 < t.M; m0 += rows) {
      dispatchTex({ ...t, M: Math.min(rows, t.M - m0), A: shift(t.A, m0 * t.sam), C: shift(t.C, m0 * t.ldc) }, vec4C);
    }
    return;
  }
  const { tk, tn, wg, rows } = TEX_TILE;
  const At = packA(t.A, t.M, t.K, t.sam, t.sak, t.aBatch, t.batches);
  const workgroups = Math.ceil(t.N / tn) * Math.ceil(t.M / (wg * rows));
  const slices = Math.ceil(t.K / tk);
  // (a workgroup here covers 4x the tile kernel's rows: the same occupancy at a quarter the count)
  if (t.batches === 1 && slices > 1 && workgroups < matmulTuning.splitKWorkgroups / 4) {
    const split = splitKPlan(t.M, t.N, slices, workgroups * 4);
    if (split) {
      return splitK(t, split, ({ k0, step, flags, P, S, ldp, cost }) => {
        const p = { M: t.M, N: t.N, K: tk, sbk: t.sbk, sbn: t.sbn, ldc: ldp, bOff: t.B.skip + k0 * t.sbk, cOff: 0, bBatch: step * t.sbk, cBatch: t.M * ldp };
        texGemmSlice(At, t.B.binding, P, { ...p, flags, scn: 1, kEnd: t.K - k0, kStep: step, tcol: k0 / 4, tcolZ: step / 4, trowZ: 0 }, true, S, cost);
      });
    }
  }
  for (let k0 = 0; k0 < t.K; k0 += tk) {
    const kc = Math.min(tk, t.K - k0);
    const p = { M: t.M, N: t.N, K: kc, sbk: t.sbk, sbn: t.sbn, ldc: t.ldc, bOff: t.B.skip + k0 * t.sbk, cOff: t.C.skip, bBatch: t.bBatch, cBatch: t.cBatch };
    const flags = t.first && k0 === 0 ? 0 : 1;
    texGemmSlice(At, t.B.binding, t.C.binding, { ...p, flags, scn: t.scn, kEnd: NO_SPLIT, kStep: 0, tcol: k0 / 4, tcolZ: 0, trowZ: t.M }, vec4C, t.batches, 2 * t.batches * t.M * t.N * kc);
  }
}

/** Below this many workgroups a K slice (small GEMMs: tiny's 480x64x192) the tile kernel is faster. */
const TEX_MIN_WORKGROUPS = 16;
/** A packed by a kernel (transposed, or K not a multiple of 64) costs ~M·K per-lane loads: worth it from N = 256 on (tiny's dW = dlogitsᵀ @ h, N = 64: pack 70 ms + 58 ms against 124 ms). */
const TEX_PACK_MIN_N = 256;
const needsPack = (t: SubGemm): boolean => !(t.sak === 1 && t.sam === t.K && t.K % TEX_TILE.tk === 0);
/** "auto": the grid fills the adapter (or a long K lets split-K fill it) and A is copied, or packed for enough columns. */
const texPays = (t: SubGemm): boolean =>
  (texGrid(t) >= TEX_MIN_WORKGROUPS || (t.batches === 1 && t.K >= 64 * TEX_TILE.tk)) && (t.N >= TEX_PACK_MIN_N || !needsPack(t));
const texGrid = (t: SubGemm): number => Math.ceil(t.N / TEX_TILE.tn) * Math.ceil(t.M / (TEX_TILE.wg * TEX_TILE.rows)) * t.batches;

const shift = (o: { binding: BufferBinding; skip: number }, by: number): { binding: BufferBinding; skip: number } => ({ binding: o.binding, skip: o.skip + by });

const NO_SPLIT = 0xffffffff;

/**
 * Split-K for a sub-GEMM whose grid is too small to occupy the adapter (few rows and columns,
 * long K: the LM head's dX = dlogits @ wte has K = 50257 and 8 workgroups a slice): S chunks of
 * r slices each run as the batch dimension of r dispatches into partial sums [S, M, ldp], then
 * one pass adds them into C. Null when one chunk would do, or the partials cannot fit a binding.
 */
function splitKPlan(M: number, N: number, slices: number, workgroups: number): SplitK | null {
  const ldp = Math.ceil(N / 4) * 4;
  const limit = bindingLimit();
  let r = Math.ceil(slices / Math.min(slices, Math.ceil(matmulTuning.splitKWorkgroups / workgroups)));
  while (Math.ceil(slices / r) * M * ldp > limit && r < slices) r++;
  const S = Math.ceil(slices / r);
  return S > 1 ? { S, r, ldp } : null;
}

function dispatchSplitK(t: SubGemm, split: SplitK, vec4A: boolean): void {
  const k = cpuKernel({ vec4A: vec4A && (split.r * TILE.tk * t.sak) % 4 === 0, vec4C: true });
  const wg: [number, number, number] = [Math.ceil(t.N / TILE.tn), Math.ceil(t.M / TILE.wg), split.S];
  splitK(t, split, ({ k0, step, flags, P, ldp, cost }) => {
    const u = [t.M, t.N, TILE.tk, t.sam, t.sak, t.sbk, t.sbn, ldp, t.A.skip + k0 * t.sak, t.B.skip + k0 * t.sbk, 0, step * t.sak, step * t.sbk, t.M * ldp, 0, flags, 0, 1, t.K - k0, step];
    run(k, [t.A.binding, t.B.binding, P, t.A.binding], u, wg, cost);
  });
}

type SplitK = { S: number; r: number; ldp: number };
type SplitKSlice = { k0: number; step: number; flags: number; P: BufferBinding; S: number; ldp: number; cost: number };

/**
 * Split-K's host loop, shared by both cpu kernels (both take K slices of 64): slice j of every
 * chunk z (K from z * step + j * 64) is one dispatch `slice` records into the partial sums P
 * [S, M, ldp] (flags 0 for the first slice, 1 to add); then one pass adds the chunks into C.
 */
function splitK(t: SubGemm, { S, r, ldp }: SplitK, slice: (s: SplitKSlice) => void): void {
  const tk = TILE.tk;
  const part = alloc([S, t.M, ldp], "f32");
  const P = part.binding("matmul", "partial");
  const step = r * tk;
  for (let j = 0; j < r; j++) {
    const k0 = j * tk;
    let kc = 0;
    for (let z = 0; z < S; z++) kc += Math.max(0, Math.min(tk, t.K - k0 - z * step));
    slice({ k0, step, flags: j === 0 ? 0 : 1, P, S, ldp, cost: 2 * t.M * t.N * kc });
  }
  splitKSum(part, S, t.M, t.N, ldp, t.C, t.ldc, t.scn, !t.first);
  part.dispose();
}

/** act(a @ b + bias), batched; see the file header for shapes and options. */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const op = "matmul";
  for (const [name, t] of [["a", a], ["b", b], ["bias", opts.bias]] as const) {
    if (t?.disposed) throw new ReleasedError(`${op}: expected a live tensor for ${name}, got one released by dispose() (a=${fmtShape(a.shape)}, b=${fmtShape(b.shape)})`);
  }
  expectDType(op, "a", a, "f32");
  expectDType(op, "b", b, "f32");
  const g = geometry(op, a, b, opts);
  const { M, N, K } = g;
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  const bias = opts.bias;
  if (bias) {
    expectDType(op, "bias", bias, "f32");
    if (bias.rank !== 1 || bias.shape[0] !== N) {
      throw new ShapeError(`${op}: expected shape [${N}] for bias, got ${fmtShape(bias.shape)} (a=${fmtShape(a.shape)}, b=${fmtShape(b.shape)})`);
    }
  }
  // A batched against a shared B (a Linear on [B, T, D]): one GEMM over the batch's rows,
  // not one small GEMM per batch (the decode step's LM head was 64 GEMMs of one row each)
  if (!transA && g.batch.length > 0 && sizeOf(g.batch) > 1 && g.bBatch.every((d) => d === 1)) {
    const a2 = a.reshape([sizeOf(g.batch) * M, K]);
    const b2 = b.rank === 2 ? b : b.reshape(b.shape.slice(-2));
    try {
      const out2 = matmul(a2, b2, opts);
      const out = out2.reshape([...g.batch, M, N]);
      out2.dispose();
      return out;
    } finally {
      a2.dispose();
      if (b2 !== b) b2.dispose();
    }
  }
  const dev = device();
  const variant = opts.variant === "cpu" || opts.variant === "gpu" ? opts.variant : dev.adapter.software ? "cpu" : "gpu";
  const fused = variant === "gpu";
  // grid rounding used for planning: the smallest tile edge of the variant
  const tile = variant === "cpu" ? { tm: TILE.tn, tn: TILE.tn } : GPU_TILE;
  const act = ACTIVATIONS.indexOf(opts.activation ?? "none");
  const out = alloc([...g.batch, M, N], "f32");
  // cpu variant with N % 4 != 0 (the LM head's 50257): compute into rows padded to a multiple
  // of 4 so that C is stored as vec4, then copy into out (see the header)
  const ldc = !fused && N % 4 !== 0 && M >= TILE.wg / 2 ? N + 4 - (N % 4) : N;
  const cOut = ldc === N ? out : alloc([...g.batch, M, ldc], "f32");
  const limit = bindingLimit();
  const maxWg = dev.limits.maxComputeWorkgroupsPerDimension;
  const biasBinding = fused ? bias?.binding(op, "bias") : undefined;
  const [sam, sak] = transA ? [1, M] : [K, 1];
  const [sbk, sbn] = transB ? [1, K] : [N, 1];
  for (const r of batchRuns(g.batch, g.aBatch, g.bBatch)) {
    const sa = r.sa * M * K;
    const sb = r.sb * K * N;
    // (3 elements of slack for the padded rows' last vec4)
    const ch = planChunks({ M, N, K, nb: r.count, sa, sb, transA, transB, ldc }, ldc === N ? limit : limit - 3, tile, maxWg);
    for (let b0 = 0; b0 < r.count; b0 += ch.bc) {
      const bc = Math.min(ch.bc, r.count - b0);
      for (let m0 = 0; m0 < M; m0 += ch.mc) {
        const mc = Math.min(ch.mc, M - m0);
        for (let n0 = 0; n0 < N; n0 += ch.nc) {
          const nc = Math.min(ch.nc, N - n0);
          for (let k0 = 0; k0 < K; k0 += ch.kc) {
            const kc = Math.min(ch.kc, K - k0);
            const aStart = (r.a0 + b0 * r.sa) * M * K + m0 * sam + k0 * sak;
            const bStart = (r.b0 + b0 * r.sb) * K * N + k0 * sbk + n0 * sbn;
            const cStart = (r.start + b0) * M * ldc + m0 * ldc + n0;
            const sub: SubGemm = {
                M: mc,
                N: nc,
                K: kc,
                A: a.rangeBinding(op, "a", aStart, (bc - 1) * sa + (mc - 1) * sam + (kc - 1) * sak + 1),
                B: b.rangeBinding(op, "b", bStart, (bc - 1) * sb + (kc - 1) * sbk + (nc - 1) * sbn + 1),
                // padded rows: the last vec4 store of a row may reach past nc (into the padding)
                C: cOut.rangeBinding(op, "out", cStart, (bc - 1) * M * ldc + (mc - 1) * ldc + (ldc === N ? nc : Math.min(Math.ceil(nc / 4) * 4, ldc - n0))),
                sam, sak, sbk, sbn, ldc, scn: 1,
                aBatch: sa, bBatch: sb, cBatch: M * ldc, batches: bc,
                cPad: ldc !== N,
                biasOff: n0,
                first: k0 === 0,
                last: k0 + kc >= K,
            };
            if (fused) dispatchGpu(sub, biasBinding, act);
            else dispatchCpu(sub);
          }
        }
      }
    }
  }
  if (cOut !== out) {
    unpadRows(cOut, out, N, ldc, limit);
    cOut.dispose();
  }
  if (!fused && (bias || act !== 0)) cpuEpilogue(out, N, bias, act);
  return out;
}

/** float64 reference: values row-major in the shapes given; returns the output's values. */
export function matmulRef(
  a: ArrayLike<number>,
  aShape: readonly number[],
  b: ArrayLike<number>,
  bShape: readonly number[],
  opts: { transA?: boolean; transB?: boolean; bias?: ArrayLike<number>; activation?: Activation } = {},
): Float64Array {
  const [ar, ac] = aShape.slice(-2) as [number, number];
  const [br, bc] = bShape.slice(-2) as [number, number];
  const [M, K] = opts.transA ? [ac, ar] : [ar, ac];
  const N = opts.transB ? br : bc;
  const n = Math.max(aShape.length, bShape.length) - 2;
  const aB = pad(aShape.slice(0, -2), n);
  const bB = pad(bShape.slice(0, -2), n);
  const batch = aB.map((d, i) => Math.max(d, bB[i]!));
  const nb = sizeOf(batch);
  const f = activationRef[opts.activation ?? "none"];
  const out = new Float64Array(nb * M * N);
  for (let z = 0; z < nb; z++) {
    const ao = batchIndex(batch, aB, z) * M * K;
    const bo = batchIndex(batch, bB, z) * K * N;
    for (let m = 0; m < M; m++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = a[ao + (opts.transA ? k * M + m : m * K + k)]!;
          const bv = b[bo + (opts.transB ? j * K + k : k * N + j)]!;
          s += av * bv;
        }
        out[(z * M + m) * N + j] = f(s + (opts.bias ? opts.bias[j]! : 0));
      }
    }
  }
  return out;
}
