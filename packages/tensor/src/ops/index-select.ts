// indexSelect: gather along one axis, out[o, j, i] = x[o, index[j], i] with x viewed as
// [outer, D, inner] and index [n] (i32 or u32); out.shape = x.shape with axis size n.
// `gatherAxis` is the shared kernel (embedding.ts uses it for its token gather).
// Kernel: 256 invocations a workgroup, one output element (or vec4 when inner is a multiple of
// 4) each, grid() over the items (a one-workgroup-per-row variant measured no faster). Ids
// outside [0, D) call report() (IndexError on the next read back) and their output is zero;
// they are never read. Above one binding, x is split into
// row ranges of its [outer·D, inner] view and out into element chunks: each dispatch writes the
// outputs of its out chunk whose source row lies in its x range, the rest are skipped.
import { LimitError, ShapeError, fmtShape } from "../errors.js";
import { WG_ARGS, WG_INDEX, errorBinding, errorWgsl, kernel, run } from "../kernel.js";
import { registerKernelError } from "../recorder.js";
import { normAxis, sizeOf } from "../shape.js";
import { alloc, type Tensor } from "../tensor.js";
import { expectDType, expectLive, forChunks, maxChunkElems } from "./util.js";

export const INDEX_SELECT_ERROR = registerKernelError(301, (id, d) => `indexSelect: expected ids in [0, ${d}) for index, got ${id | 0}`);

const gatherKernel = (vec: boolean) =>
  kernel("gather", vec ? "v4" : "s", () => {
    const T = vec ? "vec4<u32>" : "u32";
    return {
      bindings: ["read", "read", "rw", "rw"],
      code: `
struct P { n: u32, outStart: u32, skipOut: u32, inner: u32, nids: u32, dim: u32, lo: u32, hi: u32,
  skipIn: u32, pad: u32, first: u32, code: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<${T}>;
@group(0) @binding(2) var<storage, read> ids: array<i32>;
@group(0) @binding(3) var<storage, read_write> dst: array<${T}>;
${errorWgsl(4)}
@compute @workgroup_size(256) fn main(${WG_ARGS}) {
  let i = ${WG_INDEX} * 256u + lid;
  if (i >= p.n) { return; }
  let g = p.outStart + i;
  let t = g / p.inner;
  let e = g - t * p.inner;
  let o = t / p.nids;
  let j = t - o * p.nids;
  let id = ids[j];
  if (id < 0 || u32(id) >= p.dim) {
    report(p.code, bitcast<u32>(id), p.dim);
    if (p.first == 1u) { dst[p.skipOut + i] = ${T}(0u); }
    return;
  }
  let row = o * p.dim + u32(id);
  if (row >= p.lo && row < p.hi) { dst[p.skipOut + i] = x[p.skipIn + (row - p.lo) * p.inner + e]; }
}`,
    };
  });

/**
 * out (shaped `outShape`, default x.shape with axis size ids.size) = x gathered along `axis`
 * at the ids in `ids` (any shape, read flat). Bad ids report `errorCode` (a registered code).
 */
export function gatherAxis(op: string, x: Tensor, axis: number, ids: Tensor, errorCode: number, outShape?: readonly number[]): Tensor {
  expectLive(op, "x", x);
  expectLive(op, "ids", ids);
  expectDType(op, "ids", ids, "i32", "u32");
  const ax = normAxis(op, axis, x.rank);
  const dim = x.shape[ax]!;
  const outer = sizeOf(x.shape.slice(0, ax));
  const inner = sizeOf(x.shape.slice(ax + 1));
  const shape = outShape ?? x.shape.map((d, i) => (i === ax ? ids.size : d));
  const chunk = maxChunkElems();
  if (inner > chunk) {
    throw new LimitError(`${op}: expected rows of at most ${chunk} elements for x, got ${inner} (x=${fmtShape(x.shape)}, maxStorageBufferBindingSize ${x.device.maxBinding})`);
  }
  const idsB = ids.binding(op, "ids");
  const out = alloc(shape, x.dtype);
  const vec = inner % 4 === 0;
  const w = vec ? 4 : 1;
  const k = gatherKernel(vec);
  const rows = outer * dim;
  const rowsPer = x.size <= chunk ? rows : Math.floor(chunk / inner);
  forChunks(out.size, chunk, (s, n) => {
    const o = out.rangeBinding(op, "out", s, n);
    for (let r0 = 0; r0 < rows; r0 += rowsPer) {
      const nr = Math.min(rowsPer, rows - r0);
      const xi = x.rangeBinding(op, "x", r0 * inner, nr * inner);
      const u = [n / w, s / w, o.skip / w, inner / w, ids.size, dim, r0, r0 + nr, xi.skip / w, 0, r0 === 0 ? 1 : 0, errorCode];
      run(k, [xi.binding, idsB, o.binding, errorBinding()], u, Math.ceil(n / w / 256), n);
    }
  });
  return out;
}

/** x gathered along `axis` at `index` ([n], i32): out.shape = x.shape with that axis of size n. */
export function indexSelect(x: Tensor, axis: number, index: Tensor): Tensor {
  expectLive("indexSelect", "index", index);
  if (index.rank !== 1) {
    throw new ShapeError(`indexSelect: expected rank 1 for index, got ${index.rank} (index=${fmtShape(index.shape)}, x=${fmtShape(x.shape)})`);
  }
  return gatherAxis("indexSelect", x, axis, index, INDEX_SELECT_ERROR);
}

/** float64 reference of indexSelect (throws on ids out of range). */
export function indexSelectRef(x: ArrayLike<number>, shape: readonly number[], axis: number, index: ArrayLike<number>): Float64Array {
  const ax = axis < 0 ? axis + shape.length : axis;
  const dim = shape[ax]!;
  const outer = sizeOf(shape.slice(0, ax));
  const inner = sizeOf(shape.slice(ax + 1));
  const n = index.length;
  const out = new Float64Array(outer * n * inner);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < n; j++) {
      const id = index[j]!;
      if (!(id >= 0 && id < dim)) throw new RangeError(`indexSelectRef: id ${id} outside [0, ${dim})`);
      for (let e = 0; e < inner; e++) out[(o * n + j) * inner + e] = x[(o * dim + id) * inner + e]!;
    }
  }
  return out;
}
