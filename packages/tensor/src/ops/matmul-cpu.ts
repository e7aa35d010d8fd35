// matmul "cpu" variant: register-blocked GEMM for software adapters (lavapipe), no
// workgroup memory and no barriers. lavapipe runs a workgroup's invocations as SIMD lanes:
// a load whose address is the same for every lane is one scalar load and a broadcast, a
// load that differs per lane is a gather (scalarised on CPUs without fast gathers). So a
// workgroup shares its R rows of A (uniform loads) and each lane owns C columns of B.
// Workgroup: WG invocations along N; tile R x (WG*C); lane l owns columns l + c*WG.
// Dispatch: [ceil(N / (WG*C)), ceil(M / R), batches]. Host side: matmul.ts.

export interface GemmKernelSpec {
  transA: boolean;
  transB: boolean;
}

export interface CpuConfig {
  /** rows of A per workgroup (uniform across lanes) */
  r: number;
  /** columns of B per lane */
  c: number;
  /** lanes per workgroup */
  wg: number;
}

export const CPU_CONFIG: CpuConfig = { r: 8, c: 1, wg: 64 };

export const cpuTile = (cfg: CpuConfig): { tm: number; tn: number } => ({ tm: cfg.r, tn: cfg.wg * cfg.c });

/** WGSL for the register-blocked kernel; `header` declares P, A, B, C (and bias) and `store()`. */
export function cpuGemmWgsl(spec: GemmKernelSpec, cfg: CpuConfig, header: string): string {
  const { transA, transB } = spec;
  const { r: R, c: C, wg: WG } = cfg;
  const rows = [...Array(R).keys()];
  const cols = [...Array(C).keys()];
  const lines: string[] = [];
  // per-row A offsets (uniform) and per-column B offsets (per lane), indices clamped in range
  for (const r of rows) lines.push(`  let a${r} = aBase + min(m0 + ${r}u, p.M - 1u) * p.sam;`);
  for (const c of cols) lines.push(`  let b${c} = bBase + min(n0 + lid + ${c * WG}u, p.N - 1u) * p.sbn;`);
  for (const r of rows) for (const c of cols) lines.push(`  var acc${r}_${c} = 0.0;`);
  const sa = "p.sak";
  const sb = "p.sbk";
  const body: string[] = [];
  for (const c of cols) body.push(`    let bv${c} = B[b${c} + k * ${sb}];`);
  for (const r of rows) {
    body.push(`    let av${r} = A[a${r} + k * ${sa}];`);
    for (const c of cols) body.push(`    acc${r}_${c} = fma(av${r}, bv${c}, acc${r}_${c});`);
  }
  const stores: string[] = [];
  for (const r of rows) {
    for (const c of cols) {
      stores.push(`  if (m0 + ${r}u < p.M && n0 + lid + ${c * WG}u < p.N) { store(cBase + (m0 + ${r}u) * p.ldc + n0 + lid + ${c * WG}u, n0 + lid + ${c * WG}u, acc${r}_${c}); }`);
    }
  }
  return `${header}
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let m0 = wid.y * ${R}u;
  let n0 = wid.x * ${WG * C}u;
  let aBase = p.aOff + wid.z * p.aBatch;
  let bBase = p.bOff + wid.z * p.bBatch;
  let cBase = p.cOff + wid.z * p.cBatch;
${lines.join("\n")}
  for (var k = 0u; k < p.K; k++) {
${body.join("\n")}
  }
${stores.join("\n")}
}`;
}
