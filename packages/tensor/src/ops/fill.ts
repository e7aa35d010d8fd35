// fill: every element of a new tensor set to one value; zeros/ones/full build on it.
// Kernel: 256 invocations a workgroup, 4 elements each, grid() over ceil(n / 1024)
// workgroups; tensors above one binding are filled in chunks.
import type { DType } from "../dtype.js";
import { WG_ARGS, WG_INDEX, kernel, run } from "../kernel.js";
import { f32 } from "../recorder.js";
import type { Shape } from "../shape.js";
import { alloc, type Tensor } from "../tensor.js";
import { forChunks, maxChunkElems } from "./util.js";

const build = (dtype: DType) => ({
  bindings: ["rw"] as const,
  code: `
struct P { n: u32, skip: u32, value: ${dtype} }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<${dtype}>;
@compute @workgroup_size(256) fn main(${WG_ARGS}) {
  let base = (${WG_INDEX} * 256u + lid) * 4u;
  for (var j = 0u; j < 4u; j++) {
    let i = base + j;
    if (i < p.n) { out[p.skip + i] = p.value; }
  }
}`,
});

/** Sets every element of `t` to `value` in place (recorded, not waited on). */
export function fillInPlace(t: Tensor, value: number): Tensor {
  const k = kernel("fill", t.dtype, () => build(t.dtype));
  forChunks(t.size, maxChunkElems(), (start, count) => {
    const { binding, skip } = t.rangeBinding("fill", "out", start, count);
    run(k, [binding], [count, skip, t.dtype === "f32" ? f32(value) : value], Math.ceil(count / 1024), count);
  });
  return t;
}

export const full = (shape: Shape, value: number, dtype: DType = "f32"): Tensor => fillInPlace(alloc(shape, dtype), value);
export const zeros = (shape: Shape, dtype: DType = "f32"): Tensor => full(shape, 0, dtype);
export const ones = (shape: Shape, dtype: DType = "f32"): Tensor => full(shape, 1, dtype);

/** float64 reference. */
export const fillRef = (n: number, value: number): Float64Array => new Float64Array(n).fill(value);
