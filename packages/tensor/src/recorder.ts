// Records dispatches into one command encoder (inside one open compute pass) and submits
// them in batches: when a value is read back, when the batch's uniform slots run out, or
// when it grows past `maxDispatches`. Nothing waits on the GPU except a read back.
//
// Waiting: Dawn's promises busy-poll a CPU core, which a software adapter (lavapipe)
// computes on. So before mapping a read-back buffer the recorder sleeps through most of
// the expected GPU time, estimated from the work recorded and the rate measured on earlier
// waits. A dispatch's work is the larger of its stated cost (flops) and BYTE_COST per byte
// it binds, so memory-bound and compute-bound work share one rate. When the wait ends at
// once after the sleep, the sleep overshot and the rate is raised; otherwise it follows
// the measured one.
import "./webgpu.js";
import type { Device } from "./device.js";
import { DeviceError, IndexError, LimitError } from "./errors.js";

export interface BufferBinding {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

/** A float uniform: `f32(0.5)`; plain numbers are written as u32 (or i32 when negative). */
export class F32 {
  constructor(readonly value: number) {}
}
export const f32 = (v: number): F32 => new F32(v);
export type Uniform = number | F32;

const SLOT = 256;
const SLOTS = 1024;
const ERROR_WORDS = 4;
/** Flop-equivalents per bound byte (lavapipe streams ~3 GB/s while its GEMMs reach ~60 GFLOPS). */
const BYTE_COST = 16;

/** Messages for the codes that kernels write to the error buffer: (code, a, b) -> text. */
const errorMessages = new Map<number, (a: number, b: number) => string>();
export function registerKernelError(code: number, message: (a: number, b: number) => string): number {
  errorMessages.set(code, message);
  return code;
}

export class Recorder {
  /** Submit after this many dispatches even if nothing is read back. */
  maxDispatches = 512;
  submits = 0;
  dispatches = 0;
  /** Id of the batch being recorded; increments at each submit. */
  openBatch = 0;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private inBatch = 0;
  private slot = 0;
  private readonly uniformData = new ArrayBuffer(SLOT * SLOTS);
  private readonly u32 = new Uint32Array(this.uniformData);
  private readonly i32 = new Int32Array(this.uniformData);
  private readonly f32v = new Float32Array(this.uniformData);
  private readonly uniforms: GPUBuffer;
  /** u32 x4 that kernels set when they meet bad input (e.g. an id out of range). */
  readonly errorBuffer: GPUBuffer;
  private bindGroups = new Map<string, GPUBindGroup>();
  private bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;
  // wait estimate
  private pendingCost = 0;
  private firstSubmitAt = 0;
  private costPerMs = 0;

  constructor(private readonly dev: Device) {
    const gpu = dev.gpu;
    this.uniforms = gpu.createBuffer({ size: SLOT * SLOTS, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.errorBuffer = gpu.createBuffer({
      size: ERROR_WORDS * 4,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
  }

  get pending(): boolean {
    return this.encoder !== null;
  }

  private id(b: GPUBuffer): number {
    let id = this.bufferIds.get(b);
    if (id === undefined) this.bufferIds.set(b, (id = this.nextBufferId++));
    return id;
  }

  /** Drops cached bind groups that name a buffer about to be destroyed. */
  forget(b: GPUBuffer): void {
    const id = this.bufferIds.get(b);
    if (id === undefined) return;
    const tag = `|${id}@`;
    for (const key of this.bindGroups.keys()) if (key.includes(tag)) this.bindGroups.delete(key);
  }

  private openPass(): GPUComputePassEncoder {
    if (!this.encoder) this.encoder = this.dev.gpu.createCommandEncoder();
    if (!this.pass) this.pass = this.encoder.beginComputePass();
    return this.pass;
  }

  private closePass(): GPUCommandEncoder {
    if (!this.encoder) this.encoder = this.dev.gpu.createCommandEncoder();
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    return this.encoder;
  }

  /**
   * Records one dispatch. `buffers` bind at 1..n after the uniform block at 0.
   * `cost` is the work in flop-equivalents, used only to estimate wait times.
   */
  dispatch(
    pipeline: GPUComputePipeline,
    layout: GPUBindGroupLayout,
    layoutKey: string,
    buffers: readonly BufferBinding[],
    uniforms: readonly Uniform[],
    workgroups: readonly [number, number, number],
    cost: number,
  ): void {
    this.dev.check();
    const max = this.dev.limits.maxComputeWorkgroupsPerDimension;
    for (const w of workgroups) {
      if (w > max) throw new LimitError(`dispatch: expected at most ${max} workgroups per dimension, got [${workgroups.join(", ")}]`);
    }
    if (workgroups[0] === 0 || workgroups[1] === 0 || workgroups[2] === 0) return;
    if (uniforms.length > SLOT / 4) throw new LimitError(`dispatch: expected at most ${SLOT / 4} uniforms, got ${uniforms.length}`);
    if (this.slot >= SLOTS) this.flush();
    const base = (this.slot * SLOT) / 4;
    uniforms.forEach((u, i) => {
      if (u instanceof F32) this.f32v[base + i] = u.value;
      else if (u < 0) this.i32[base + i] = u;
      else this.u32[base + i] = u;
    });
    let key = layoutKey;
    for (const b of buffers) key += `|${this.id(b.buffer)}@${b.offset}+${b.size}`;
    let group = this.bindGroups.get(key);
    if (!group) {
      if (this.bindGroups.size > 8192) this.bindGroups.clear();
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.uniforms, offset: 0, size: SLOT } }];
      buffers.forEach((b, i) => entries.push({ binding: i + 1, resource: { buffer: b.buffer, offset: b.offset, size: b.size } }));
      group = this.dev.gpu.createBindGroup({ layout, entries });
      this.bindGroups.set(key, group);
    }
    const pass = this.openPass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group, [this.slot * SLOT]);
    pass.dispatchWorkgroups(workgroups[0], workgroups[1], workgroups[2]);
    this.slot++;
    this.inBatch++;
    this.dispatches++;
    let bytes = 0;
    for (const b of buffers) bytes += b.size;
    this.pendingCost += Math.max(cost, BYTE_COST * bytes);
    if (this.inBatch >= this.maxDispatches) this.flush();
  }

  /** Records a buffer-to-buffer copy (ends the open compute pass). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.closePass().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.inBatch++;
    this.pendingCost += (BYTE_COST / 8) * bytes;
  }

  /** Submits everything recorded so far; does not wait. */
  flush(): void {
    if (!this.encoder) return;
    const enc = this.closePass();
    if (this.slot > 0) this.dev.gpu.queue.writeBuffer(this.uniforms, 0, this.uniformData, 0, this.slot * SLOT);
    this.dev.gpu.queue.submit([enc.finish()]);
    if (this.firstSubmitAt === 0) this.firstSubmitAt = performance.now();
    this.encoder = null;
    this.slot = 0;
    this.inBatch = 0;
    this.submits++;
    this.openBatch++;
    this.dev.pool.trim();
  }

  /** Sleeps through most of the expected GPU time; returns when the sleep ended (0: none). */
  private async sleepThroughExpected(): Promise<number> {
    if (!this.dev.adapter.software || this.costPerMs <= 0) return 0;
    const expected = this.pendingCost / this.costPerMs;
    const left = 0.8 * expected - (performance.now() - this.firstSubmitAt);
    if (left < 2) return 0;
    await new Promise((r) => setTimeout(r, Math.min(left, 60_000)));
    return performance.now();
  }

  private learn(sleptUntil: number): void {
    const now = performance.now();
    const ms = now - this.firstSubmitAt;
    if (this.pendingCost > 1e6 && ms > 1) {
      const observed = this.pendingCost / ms;
      if (this.costPerMs === 0) this.costPerMs = observed;
      else if (sleptUntil > 0 && now - sleptUntil < 1) this.costPerMs = Math.max(1.5 * this.costPerMs, observed);
      else this.costPerMs = 0.5 * this.costPerMs + 0.5 * observed;
    }
    this.pendingCost = 0;
    this.firstSubmitAt = 0;
  }

  /**
   * Reads `bytes` from `buffer` at `offset` after all recorded work, and checks the kernels'
   * error flags on the way. The returned ArrayBuffer is a copy the caller owns.
   */
  async read(buffer: GPUBuffer, offset: number, bytes: number): Promise<ArrayBuffer> {
    const padded = Math.ceil(bytes / 4) * 4;
    const staging = this.dev.gpu.createBuffer({
      size: padded + ERROR_WORDS * 4,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const enc = this.closePass();
    if (padded > 0) enc.copyBufferToBuffer(buffer, offset, staging, 0, padded);
    enc.copyBufferToBuffer(this.errorBuffer, 0, staging, padded, ERROR_WORDS * 4);
    this.flush();
    try {
      const slept = await this.sleepThroughExpected();
      await staging.mapAsync(GPUMapMode.READ);
      this.learn(slept);
      const mapped = staging.getMappedRange();
      const out = mapped.slice(0, bytes);
      const err = new Uint32Array(mapped, padded, ERROR_WORDS);
      const [code, a, b] = [err[0]!, err[1]!, err[2]!];
      staging.unmap();
      if (code !== 0) {
        this.dev.gpu.queue.writeBuffer(this.errorBuffer, 0, new Uint32Array(ERROR_WORDS));
        const msg = errorMessages.get(code);
        throw new IndexError(msg ? msg(a, b) : `kernel error code ${code} (${a}, ${b})`);
      }
      this.dev.check();
      return out;
    } catch (e) {
      if (e instanceof IndexError || e instanceof DeviceError) throw e;
      this.dev.check();
      throw new DeviceError(`read back failed: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      staging.destroy();
    }
  }

  /** Submits and waits until the GPU has finished everything recorded. */
  async sync(): Promise<void> {
    await this.read(this.errorBuffer, 0, 0);
  }
}
