// matmul "gpu" variant: the classic shared-memory tiled GEMM for hardware GPUs.
// One workgroup computes a TM x TN tile of C (64x64), 256 invocations as 16x16, each a 4x4
// block of outputs. K advances in steps of TK = 16: every invocation loads 4 elements of A
// and 4 of B into workgroup memory (zero outside the matrix), a barrier, 16 rank-1 updates
// from registers, a barrier. Operand strides, bias and activation are uniforms: one pipeline.
// Dispatch: [ceil(N / TN), ceil(M / TM), batches]. Host side (chunking, epilogue): matmul.ts.

export const GPU_TILE = { tm: 64, tn: 64 } as const;

const TK = 16;

/** WGSL for the tiled kernel; `header` declares P, A, B, C, bias and `activate()`. */
export function gpuGemmWgsl(header: string): string {
  return `${header}
fn store(i: u32, col: u32, v: f32) {
  var x = v;
  if ((p.flags & 1u) != 0u) { x += C[i]; }
  if ((p.flags & 2u) != 0u) {
    if ((p.flags & 4u) != 0u) { x += bias[p.biasOff + col]; }
    x = activate(x);
  }
  C[i] = x;
}
var<workgroup> As: array<array<f32, 64>, ${TK}>;
var<workgroup> Bs: array<array<f32, 64>, ${TK}>;

fn loadA(base: u32, row: u32, k: u32) -> f32 {
  if (row >= p.M || k >= p.K) { return 0.0; }
  return A[base + row * p.sam + k * p.sak];
}
fn loadB(base: u32, k: u32, col: u32) -> f32 {
  if (col >= p.N || k >= p.K) { return 0.0; }
  return B[base + k * p.sbk + col * p.sbn];
}

@compute @workgroup_size(256) fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let tx = lid % 16u;
  let ty = lid / 16u;
  let m0 = wid.y * 64u;
  let n0 = wid.x * 64u;
  let aBase = p.aOff + wid.z * p.aBatch;
  let bBase = p.bOff + wid.z * p.bBatch;
  var acc: array<array<f32, 4>, 4>;
  // loader roles: 256 invocations x 4 elements = one 16x64 slice of A and of B
  let lk = lid / 16u;        // 0..15 along k
  let lc = (lid % 16u) * 4u; // 0..60 along m / n
  for (var k0 = 0u; k0 < p.K; k0 += ${TK}u) {
    for (var j = 0u; j < 4u; j++) {
      As[lk][lc + j] = loadA(aBase, m0 + lc + j, k0 + lk);
      Bs[lk][lc + j] = loadB(bBase, k0 + lk, n0 + lc + j);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${TK}u; kk++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) { a[i] = As[kk][ty * 4u + i]; b[i] = Bs[kk][tx * 4u + i]; }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }
  let cBase = p.cOff + wid.z * p.cBatch;
  for (var i = 0u; i < 4u; i++) {
    let row = m0 + ty * 4u + i;
    if (row >= p.M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let col = n0 + tx * 4u + j;
      if (col < p.N) { store(cBase + row * p.ldc + col, col, acc[i][j]); }
    }
  }
}`;
}
