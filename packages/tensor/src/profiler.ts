// Per-kernel GPU time from timestamp queries: while a profiler is attached to the recorder,
// every dispatch gets its own compute pass whose start and end are timestamped, and each
// submitted batch resolves its queries into a buffer read back by `report()`. Profiling
// changes what it measures (one pass per dispatch); use it to rank kernels, not to time a step.
import "./webgpu.js";

export interface KernelTime {
  /** Pipeline label: kernel name and its variant key. */
  kernel: string;
  calls: number;
  ms: number;
}

export class Profiler {
  private readonly querySet: GPUQuerySet;
  private labels: string[] = [];
  private pending: { resolved: GPUBuffer; staging: GPUBuffer; labels: string[] }[] = [];
  private totals = new Map<string, { calls: number; ns: number }>();

  constructor(
    private readonly gpu: GPUDevice,
    readonly capacity: number,
  ) {
    this.querySet = gpu.createQuerySet({ type: "timestamp", count: 2 * capacity });
  }

  get full(): boolean {
    return this.labels.length >= this.capacity;
  }

  /** Opens the timestamped pass for the next dispatch, labelled `label`. */
  beginPass(encoder: GPUCommandEncoder, label: string): GPUComputePassEncoder {
    const i = this.labels.length;
    this.labels.push(label);
    return encoder.beginComputePass({
      timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
    });
  }

  /** Records the resolve of this batch's queries into `encoder` (before it is finished). */
  resolve(encoder: GPUCommandEncoder): void {
    const n = this.labels.length;
    if (n === 0) return;
    const bytes = 2 * n * 8;
    const resolved = this.gpu.createBuffer({ size: bytes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const staging = this.gpu.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    encoder.resolveQuerySet(this.querySet, 0, 2 * n, resolved, 0);
    encoder.copyBufferToBuffer(resolved, 0, staging, 0, bytes);
    this.pending.push({ resolved, staging, labels: this.labels });
    this.labels = [];
  }

  /** Reads back every submitted batch and returns the totals per kernel, slowest first. */
  async report(): Promise<KernelTime[]> {
    for (const { resolved, staging, labels } of this.pending.splice(0)) {
      await staging.mapAsync(GPUMapMode.READ);
      const t = new BigUint64Array(staging.getMappedRange());
      labels.forEach((label, i) => {
        const ns = Number(t[2 * i + 1]! - t[2 * i]!);
        const e = this.totals.get(label) ?? { calls: 0, ns: 0 };
        e.calls++;
        e.ns += ns;
        this.totals.set(label, e);
      });
      staging.destroy();
      resolved.destroy();
    }
    return [...this.totals]
      .map(([kernel, { calls, ns }]) => ({ kernel, calls, ms: ns / 1e6 }))
      .sort((a, b) => b.ms - a.ms);
  }
}
