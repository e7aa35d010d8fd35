// embedding: the token-embedding gather, out[..., :] = weight[ids[...], :] with weight [V, D]
// f32 and ids i32 of any shape; out [...ids.shape, D].
// One pass of gatherAxis (index-select.ts) along axis 0: 256 invocations a workgroup, one
// output element (vec4 when D is a multiple of 4) each, grid() over the items. A table above
// one binding (GPT-2's wte, 50257x768 = 154 MB > 128 MiB) is split into row ranges that each
// fit one binding; each range's dispatch writes the outputs whose id falls in it. Ids outside
// [0, V) report an IndexError on the next read back (their rows are zero, never another row).
import { registerKernelError } from "../recorder.js";
import type { Tensor } from "../tensor.js";
import { expectDType, expectLive, expectRank } from "./util.js";
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
