// matmul "cpu" variant: a tile kernel for software adapters (lavapipe), one dispatch per
// K-chunk of TK, each adding its partial product to C (the last one applies the epilogue).
//
// Why this shape (measured on Mesa 25.0.7 lavapipe, AVX2): lavapipe runs a workgroup's
// invocations as SIMD lanes, and treats every value that comes from a loop counter, the
// workgroup id or a uniform buffer as divergent. A storage-buffer load at a divergent
// address is scalarised per lane (~10 instructions per element), and inside any loop or
// branch even a constant-address load of workgroup memory is. Only straight-line code
// reading workgroup memory at compile-time-constant addresses gets one `vbroadcastss`.
// So: the B tile is staged into workgroup memory, then a fully unrolled TK x TN block of
// multiply-adds reads it at constant addresses while each lane holds its own row of A in
// registers (lanes = rows of C). The per-lane parts (A row, C read/write, staging) are what
// remain expensive; TK = TN = 32 balances them against the compile time of the unrolled
// block (~6 s per pipeline on a cold Mesa shader cache; later runs hit the disk cache).
//
// Workgroup: WG = 64 lanes, lane l owns row m0 + l of the tile, columns n0 .. n0 + TN.
// Pass: stage B[k0.., n0..] (zero outside K, N) -> barrier -> a_k = A[row, k] (vec4 loads
// when rows are 16-byte aligned) -> per group of 8 columns: 8 x TK multiply-adds, then the
// group's stores (vec4 when C rows are aligned and N % 4 == 0). Dispatch [ceil(N/TN),
// ceil(M/WG), batches]. Host side (chunking, orientation): matmul.ts.

export const TILE = { wg: 64, tk: 32, tn: 32, group: 8 } as const;

export interface TileOptions {
  /** A rows contiguous along K and 16-byte aligned: load A as vec4. */
  vec4A: boolean;
  /** C rows contiguous and 16-byte aligned with N % 4 == 0: store C as vec4. */
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
      const comps = ["x", "y", "z", "w"].map((c, i) => `let a${4 * q + i} = select(0.0, v${q}.${c}, ${4 * q + i}u < p.K);`);
      L.push(`  ${comps.join(" ")}`);
    }
  } else {
    L.push(`  let ar = aBase + row * p.sam;`);
    for (const k of range(TK)) L.push(`  let a${k} = select(0.0, A[ar + min(${k}u, p.K - 1u) * p.sak], ${k}u < p.K);`);
  }
  for (let g = 0; g < TN; g += G) {
    for (const j of range(G)) L.push(`  var c${g + j} = 0.0;`);
    for (const k of range(TK)) for (const j of range(G)) L.push(`  c${g + j} = fma(a${k}, Bs[${k * TN + g + j}u], c${g + j});`);
    L.push(`  if (m0 + lid < p.M) {`);
    if (o.vec4C) {
      L.push(`    let ci = (cBase + (m0 + lid) * p.ldc + n0) / 4u;`);
      for (let j = g; j < g + G; j += 4) {
        L.push(`    if (n0 + ${j}u < p.N) { C[ci + ${j / 4}u] = out4(vec4f(c${j}, c${j + 1}, c${j + 2}, c${j + 3}), ci + ${j / 4}u, n0 + ${j}u); }`);
      }
    } else {
      L.push(`    let cr = cBase + (m0 + lid) * p.ldc;`);
      for (const j of range(G).map((i) => g + i)) {
        L.push(`    if (n0 + ${j}u < p.N) { let i = cr + (n0 + ${j}u) * p.scn; C[i] = out1(c${j}, i, m0 + lid, n0 + ${j}u); }`);
      }
    }
    L.push(`  }`);
  }
  const out = o.vec4C
    ? `fn out4(v: vec4f, i: u32, col: u32) -> vec4f {
  var x = v;
  if ((p.flags & 1u) != 0u) { x += C[i]; }
  if ((p.flags & 2u) != 0u) {
    if ((p.flags & 4u) != 0u) { x += vec4f(bias[p.biasOff + col], bias[p.biasOff + col + 1u], bias[p.biasOff + col + 2u], bias[p.biasOff + col + 3u]); }
    x = vec4f(activate(x.x), activate(x.y), activate(x.z), activate(x.w));
  }
  return x;
}`
    : `fn out1(v: f32, i: u32, row: u32, col: u32) -> f32 {
  var x = v;
  if ((p.flags & 1u) != 0u) { x += C[i]; }
  if ((p.flags & 2u) != 0u) {
    if ((p.flags & 4u) != 0u) { x += bias[p.biasOff + select(col, row, (p.flags & 8u) != 0u)]; }
    x = activate(x);
  }
  return x;
}`;
  return `${header(o.vec4A ? "vec4f" : "f32", o.vec4C ? "vec4f" : "f32")}
${out}
var<workgroup> Bs: array<f32, ${TK * TN}>;
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n0 = wid.x * ${TN}u;
  let m0 = wid.y * ${WG}u;
  let aBase = p.aOff + wid.z * p.aBatch;
  let bBase = p.bOff + wid.z * p.bBatch;
  let cBase = p.cOff + wid.z * p.cBatch;
  for (var e = lid; e < ${TK * TN}u; e += ${WG}u) {
    let kk = e / ${TN}u;
    let j = e % ${TN}u;
    let v = B[bBase + min(kk, p.K - 1u) * p.sbk + min(n0 + j, p.N - 1u) * p.sbn];
    Bs[e] = select(0.0, v, kk < p.K && n0 + j < p.N);
  }
  workgroupBarrier();
  let row = min(m0 + lid, p.M - 1u);
${L.join("\n")}
}`;
}
