// A size-bucketed GPU buffer pool.
//
// Buckets: powers of two up to 1 MiB, then 8 steps per octave (at most 12.5% slack).
// A released buffer goes back to its bucket at once; a bucket hands out its lowest-id idle
// buffer, so a loop that allocates the same shapes each step gets the same buffers each
// step whatever order the last one released them in — and the recorder's cached bind
// groups hit instead of growing without bound (new bind groups every step cost CPU time
// and native memory that only V8's garbage collector gives back). Reusing it for a later op is safe:
// the queue runs work in recording order, so the next writer runs after every earlier
// reader. The one exception is a CPU upload (queue.writeBuffer), which the queue runs
// before commands still being recorded: uploads therefore never take a buffer released
// in the batch being recorded. Idle buffers are destroyed only right after a submit, when
// no unsubmitted command can name them; Dawn frees the memory once submitted work ends.
import "./webgpu.js";
import type { Device } from "./device.js";
import { LimitError } from "./errors.js";

export interface PooledBuffer {
  readonly buffer: GPUBuffer;
  readonly bytes: number;
  readonly id: number;
  /** Recorder batch in which it was last released (-1: never). */
  releasedBatch: number;
}

const USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

export function bucketBytes(bytes: number): number {
  const min = 256;
  if (bytes <= min) return min;
  const p = 2 ** Math.ceil(Math.log2(bytes));
  if (p <= 1 << 20) return p;
  const step = p / 16; // 8 steps between p/2 and p
  return Math.ceil(bytes / step) * step;
}

export class BufferPool {
  /** Idle bytes kept after a submit; above it idle buffers are destroyed, highest ids first. */
  maxIdleBytes = 1 << 30;
  private idle = new Map<number, PooledBuffer[]>();
  private idleBytes = 0;
  private idleCount = 0;
  private live = 0;
  private liveBytes = 0;
  private nextId = 1;

  constructor(private readonly dev: Device) {}

  acquire(bytes: number, forUpload = false): PooledBuffer {
    const size = bucketBytes(bytes);
    const max = this.dev.limits.maxBufferSize;
    if (size > max) {
      throw new LimitError(`alloc: expected at most ${max} bytes (maxBufferSize) for a tensor, got ${bytes} bytes`);
    }
    const list = this.idle.get(size);
    let found: PooledBuffer | undefined;
    if (list && list.length > 0) {
      const batch = this.dev.recorder.openBatch;
      // the list is sorted by descending id: the lowest id is last
      const i = forUpload ? findLastIndex(list, (b) => b.releasedBatch !== batch) : list.length - 1;
      if (i >= 0) found = list.splice(i, 1)[0];
    }
    if (found) {
      this.idleBytes -= size;
      this.idleCount--;
    } else {
      found = { buffer: this.dev.gpu.createBuffer({ size, usage: USAGE }), bytes: size, id: this.nextId++, releasedBatch: -1 };
    }
    this.live++;
    this.liveBytes += size;
    return found;
  }

  release(b: PooledBuffer): void {
    this.live--;
    this.liveBytes -= b.bytes;
    b.releasedBatch = this.dev.recorder.openBatch;
    let list = this.idle.get(b.bytes);
    if (!list) this.idle.set(b.bytes, (list = []));
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.id > b.id) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, b);
    this.idleBytes += b.bytes;
    this.idleCount++;
  }

  /** Destroys idle buffers above `keepBytes`; called by the recorder right after a submit. */
  trim(keepBytes = this.maxIdleBytes): void {
    if (this.idleBytes <= keepBytes) return;
    const sizes = [...this.idle.keys()].sort((a, b) => b - a);
    for (const size of sizes) {
      const list = this.idle.get(size)!;
      while (list.length > 0 && this.idleBytes > keepBytes) {
        const b = list.shift()!; // highest id first: the newest buffers go
        this.dev.recorder.forget(b.buffer);
        b.buffer.destroy();
        this.idleBytes -= size;
        this.idleCount--;
      }
      if (list.length === 0) this.idle.delete(size);
    }
  }

  stats(): { liveBuffers: number; liveBytes: number; pooledBuffers: number; pooledBytes: number } {
    return { liveBuffers: this.live, liveBytes: this.liveBytes, pooledBuffers: this.idleCount, pooledBytes: this.idleBytes };
  }
}

function findLastIndex<T>(list: readonly T[], pred: (x: T) => boolean): number {
  for (let i = list.length - 1; i >= 0; i--) if (pred(list[i]!)) return i;
  return -1;
}
