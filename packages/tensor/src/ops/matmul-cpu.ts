// matmul "cpu" variant: a tile kernel for software adapters (lavapipe), one dispatch per
// K slice of TK, each adding its partial product to C; then, at the end of this file, the
// passes matmul.ts runs afterwards: copying padded C rows into the output (unpadRows) and
// bias + activation as one elementwise pass (cpuEpilogue).
//
// What lavapipe does with WGSL (Mesa 25.0.7, AVX2; read from GALLIVM_DEBUG=asm): a
// workgroup's invocations run as 8-wide SIMD lanes. Every value derived from a loop counter,
// the workgroup id or a uniform buffer is treated as divergent, and a storage-buffer access at
// a divergent address is done lane by lane (~10 instructions per element, ~40 per vec4, with
// branches); inside any loop or branch even a constant-address workgroup-memory load is. `fma`
// becomes mul + add, and a variable assigned in a loop is blended with the loop mask on every
// write. Only straight-line code reading workgroup memory at compile-time-constant addresses
// gets a single `vbroadcastss`. Hence: B's tile is staged into workgroup memory, each lane
// keeps its own row of A in registers (lanes = rows of C), and a fully unrolled TK x TN block
// of multiply-adds reads the tile at constant addresses (3 instructions per 8 lane-FMAs). What
// stays expensive is the per-lane work: the A row, reading and writing C once per K slice,
// staging. Per lane and slice, in instructions: multiply-adds 3*TK*TN/8, A ~10*TK, C ~20*TN
// (a vec4 read + write per 4 columns), staging ~10*TK*TN/WG. TK = 64, TN = 32 (C round trips
// halved against 32 x 32) measured, same process, old vs new on a loaded machine: 1600x768x3072
// +23%, 1600x3072x768 +29%, dlogits^T @ h (transA, 8192x1600x768) +66%, dlogits @ wte
// (1600x8192x768) +48%, h @ wte^T (1600x768x6145, with matmul.ts's padded C rows) +45%.
// Cold-cache compile (later processes hit Mesa's disk cache), a4c4 / a1c4 / a4c1 / a1c1:
// 32x32 1.9 / 3.7 / 5.2 / 5.0 s, 64x32 2.5 / 6.1 / 7.7 / 11.2 s, 96x32 11-20 s, 128x32 12-27 s
// (too slow). Tried and measured no better: 64 or 128 lanes, TK x TN of 48x24 / 64x16, K slices
// joined by barriers in one dispatch (compile time x4), LP_NATIVE_VECTOR_WIDTH=512, bias and
// activation fused into the stores (compile time x3).
//
// Workgroup: WG = 64 lanes, lane l owns row m0 + l of the tile, columns n0 .. n0 + TN.
// Pass: stage B[k0.., n0..] (zero outside K, N) -> barrier -> a_k = A[row, k] (vec4 loads
// when rows are 16-byte aligned) -> per group of 8 columns: 8 x TK multiply-adds, then the
// group's stores (vec4 when C rows are aligned and N % 4 == 0 or rows are padded; storing
// between groups also keeps each basic block small, which keeps LLVM's compile time linear).
// Dispatch [ceil(N/TN), ceil(M/WG), batches]. Host side (chunking, orientation): matmul.ts.

import { WG_ARGS, WG_INDEX, kernel, run, type Kernel } from "../kernel.js";
import type { BufferBinding } from "../recorder.js";
import type { Tensor } from "../tensor.js";
import { ACTIVATION_WGSL, ACTIVATIONS } from "./activation.js";
import { forChunks, maxChunkElems } from "./util.js";

export const TILE = { wg: 64, tk: 64, tn: 32, group: 8 } as const;

export interface TileOptions {
  /** A rows contiguous along K and 16-byte aligned: load A as vec4. */
  vec4A: boolean;
  /** C rows contiguous and 16-byte aligned with N % 4 == 0 (or padded past N): store C as vec4. */
  vec4C: boolean;
}

const range = (n: number): number[] => [...Array(n).keys()];

/** WGSL for the tile kernel. `header(aType, cType)` declares P, A, B, C, bias and `activate()`. */
export function tileGemmWgsl(o: TileOptions, header: (aType: string, cType: string) => string): string {
  const { wg: WG, tk: TK, tn: TN, group: G } = TILE;
  const L: string[] = [];
  if (o.vec4A) {
    L.push(`  let ar = (aBase + row * p.sam) / 4u;`);
    for (const q of range(TK / 4)) {
      L.push(`  let v${q} = A[ar + ${q}u];`);
      const comps = ["x", "y", "z", "w"].map((c, i) => `let a${4 * q + i} = select(0.0, v${q}.${c}, ${4 * q + i}u < K);`);
      L.push(`  ${comps.join(" ")}`);
    }
  } else {
    L.push(`  let ar = aBase + row * p.sam;`);
    for (const k of range(TK)) L.push(`  let a${k} = select(0.0, A[ar + min(${k}u, kLast) * p.sak], ${k}u < K);`);
  }
  for (let g = 0; g < TN; g += G) {
    for (const j of range(G)) L.push(`  var c${g + j} = 0.0;`);
    for (const k of range(TK)) for (const j of range(G)) L.push(`  c${g + j} = fma(a${k}, Bs[${k * TN + g + j}u], c${g + j});`);
    L.push(`  if (m0 + lid < p.M) {`);
    if (o.vec4C) {
      L.push(`    let ci = (cBase + (m0 + lid) * p.ldc + n0) / 4u;`);
      for (let j = g; j < g + G; j += 4) {
        L.push(`    if (n0 + ${j}u < p.N) { C[ci + ${j / 4}u] = out4(vec4f(c${j}, c${j + 1}, c${j + 2}, c${j + 3}), ci + ${j / 4}u); }`);
      }
    } else {
      L.push(`    let cr = cBase + (m0 + lid) * p.ldc;`);
      for (const j of range(G).map((i) => g + i)) {
        L.push(`    if (n0 + ${j}u < p.N) { let i = cr + (n0 + ${j}u) * p.scn; C[i] = out1(c${j}, i); }`);
      }
    }
    L.push(`  }`);
  }
  return `${header(o.vec4A ? "vec4f" : "f32", o.vec4C ? "vec4f" : "f32")}
${outWgsl(o.vec4C)}
var<workgroup> Bs: array<f32, ${TK * TN}>;
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n0 = wid.x * ${TN}u;
  let m0 = wid.y * ${WG}u;
  let aBase = p.aOff + wid.z * p.aBatch;
${stageBWgsl(TK, TN, WG)}
  let row = min(m0 + lid, p.M - 1u);
${L.join("\n")}
}`;
}

/** C's store: flag 1 adds to C (every K slice but the first); bias and activation run as a separate pass. */
export const outWgsl = (vec4C: boolean): string =>
  vec4C
    ? `fn out4(v: vec4f, i: u32) -> vec4f { return select(v, v + C[i], (p.flags & 1u) != 0u); }`
    : `fn out1(v: f32, i: u32) -> f32 { return select(v, v + C[i], (p.flags & 1u) != 0u); }`;

/** Stages B[k0.., n0..] (TK x TN, zero outside K and N) in workgroup memory `Bs`; defines bBase, cBase, K. */
export const stageBWgsl = (TK: number, TN: number, WG: number): string => `  let bBase = p.bOff + wid.z * p.bBatch;
  let cBase = p.cOff + wid.z * p.cBatch;
  // split-K: batch z is the K chunk starting z * kStep of kEnd (else kEnd = ~0, kStep = 0)
  let K = min(p.K, p.kEnd - min(p.kEnd, wid.z * p.kStep));
  let kLast = max(K, 1u) - 1u;
  for (var e = lid; e < ${TK * TN}u; e += ${WG}u) {
    let kk = e / ${TN}u;
    let j = e % ${TN}u;
    let v = B[bBase + min(kk, kLast) * p.sbk + min(n0 + j, p.N - 1u) * p.sbn];
    Bs[e] = select(0.0, v, kk < K && n0 + j < p.N);
  }
  workgroupBarrier();`;

// Host-side passes of the cpu variant (called by matmul.ts after the tile dispatches).

const epilogueKernel = (hasBias: boolean): Kernel =>
  kernel("matmul-epilogue", hasBias ? "bias" : "", () => ({
    bindings: hasBias ? (["rw", "read"] as const) : (["rw"] as const),
    code: `
struct P { n: u32, skip: u32, N: u32, col0: u32, act: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> C: array<f32>;
${hasBias ? "@group(0) @binding(2) var<storage, read> bias: array<f32>;" : ""}
${ACTIVATION_WGSL}
@compute @workgroup_size(256) fn main(${WG_ARGS}) {
  let base = (${WG_INDEX} * 256u + lid) * 4u;
  for (var j = 0u; j < 4u; j++) {
    let i = base + j;
    if (i >= p.n) { return; }
    var x = C[p.skip + i];
    ${hasBias ? "x += bias[(p.col0 + i) % p.N];" : ""}
    switch p.act {
      ${ACTIVATIONS.map((a, i) => `case ${i}u: { x = act_${a}(x); }`).join("\n      ")}
      default: {}
    }
    C[p.skip + i] = x;
  }
}`,
  }));

/** out = act(out + bias) in place, in chunks that fit one binding. */
export function cpuEpilogue(out: Tensor, N: number, bias: Tensor | undefined, act: number): void {
  const k = epilogueKernel(bias !== undefined);
  const b = bias?.binding("matmul", "bias");
  forChunks(out.size, maxChunkElems(), (start, count) => {
    const C = out.rangeBinding("matmul", "out", start, count);
    run(k, b ? [C.binding, b] : [C.binding], [count, C.skip, N, start % N, act], Math.ceil(count / 1024), 2 * count);
  });
}

const unpadKernel = (): Kernel =>
  kernel("matmul-unpad", "", () => ({
    bindings: ["read", "rw"] as const,
    code: `
struct P { n: u32, N: u32, ldc: u32, sskip: u32, dskip: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> S: array<f32>;
@group(0) @binding(2) var<storage, read_write> D: array<f32>;
@compute @workgroup_size(256) fn main(${WG_ARGS}) {
  let i = ${WG_INDEX} * 256u + lid;
  if (i >= p.n) { return; }
  D[p.dskip + i] = S[p.sskip + (i / p.N) * p.ldc + i % p.N];
}`,
  }));

const splitSumKernel = (): Kernel =>
  kernel("matmul-splitk-sum", "", () => ({
    bindings: ["read", "rw"] as const,
    code: `
struct P { M: u32, N: u32, S: u32, ldp: u32, ldc: u32, scn: u32, cOff: u32, add: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@compute @workgroup_size(256) fn main(${WG_ARGS}) {
  let i = ${WG_INDEX} * 256u + lid;
  if (i >= p.M * p.N) { return; }
  let m = i / p.N;
  let n = i % p.N;
  let slab = p.M * p.ldp;
  var s = 0.0;
  for (var z = 0u; z < p.S; z++) { s += part[z * slab + m * p.ldp + n]; }
  let c = p.cOff + m * p.ldc + n * p.scn;
  C[c] = select(s, C[c] + s, p.add != 0u);
}`,
  }));

/**
 * C (+)= Σ_z part[z] for the split-K path: part is [S, M, ldp] (rows of N padded to ldp), C's
 * element (m, n) at cOff + m * ldc + n * scn of the binding; add: keep C's value (a later K chunk).
 */
export function splitKSum(part: Tensor, S: number, M: number, N: number, ldp: number, C: { binding: BufferBinding; skip: number }, ldc: number, scn: number, add: boolean): void {
  run(splitSumKernel(), [part.binding("matmul", "partial"), C.binding], [M, N, S, ldp, ldc, scn, C.skip, add ? 1 : 0], Math.ceil((M * N) / 256), S * M * N);
}

/** dst[r, c] = src[r, c] for rows padded to `ldc` in src, `N` wide in dst; whole rows per chunk. */
export function unpadRows(src: Tensor, dst: Tensor, N: number, ldc: number, limit: number): void {
  const rows = dst.size / N;
  const per = Math.max(1, Math.floor(limit / ldc));
  for (let r0 = 0; r0 < rows; r0 += per) {
    const nr = Math.min(per, rows - r0);
    const S = src.rangeBinding("matmul", "out", r0 * ldc, (nr - 1) * ldc + N);
    const D = dst.rangeBinding("matmul", "out", r0 * N, nr * N);
    run(unpadKernel(), [S.binding, D.binding], [nr * N, N, ldc, S.skip, D.skip], Math.ceil((nr * N) / 256), (2 * nr * N));
  }
}
