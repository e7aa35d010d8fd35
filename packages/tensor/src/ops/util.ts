// Helpers shared by op files: input checks and chunking of flat element ranges.
import { device } from "../device.js";
import type { DType } from "../dtype.js";
import { DTypeError, ReleasedError, ShapeError, fmtShape } from "../errors.js";
import type { Tensor } from "../tensor.js";

/** Throws unless `t` has one of `dtypes`. */
export function expectDType(op: string, name: string, t: Tensor, ...dtypes: DType[]): void {
  if (!dtypes.includes(t.dtype)) {
    throw new DTypeError(`${op}: expected dtype ${dtypes.join(" or ")} for ${name}, got ${t.dtype} (shape ${fmtShape(t.shape)})`);
  }
}

/** Throws unless `t` has rank `rank` (or one of several ranks). */
export function expectRank(op: string, name: string, t: Tensor, ...ranks: number[]): void {
  if (!ranks.includes(t.rank)) {
    throw new ShapeError(`${op}: expected rank ${ranks.join(" or ")} for ${name}, got ${t.rank} (shape ${fmtShape(t.shape)})`);
  }
}

/** Largest element count per chunk so one binding of it (plus alignment slack) fits the limit. */
export function maxChunkElems(): number {
  const dev = device();
  const align = dev.limits.minStorageBufferOffsetAlignment / 4;
  return Math.floor(dev.maxBinding / 4) - align;
}

/** Calls `fn(start, count)` over [0, total) in pieces of at most `chunk` elements. */
export function forChunks(total: number, chunk: number, fn: (start: number, count: number) => void): void {
  for (let start = 0; start < total; start += chunk) fn(start, Math.min(chunk, total - start));
}

/** Throws ReleasedError naming `op` when `t` was disposed. */
export function expectLive(op: string, name: string, t: Tensor): void {
  if (t.disposed) throw new ReleasedError(`${op}: expected a live tensor for ${name}, got one released by dispose() (shape ${fmtShape(t.shape)})`);
}
