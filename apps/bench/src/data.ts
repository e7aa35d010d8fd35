// Inputs for the cases: seeded host values uploaded as tensors of any size.
import { type Tensor, alloc, device, tensor } from "@llms-eye/tensor";

/**
 * `tensor(data, shape)`, also for data above one storage binding (`tensor()` uploads through
 * a whole-tensor binding): those are written in binding-sized chunks.
 */
export function upload(data: Float32Array | Int32Array, shape: number[]): Tensor {
  const dtype = data instanceof Int32Array ? "i32" : "f32";
  const dev = device();
  if (data.byteLength <= dev.maxBinding) return tensor(data, shape, dtype);
  const t = alloc(shape, dtype, dev, true);
  const chunk = Math.floor(dev.maxBinding / 4) - dev.limits.minStorageBufferOffsetAlignment / 4;
  for (let start = 0; start < data.length; start += chunk) {
    const count = Math.min(chunk, data.length - start);
    const { binding, skip } = t.rangeBinding("upload", "data", start, count);
    dev.gpu.queue.writeBuffer(binding.buffer, binding.offset + 4 * skip, data.buffer, data.byteOffset + 4 * start, 4 * count);
  }
  return t;
}
