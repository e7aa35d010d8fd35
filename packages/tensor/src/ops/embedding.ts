// embedding: the token-embedding gather, out[..., :] = weight[ids[...], :] with weight [V, D]
// f32 and ids i32 of any shape; out [...ids.shape, D].
// One pass of gatherAxis (index-select.ts) along axis 0: 256 invocations a workgroup, one
// output element (vec4 when D is a multiple of 4) each, grid() over the items. A table above
// one binding (GPT-2's wte, 50257x768 = 154 MB > 128 MiB) is split into row ranges that each
// fit one binding; each range's dispatch writes the outputs whose id falls in it. Ids outside
// [0, V) report an IndexError on the next read back (their rows are zero, never another row).
// embeddingBackward: dWeight [V, D] = Σ_j onehot(ids[j]) ⊗ gradOut[j, :], repeated ids summed
// (scatter-add) deterministically, without float atomics. Pass 1 (links): one invocation per
// token j scans the ids for the next token with the same id (next[j], or -1) and whether j is
// the first of its id: O(N²) id comparisons, no D factor (N = 512 tokens: 0.26 M). Pass 2:
// zero fill of dWeight. Pass 3 (sum): one invocation per (token j, column / vec4 of D); the
// first token of each id walks its chain in token order and writes the sum: every element is
// written once, in a fixed order, so the result is bit-for-bit reproducible. A table above
// one binding is written by row ranges (a dispatch each); gradOut must fit one binding.
import { LimitError, ShapeError, fmtShape } from "../errors.js";
import { WG_ARGS, WG_INDEX, kernel, run } from "../kernel.js";
import { registerKernelError } from "../recorder.js";
import { alloc, type Tensor } from "../tensor.js";
import { fillInPlace } from "./fill.js";
import { expectDType, expectLive, expectRank, maxChunkElems } from "./util.js";
import { gatherAxis } from "./index-select.js";

export const EMBEDDING_ERROR = registerKernelError(302, (id, v) => `embedding: expected ids in [0, ${v}) for ids, got ${id | 0}`);

/** Rows of `weight` [V, D] at `ids` (i32, any shape): [...ids.shape, D]. */
export function embedding(weight: Tensor, ids: Tensor): Tensor {
  expectLive("embedding", "weight", weight);
  expectLive("embedding", "ids", ids);
  expectRank("embedding", "weight", weight, 2);
  expectDType("embedding", "weight", weight, "f32");
  expectDType("embedding", "ids", ids, "i32");
  return gatherAxis("embedding", weight, 0, ids, EMBEDDING_ERROR, [...ids.shape, weight.shape[1]!]);
}

/** float64 reference of embedding (throws on ids out of range). */
export function embeddingRef(weight: ArrayLike<number>, shape: readonly [number, number], ids: ArrayLike<number>): Float64Array {
  const [v, d] = shape;
  const out = new Float64Array(ids.length * d);
  for (let j = 0; j < ids.length; j++) {
    const id = ids[j]!;
    if (!(id >= 0 && id < v)) throw new RangeError(`embeddingRef: id ${id} outside [0, ${v})`);
    for (let e = 0; e < d; e++) out[j * d + e] = weight[id * d + e]!;
  }
  return out;
}

const linksKernel = () =>
  kernel("embeddingBackwardLinks", "", () => ({
    bindings: ["read", "rw"],
    code: `
struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read_write> next: array<i32>;
@compute @workgroup_size(64) fn main(${WG_ARGS}) {
  let j = ${WG_INDEX} * 64u + lid;
  if (j >= p.n) { return; }
  let id = ids[j];
  var nx = -1;
  for (var k = j + 1u; k < p.n; k++) { if (ids[k] == id) { nx = i32(k); break; } }
  var first = true;
  for (var k = 0u; k < j; k++) { if (ids[k] == id) { first = false; break; } }
  // bit 30 marks the first token of its id; the low bits hold next + 1 (0: none)
  next[j] = (nx + 1) | select(0, 1 << 30u, first);
}`,
  }));

const sumKernel = (vec: boolean) =>
  kernel("embeddingBackwardSum", vec ? "v4" : "s", () => {
    const T = vec ? "vec4f" : "f32";
    return {
      bindings: ["read", "read", "read", "rw"],
      code: `
struct P { items: u32, cols: u32, lo: u32, hi: u32, skip: u32, V: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> g: array<${T}>;
@group(0) @binding(2) var<storage, read> ids: array<i32>;
@group(0) @binding(3) var<storage, read> next: array<i32>;
@group(0) @binding(4) var<storage, read_write> dw: array<${T}>;
@compute @workgroup_size(256) fn main(${WG_ARGS}) {
  let i = ${WG_INDEX} * 256u + lid;
  if (i >= p.items) { return; }
  let j = i / p.cols;
  let c = i - j * p.cols;
  let l = next[j];
  let id = ids[j];
  if ((l & (1 << 30u)) == 0 || id < 0 || u32(id) >= p.V || u32(id) < p.lo || u32(id) >= p.hi) { return; }
  var acc = g[i];
  var k = (l & 0x3fffffff) - 1;
  while (k >= 0) {
    acc += g[u32(k) * p.cols + c];
    k = (next[k] & 0x3fffffff) - 1;
  }
  dw[p.skip + (u32(id) - p.lo) * p.cols + c] = acc;
}`,
    };
  });

/**
 * Gradient of embedding w.r.t. the table: gradOut [...ids.shape, D] scattered into [V, D],
 * repeated ids summed in token order (deterministic). Ids out of range are skipped (the
 * forward reports them).
 */
export function embeddingBackward(gradOut: Tensor, ids: Tensor, V: number): Tensor {
  const op = "embeddingBackward";
  expectLive(op, "gradOut", gradOut);
  expectLive(op, "ids", ids);
  expectDType(op, "gradOut", gradOut, "f32");
  expectDType(op, "ids", ids, "i32", "u32"); // u32 ids >= 2^31 read as negative: skipped
  const D = gradOut.shape[gradOut.rank - 1] ?? 0;
  const N = ids.size;
  if (gradOut.rank !== ids.rank + 1 || ids.shape.some((d, i) => d !== gradOut.shape[i])) {
    throw new ShapeError(`${op}: expected shape [${[...ids.shape, "D"].join(", ")}] for gradOut, got ${fmtShape(gradOut.shape)} (ids=${fmtShape(ids.shape)})`);
  }
  if (!Number.isInteger(V) || V < 1 || V >= 2 ** 30) throw new ShapeError(`${op}: expected an integer in [1, 2^30) for V, got ${V}`);
  if (N >= 2 ** 30) throw new LimitError(`${op}: expected fewer than 2^30 ids, got ${N}`);
  const gb = gradOut.binding(op, "gradOut"); // LimitError above one binding (see header)
  const ib = ids.binding(op, "ids");
  const links = alloc([N], "i32");
  run(linksKernel(), [ib, links.binding(op, "links")], [N], Math.ceil(N / 64), N * N);
  const dw = fillInPlace(alloc([V, D], "f32"), 0);
  const vec = D % 4 === 0;
  const w = vec ? 4 : 1;
  const cols = D / w;
  const k = sumKernel(vec);
  const lb = links.binding(op, "links");
  const rowsPer = Math.floor(maxChunkElems() / D);
  if (rowsPer < 1) throw new LimitError(`${op}: expected rows of at most ${maxChunkElems()} elements, got ${D} (V=${V})`);
  for (let lo = 0; lo < V; lo += rowsPer) {
    const hi = Math.min(V, lo + rowsPer);
    const o = dw.rangeBinding(op, "dWeight", lo * D, (hi - lo) * D);
    run(k, [gb, ib, lb, o.binding], [N * cols, cols, lo, hi, o.skip / w, V], Math.ceil((N * cols) / 256), N * D);
  }
  links.dispose();
  return dw;
}

/** float64 reference of embeddingBackward: [V, D] with repeated ids summed. */
export function embeddingBackwardRef(gradOut: ArrayLike<number>, ids: ArrayLike<number>, V: number, D: number): Float64Array {
  const out = new Float64Array(V * D);
  for (let j = 0; j < ids.length; j++) {
    const id = ids[j]!;
    if (!(id >= 0 && id < V)) throw new RangeError(`embeddingBackwardRef: id ${id} outside [0, ${V})`);
    for (let e = 0; e < D; e++) out[id * D + e] = out[id * D + e]! + gradOut[j * D + e]!;
  }
  return out;
}
