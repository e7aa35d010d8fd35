// permute / transpose: out = x with its axes reordered, out.shape[i] = x.shape[perm[i]]
// (rank ≤ 6 after merging axes that stay adjacent), as an explicit contiguous copy.
// A batched 2-D transpose ([B, R, C] -> [B, C, R] after merging) runs a block kernel: one
// invocation per 4x4 block (vec4 loads and stores when R and C are multiples of 4), 64
// invocations a workgroup, grid() over the blocks. Any other order runs stridedCopy (copy.ts,
// vec4 when the innermost axis stays contiguous). One pass either way; tensors above one
// binding go through stridedCopy's chunking.
import { ShapeError, fmtShape } from "../errors.js";
import { WG_ARGS, WG_INDEX, kernel, run } from "../kernel.js";
import { stridesOf } from "../shape.js";
import { alloc, type Tensor } from "../tensor.js";
import { clone, collapseStrided, stridedCopy, stridedCopyRef } from "./copy.js";
import { expectLive, maxChunkElems } from "./util.js";

// x [B, R, C] -> out [B, C, R]; one invocation per 4x4 block: vec4 rows in and out when R and
// C are multiples of 4, else guarded scalar loads.
const transposeKernel = (vec: boolean) =>
  kernel("transpose2d", vec ? "v4" : "s", () => {
    const T = vec ? "vec4<u32>" : "u32";
    const body = vec
      ? `
  let c4 = p.cols / 4u;
  let r4 = p.rows / 4u;
  let pin = b * p.rows * c4;
  let a0 = src[pin + (br * 4u + 0u) * c4 + bc];
  let a1 = src[pin + (br * 4u + 1u) * c4 + bc];
  let a2 = src[pin + (br * 4u + 2u) * c4 + bc];
  let a3 = src[pin + (br * 4u + 3u) * c4 + bc];
  let pout = b * p.cols * r4;
  dst[pout + (bc * 4u + 0u) * r4 + br] = vec4u(a0.x, a1.x, a2.x, a3.x);
  dst[pout + (bc * 4u + 1u) * r4 + br] = vec4u(a0.y, a1.y, a2.y, a3.y);
  dst[pout + (bc * 4u + 2u) * r4 + br] = vec4u(a0.z, a1.z, a2.z, a3.z);
  dst[pout + (bc * 4u + 3u) * r4 + br] = vec4u(a0.w, a1.w, a2.w, a3.w);`
      : `
  let plane = b * p.rows * p.cols;
  for (var i = 0u; i < 4u; i++) {
    let r = br * 4u + i;
    if (r >= p.rows) { break; }
    for (var j = 0u; j < 4u; j++) {
      let c = bc * 4u + j;
      if (c < p.cols) { dst[plane + c * p.rows + r] = src[plane + r * p.cols + c]; }
    }
  }`;
    return {
      bindings: ["read", "rw"],
      code: `
struct P { rows: u32, cols: u32, blocksR: u32, blocksC: u32, n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<${T}>;
@group(0) @binding(2) var<storage, read_write> dst: array<${T}>;
@compute @workgroup_size(64) fn main(${WG_ARGS}) {
  let t = ${WG_INDEX} * 64u + lid;
  if (t >= p.n) { return; }
  let per = p.blocksR * p.blocksC;
  let b = t / per;
  let rem = t - b * per;
  let br = rem / p.blocksC;
  let bc = rem - br * p.blocksC;${body}
}`,
    };
  });

/** Normalises and validates a permutation of `rank` axes (negative axes count from the end). */
function checkPerm(op: string, x: Tensor, perm: readonly number[]): number[] {
  const rank = x.rank;
  const bad = (): never => {
    throw new ShapeError(`${op}: expected a permutation of ${rank} axes for perm, got [${perm.join(", ")}] (x=${fmtShape(x.shape)})`);
  };
  if (perm.length !== rank) bad();
  const p = perm.map((a) => (Number.isInteger(a) && a >= -rank && a < rank ? (a < 0 ? a + rank : a) : bad()));
  if (new Set(p).size !== rank) bad();
  return p;
}

/** A contiguous copy of `x` with axes reordered: out.shape[i] = x.shape[perm[i]]. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  expectLive("permute", "x", x);
  const p = checkPerm("permute", x, perm);
  if (p.every((a, i) => a === i)) return clone(x);
  const xs = stridesOf(x.shape);
  const outShape = p.map((a) => x.shape[a]!);
  const strides = p.map((a) => xs[a]!);
  const c = collapseStrided(outShape, strides);
  const r = c.shape.length;
  const fits = x.size <= maxChunkElems();
  // batched 2-D transpose: out [B, C, R] from x [B, R, C]
  if (fits && (r === 2 || r === 3) && c.strides[r - 2] === 1 && c.strides[r - 1] === c.shape[r - 2]) {
    const batch = r === 3 ? c.shape[0]! : 1;
    if (r === 2 || c.strides[0] === c.shape[1]! * c.shape[2]!) return transposeBlocks(x, outShape, batch, c.shape[r - 1]!, c.shape[r - 2]!);
  }
  return stridedCopy("permute", x, outShape, 0, strides);
}

/** x viewed as [batch, rows, cols] -> out [batch, cols, rows], shaped `outShape`. */
function transposeBlocks(x: Tensor, outShape: number[], batch: number, rows: number, cols: number): Tensor {
  const out = alloc(outShape, x.dtype);
  const vec = rows % 4 === 0 && cols % 4 === 0;
  const blocksR = Math.ceil(rows / 4);
  const blocksC = Math.ceil(cols / 4);
  const n = batch * blocksR * blocksC;
  run(transposeKernel(vec), [x.binding("permute", "x"), out.binding("permute", "out")], [rows, cols, blocksR, blocksC, n], Math.ceil(n / 64), x.size);
  return out;
}

/** Swaps two axes (default: the last two). */
export function transpose(x: Tensor, dim0 = -2, dim1 = -1): Tensor {
  expectLive("transpose", "x", x);
  const rank = x.rank;
  const norm = (d: number): number => {
    if (!Number.isInteger(d) || d < -rank || d >= rank) {
      throw new ShapeError(`transpose: expected axes in [${-rank}, ${rank - 1}], got (${dim0}, ${dim1}) (x=${fmtShape(x.shape)})`);
    }
    return d < 0 ? d + rank : d;
  };
  const a = norm(dim0);
  const b = norm(dim1);
  const perm = Array.from({ length: rank }, (_, i) => (i === a ? b : i === b ? a : i));
  return permute(x, perm);
}

/** float64 reference of permute. */
export function permuteRef(x: ArrayLike<number>, shape: readonly number[], perm: readonly number[]): Float64Array {
  const xs = stridesOf(shape);
  const p = perm.map((a) => (a < 0 ? a + shape.length : a));
  return stridedCopyRef(x, p.map((a) => shape[a]!), 0, p.map((a) => xs[a]!));
}
