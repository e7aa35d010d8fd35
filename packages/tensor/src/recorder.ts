// Records dispatches into one command encoder (inside one open compute pass) and submits
// them in batches: when a value is read back, when the batch's uniform slots run out, or
// when it grows past `maxDispatches`. Nothing waits on the GPU except a read back.
//
// Waiting: a Dawn promise (mapAsync) is resolved by a tick that Dawn's Node bindings
// re-queue with the global setImmediate for as long as the promise is pending: a busy
// loop on one core, which a software adapter (lavapipe) needs for its own threads. On such
// an adapter the recorder lets that loop spin for the first half millisecond (fast reads
// stay fast) and then routes its ticks through a 1 ms timer until the read resolves.
import "./webgpu.js";
import type { Device } from "./device.js";
import { DeviceError, IndexError, LimitError } from "./errors.js";
import { Profiler } from "./profiler.js";

export interface BufferBinding {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

/** A whole 2-D texture bound at a kernel's `tex` (sampled) slot. */
export interface TextureBinding {
  texture: GPUTexture;
  view: GPUTextureView;
}

export type Binding = BufferBinding | TextureBinding;

/** A float uniform: `f32(0.5)`; plain numbers are written as u32 (or i32 when negative). */
export class F32 {
  constructor(readonly value: number) {}
}
export const f32 = (v: number): F32 => new F32(v);
export type Uniform = number | F32;

const SLOT = 256;
const SLOTS = 1024;
const ERROR_WORDS = 4;
/** How long a read may busy-poll before its polling drops to one tick a millisecond. */
const SPIN_MS = 0.5;

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
  /** Bind groups created so far (a steady loop should stop creating them after its first steps). */
  bindGroupsCreated = 0;
  /** Stated work (flop-equivalents) of every dispatch recorded so far. */
  work = 0;
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
  private bufferIds = new WeakMap<GPUBuffer | GPUTexture, number>();
  private nextBufferId = 1;
  /** Throttle Dawn's polling during reads (default: on software adapters). */
  politeWait: boolean;
  /** Per-kernel timestamps, while attached (see `profile()`). */
  private profiler: Profiler | null = null;

  constructor(private readonly dev: Device) {
    this.politeWait = dev.adapter.software;
    const gpu = dev.gpu;
    this.uniforms = gpu.createBuffer({ size: SLOT * SLOTS, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.errorBuffer = gpu.createBuffer({
      size: ERROR_WORDS * 4,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
  }

  /**
   * Starts timing every dispatch by kernel (needs the `timestamp-query` feature); read the
   * totals with `profiler.report()`. Returns null when the device cannot time kernels.
   */
  profile(): Profiler | null {
    if (this.profiler) return this.profiler;
    if (!this.dev.features.has("timestamp-query")) return null;
    this.flush();
    this.profiler = new Profiler(this.dev.gpu, Math.min(SLOTS, this.maxDispatches));
    return this.profiler;
  }

  /** Stops timing dispatches (the profiler's report still covers everything timed so far). */
  stopProfile(): void {
    this.flush();
    this.profiler = null;
  }

  get pending(): boolean {
    return this.encoder !== null;
  }

  private id(b: GPUBuffer | GPUTexture): number {
    let id = this.bufferIds.get(b);
    if (id === undefined) this.bufferIds.set(b, (id = this.nextBufferId++));
    return id;
  }

  /** Drops cached bind groups that name a buffer or texture about to be destroyed. */
  forget(b: GPUBuffer | GPUTexture): void {
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
   * Records one dispatch. `buffers` (buffers and textures) bind at 1..n after the uniform block at 0.
   * `cost` is the work in flop-equivalents as the op states it, summed into `work`.
   */
  dispatch(
    pipeline: GPUComputePipeline,
    layout: GPUBindGroupLayout,
    layoutKey: string,
    buffers: readonly Binding[],
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
    for (const b of buffers) key += "texture" in b ? `|${this.id(b.texture)}@t` : `|${this.id(b.buffer)}@${b.offset}+${b.size}`;
    let group = this.bindGroups.get(key);
    if (!group) {
      if (this.bindGroups.size > 8192) this.bindGroups.clear();
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.uniforms, offset: 0, size: SLOT } }];
      buffers.forEach((b, i) =>
        entries.push({ binding: i + 1, resource: "texture" in b ? b.view : { buffer: b.buffer, offset: b.offset, size: b.size } }),
      );
      group = this.dev.gpu.createBindGroup({ layout, entries });
      this.bindGroupsCreated++;
      this.bindGroups.set(key, group);
    }
    const profiler = this.profiler;
    if (profiler?.full) this.flush();
    const pass = profiler ? profiler.beginPass(this.closePass(), pipeline.label) : this.openPass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group, [this.slot * SLOT]);
    pass.dispatchWorkgroups(workgroups[0], workgroups[1], workgroups[2]);
    if (profiler) pass.end();
    this.slot++;
    this.inBatch++;
    this.dispatches++;
    this.work += cost;
    if (this.inBatch >= this.maxDispatches) this.flush();
  }

  /** Records a buffer-to-buffer copy (ends the open compute pass). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.closePass().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.inBatch++;
  }

  /** Records a copy of `rows` rows of `width` rgba32float texels into `dst` from row 0 (ends the open compute pass). */
  copyToTexture(src: GPUBuffer, offset: number, bytesPerRow: number, dst: GPUTexture, width: number, rows: number): void {
    this.closePass().copyBufferToTexture({ buffer: src, offset, bytesPerRow }, { texture: dst }, [width, rows]);
    this.inBatch++;
  }

  /** Submits everything recorded so far; does not wait. */
  flush(): void {
    if (!this.encoder) return;
    const enc = this.closePass();
    this.profiler?.resolve(enc);
    if (this.slot > 0) this.dev.gpu.queue.writeBuffer(this.uniforms, 0, this.uniformData, 0, this.slot * SLOT);
    this.dev.gpu.queue.submit([enc.finish()]);
    this.encoder = null;
    this.slot = 0;
    this.inBatch = 0;
    this.submits++;
    this.openBatch++;
    this.dev.pool.trim();
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
      const restore = this.politeWait ? throttleDawnPolling() : undefined;
      try {
        await staging.mapAsync(GPUMapMode.READ);
      } finally {
        restore?.();
      }
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

/**
 * Makes the global setImmediate — which Dawn's bindings use to re-queue their event polling —
 * fall back to a 1 ms timer once SPIN_MS has passed. Returns the function that restores it.
 */
function throttleDawnPolling(): () => void {
  const original = globalThis.setImmediate;
  const start = performance.now();
  const polite = ((fn: (...args: unknown[]) => void, ...args: unknown[]) =>
    performance.now() - start < SPIN_MS ? original(fn, ...args) : setTimeout(fn, 1, ...args)) as unknown as typeof setImmediate;
  globalThis.setImmediate = polite;
  return () => {
    if (globalThis.setImmediate === polite) globalThis.setImmediate = original;
  };
}
