// matmul "cpu" variant for software adapters (lavapipe): A read through a texture, 4 rows of C
// a lane. C (+)= A[M, K] @ B[K, N], one dispatch per K slice of TK = 64 (bias and activation
// follow as one elementwise pass, matmul-cpu.ts's cpuEpilogue).
//
// Passes: (1) pack: A (any strides, batched) -> rgba32float texture, texel (q, row) = A[row,
// 4q .. 4q+3], rows of every batch stacked, K zero-padded to a multiple of TK; (2) per K slice:
// stage B[k0.., n0..] (zero outside K, N) in workgroup memory -> barrier -> each lane loads
// its 4 rows' TK values of A as TK/4 texels per row -> per group of 8 columns, TK x 8 x 4
// multiply-adds reading the staged tile at constant addresses -> the group's stores.
// Workgroup: 64 lanes, lane l owns rows m0 + l + 64 i (i < 4) of the 256-row tile and columns
// n0 .. n0 + 32. Dispatch [ceil(N / 32), ceil(M / 256), batches or split-K chunks].
//
// Why (measured on lavapipe, Mesa 25.0.7, 512-bit lanes, 1024^3, one process, GFLOPS): the tile
// kernel of matmul-cpu.ts (A by per-lane storage loads, one row a lane) 10.0; the same with A
// through a texture 9.9; + 256 lanes 13.8; 4 rows a lane, 64 lanes (this kernel) 17.6 (2048^3
// 10.6 -> 16.1, 1600x768x3072 11.8 -> 18.4). Ablations of the old kernel at 1024^3: without A
// loads 13.8, without the C read 11.8, without B staging 11.6, without all three 39.1: per-lane
// loads cost more than the arithmetic. A storage load at a per-lane address compiles to a
// branch per lane and component (cmp, jae, masked vpbroadcastd: ~7 instructions a float a
// lane); a texel fetch is one call into the sampler per SIMD batch. Four rows a lane make one
// vbroadcastss of the staged B feed four mul+add pairs, and the 256-row tile makes staging
// 1/256 of a lane's loads. Tried, no better: B through a texture as well (13.2 at 256 lanes),
// K slices of 32 (9.3) or 128 (16.6, twice the compile time), 32 or 16 columns (12.4), 8 rows
// a lane (15.5), B from a uniform-buffer window per (K slice, column tile) dispatch (5.6 /
// 7.6 with texture A: uniform-buffer loads are scalar but hoisted and re-broadcast), B by
// uniform storage loads at addresses laundered through immediates (6.7: each carries a bounds
// check and a branch), a K loop in one dispatch with B handed out by subgroupBroadcast from
// texel loads (14.7-17.4 at 1024^3, 10.0 at 2048^3: every accumulator write in a loop is
// blended with the loop mask and the sampler call spills the accumulators; compiles in 15 ms).
import { device, type Device } from "../device.js";
import { WG_ARGS, WG_INDEX, grid, kernel, run, type Kernel } from "../kernel.js";
import type { BufferBinding, TextureBinding } from "../recorder.js";
import { alloc } from "../tensor.js";
import { outWgsl, stageBWgsl } from "./matmul-cpu.js";

export const TEX_TILE = { wg: 64, rows: 4, tk: 64, tn: 32, group: 8 } as const; // tk: the tile kernel's too (matmul.ts's split-K)

/** Texture limits: rows (stacked batches) and K (4 values a texel). */
export const texLimits = (dev: Device = device()): { rows: number; k: number } => ({
  rows: dev.limits.maxTextureDimension2D,
  k: dev.limits.maxTextureDimension2D * 4,
});

const range = (n: number): number[] => [...Array(n).keys()];

/** Uniforms of the tile kernel, in order. */
export interface TexGemmParams {
  M: number;
  N: number;
  K: number;
  sbk: number;
  sbn: number;
  ldc: number;
  bOff: number;
  cOff: number;
  bBatch: number;
  cBatch: number;
  /** 1: add to C (a later K slice) */
  flags: number;
  scn: number;
  /** split-K: chunk z covers K from z * kStep, clipped to kEnd (else kEnd = ~0, kStep = 0) */
  kEnd: number;
  kStep: number;
  /** texel column of this slice's first K value, and per z (split-K: kStep / 4) */
  tcol: number;
  tcolZ: number;
  /** texture row of row 0, per z (batches: rows a batch) */
  trowZ: number;
}

const PARAMS = "M N K sbk sbn ldc bOff cOff bBatch cBatch flags scn kEnd kStep tcol tcolZ trowZ".split(" ");

function texGemmWgsl(vec4C: boolean): string {
  const { wg: WG, rows: R, tk: TK, tn: TN, group: G } = TEX_TILE;
  const L: string[] = [];
  for (const i of range(R)) {
    L.push(`  let r${i} = m0 + lid + ${i * WG}u;`);
    L.push(`  let t${i} = trow + min(r${i}, p.M - 1u);`);
    for (const q of range(TK / 4)) L.push(`  let a${i}_${q} = textureLoad(At, vec2u(tcol + ${q}u, t${i}), 0);`);
  }
  const a = (i: number, k: number): string => `a${i}_${k >> 2}.${"xyzw"[k & 3]}`;
  for (let g = 0; g < TN; g += G) {
    for (const i of range(R)) L.push(`  ${range(G).map((j) => `var c${i}_${g + j} = 0.0;`).join(" ")}`);
    for (const k of range(TK)) {
      for (const j of range(G)) L.push(`  ${range(R).map((i) => `c${i}_${g + j} = fma(${a(i, k)}, Bs[${k * TN + g + j}u], c${i}_${g + j});`).join(" ")}`);
    }
    for (const i of range(R)) {
      L.push(`  if (r${i} < p.M) {`);
      if (vec4C) {
        L.push(`    let ci = (cBase + r${i} * p.ldc + n0) / 4u;`);
        for (let j = g; j < g + G; j += 4) {
          L.push(`    if (n0 + ${j}u < p.N) { C[ci + ${j / 4}u] = out4(vec4f(c${i}_${j}, c${i}_${j + 1}, c${i}_${j + 2}, c${i}_${j + 3}), ci + ${j / 4}u); }`);
        }
      } else {
        L.push(`    let cr = cBase + r${i} * p.ldc;`);
        for (const j of range(G).map((x) => g + x)) L.push(`    if (n0 + ${j}u < p.N) { let i = cr + (n0 + ${j}u) * p.scn; C[i] = out1(c${i}_${j}, i); }`);
      }
      L.push(`  }`);
    }
  }
  const cType = vec4C ? "vec4f" : "f32";
  return `
struct P { ${PARAMS.map((n) => `${n}: u32`).join(", ")} }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var At: texture_2d<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<${cType}>;
${outWgsl(vec4C)}
var<workgroup> Bs: array<f32, ${TK * TN}>;
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n0 = wid.x * ${TN}u;
  let m0 = wid.y * ${WG * R}u;
  let tcol = p.tcol + wid.z * p.tcolZ;
  let trow = wid.z * p.trowZ;
${stageBWgsl(TK, TN, WG)}
${L.join("\n")}
}`;
}

const gemmKernel = (vec4C: boolean): Kernel =>
  kernel("matmul", `tex:${vec4C ? "c4" : "c1"}`, () => ({ code: texGemmWgsl(vec4C), bindings: ["tex", "read", "rw"] as const }));

/** One K slice (or, with split-K, one slice of every chunk z). */
export function texGemmSlice(At: TextureBinding, B: BufferBinding, C: BufferBinding, p: TexGemmParams, vec4C: boolean, batches: number, cost: number): void {
  const u = PARAMS.map((n) => p[n as keyof TexGemmParams]);
  const wg: [number, number, number] = [Math.ceil(p.N / TEX_TILE.tn), Math.ceil(p.M / (TEX_TILE.wg * TEX_TILE.rows)), batches];
  run(gemmKernel(vec4C), [At, B, C], u, wg, cost);
}

// The pack writes texels into a buffer (rows padded to 256 bytes) that is then copied into the
// texture: lavapipe's textureStore ran at ~90 M floats/s, a buffer store and copy at several G.
// Lanes walk A's contiguous axis: texels along a row when A's rows are contiguous (sak = 1), else
// rows (A stored transposed): the 4 loads of a texel are then a stride apart, but neighbouring
// lanes read neighbouring addresses.
const packKernel = (rowsFast: boolean): Kernel =>
  kernel("matmul-pack", rowsFast ? "rows" : "texels", () => ({
    bindings: ["read", "rw"] as const,
    code: `
struct P { n: u32, M: u32, K: u32, sam: u32, sak: u32, aOff: u32, aBatch: u32, W: u32, pitch: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read_write> T: array<vec4f>;
@compute @workgroup_size(64) fn main(${WG_ARGS}) {
  let i = ${WG_INDEX} * 64u + lid;
  if (i >= p.n) { return; }
  let z = i / (p.M * p.W);
  ${rowsFast ? "let r = i % p.M; let q = (i / p.M) % p.W;" : "let r = (i / p.W) % p.M; let q = i % p.W;"}
  let base = p.aOff + z * p.aBatch + r * p.sam;
  let k = 4u * q;
  let kl = p.K - 1u;
  T[(z * p.M + r) * p.pitch + q] = vec4f(
    select(0.0, A[base + min(k, kl) * p.sak], k < p.K),
    select(0.0, A[base + min(k + 1u, kl) * p.sak], k + 1u < p.K),
    select(0.0, A[base + min(k + 2u, kl) * p.sak], k + 2u < p.K),
    select(0.0, A[base + min(k + 3u, kl) * p.sak], k + 3u < p.K));
}`,
  }));

/** Texels a row: K rounded up to the K slice, 4 values a texel. */
export const texWidth = (K: number): number => (Math.ceil(K / TEX_TILE.tk) * TEX_TILE.tk) / 4;

/**
 * Packs A (element (m, k) of batch z at skip + z * aBatch + m * sam + k * sak of `A`) into a
 * texture of at least `batches * M` rows and texWidth(K) texels: batch z's rows start at z * M.
 * Rows already laid out as texels (contiguous, K a multiple of 64, aligned) are copied as they are.
 */
export function packA(A: { binding: BufferBinding; skip: number }, M: number, K: number, sam: number, sak: number, aBatch: number, batches: number): TextureBinding {
  const W = texWidth(K);
  const rows = batches * M;
  const t = scratchTexture(W, rows);
  const rec = device().recorder;
  const offset = A.binding.offset + 4 * A.skip;
  if (sak === 1 && sam === K && K === 4 * W && (batches === 1 || aBatch === M * K) && offset % 16 === 0) {
    rec.copyToTexture(A.binding.buffer, offset, 4 * K, t.texture, W, rows);
    return t;
  }
  const pitch = Math.ceil(W / 16) * 16; // texels: 256-byte rows
  const staged = alloc([rows * pitch * 4], "f32");
  const n = rows * W;
  run(packKernel(sak !== 1), [A.binding, staged.binding("matmul", "packed")], [n, M, K, sam, sak, A.skip, aBatch, W, pitch], grid(Math.ceil(n / 64)), 4 * n);
  const b = staged.binding("matmul", "packed");
  rec.copyToTexture(b.buffer, b.offset, pitch * 16, t.texture, W, rows);
  staged.dispose();
  return t;
}

// Scratch textures, reused across calls (work runs in recording order, so a later pack into the
// same texture happens after the earlier slices have read it). Sizes are rounded up (rows to 256,
// width to 16 texels) so that shapes of one model share them. The oldest are destroyed (after
// submitting the work that may name them) past MAX_TEXTURES or MAX_BYTES in all.
const MAX_TEXTURES = 6;
const MAX_BYTES = 512 * 2 ** 20;
const scratch = new WeakMap<Device, Map<string, TextureBinding & { bytes: number }>>();

function scratchTexture(width: number, rows: number, dev: Device = device()): TextureBinding {
  const limit = dev.limits.maxTextureDimension2D;
  const size: [number, number] = [Math.min(Math.ceil(width / 16) * 16, limit), Math.min(Math.ceil(rows / 256) * 256, limit)];
  let m = scratch.get(dev);
  if (!m) scratch.set(dev, (m = new Map()));
  const key = `${size[0]}x${size[1]}`;
  const hit = m.get(key);
  if (hit) {
    m.delete(key);
    m.set(key, hit);
    return hit;
  }
  const bytes = size[0] * size[1] * 16;
  let total = bytes;
  for (const t of m.values()) total += t.bytes;
  if (m.size > 0 && (m.size >= MAX_TEXTURES || total > MAX_BYTES)) {
    dev.recorder.flush(); // recorded work may still name the textures about to go
    for (const [k, old] of m) {
      if (m.size < MAX_TEXTURES && total <= MAX_BYTES) break;
      m.delete(k);
      total -= old.bytes;
      dev.recorder.forget(old.texture);
      old.texture.destroy();
    }
  }
  const texture = dev.gpu.createTexture({ size, format: "rgba32float", usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST, label: `matmul-scratch ${key}` });
  const t = { texture, view: texture.createView(), bytes };
  m.set(key, t);
  return t;
}
