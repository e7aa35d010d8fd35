// The WebGPU device: one GPUDevice from Dawn's Node bindings, opened with the adapter's
// maximum limits, its optional features detected. The object that `create()` returns is
// held for the process's life: if it is garbage-collected the next submit crashes or hangs.
import "./webgpu.js";
import { readFileSync } from "node:fs";
import { create, globals } from "webgpu";
import { DeviceError } from "./errors.js";
import { BufferPool } from "./pool.js";
import { Recorder } from "./recorder.js";

export type Feature = "shader-f16" | "subgroups" | "timestamp-query";
const OPTIONAL_FEATURES: readonly Feature[] = ["shader-f16", "subgroups", "timestamp-query"];

export interface DeviceOptions {
  /** Dawn instance options passed to `create()`, e.g. `enable-dawn-features=a,b`. */
  dawn?: string[];
  powerPreference?: GPUPowerPreference;
}

export interface AdapterInfo {
  vendor: string;
  architecture: string;
  description: string;
  /** A CPU implementation (lavapipe/llvmpipe, SwiftShader, WARP). */
  software: boolean;
}

export class Device {
  readonly features: ReadonlySet<Feature>;
  readonly limits: GPUSupportedLimits;
  readonly pool: BufferPool;
  readonly recorder: Recorder;
  private lostReason: string | null = null;
  private uncaptured: string | null = null;

  constructor(
    readonly gpu: GPUDevice,
    readonly adapter: AdapterInfo,
  ) {
    this.limits = gpu.limits;
    this.features = new Set(OPTIONAL_FEATURES.filter((f) => gpu.features.has(f)));
    this.pool = new BufferPool(this);
    this.recorder = new Recorder(this);
    gpu.lost.then((info) => {
      this.lostReason = `${info.reason}: ${info.message}`;
    });
    gpu.addEventListener("uncapturederror", (ev) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      this.uncaptured ??= e.message;
    });
  }

  /** Throws if the device was lost or reported an error since the last check. */
  check(): void {
    if (this.lostReason !== null) throw new DeviceError(`device lost (${this.lostReason})`);
    if (this.uncaptured !== null) {
      const msg = this.uncaptured;
      this.uncaptured = null;
      throw new DeviceError(`WebGPU reported an error: ${msg}`);
    }
  }

  get maxBinding(): number {
    return this.limits.maxStorageBufferBindingSize;
  }

  /** Live tensors' buffers and the pool's idle buffers. */
  stats(): { liveBuffers: number; liveBytes: number; pooledBuffers: number; pooledBytes: number; submits: number; dispatches: number; bindGroups: number; work: number } {
    const r = this.recorder;
    return { ...this.pool.stats(), submits: r.submits, dispatches: r.dispatches, bindGroups: r.bindGroupsCreated, work: r.work };
  }

  /** Submits recorded work and waits for the GPU to finish it. */
  async sync(): Promise<void> {
    await this.recorder.sync();
  }
}

const KEEP = Symbol.for("llms-eye.tensor.gpu");
type Holder = { [KEEP]?: { gpu: GPU; device: Promise<Device> } };

function cpuHasAvx512(): boolean {
  try {
    return /\bavx512f\b/.test(readFileSync("/proc/cpuinfo", "utf8"));
  } catch {
    return false;
  }
}

async function open(options: DeviceOptions, gpu: GPU): Promise<Device> {
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? "high-performance" });
  if (!adapter) {
    throw new DeviceError(
      "no WebGPU adapter found. Fix: run 'bash scripts/setup.sh' (installs Mesa's lavapipe on Debian/Ubuntu), or install a Vulkan driver (Mesa >= 25 or your GPU vendor's)",
    );
  }
  const requiredLimits: Record<string, number> = {};
  for (const key in adapter.limits) {
    const v = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof v === "number") requiredLimits[key] = v;
  }
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  const gpuDevice = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  const info = adapter.info;
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  const software =
    (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter === true ||
    /llvmpipe|lavapipe|swiftshader|warp|software/.test(text);
  return new Device(gpuDevice, {
    vendor: info.vendor,
    architecture: info.architecture,
    description: info.description || info.device,
    software,
  });
}

/**
 * The process-wide device, opened on first call. On a CPU with AVX-512, lavapipe is told to use
 * 512-bit vectors (LP_NATIVE_VECTOR_WIDTH) unless the environment already says otherwise.
 */
export function getDevice(options: DeviceOptions = {}): Promise<Device> {
  const holder = globalThis as Holder;
  if (!holder[KEEP]) {
    if (process.env.LP_NATIVE_VECTOR_WIDTH === undefined && cpuHasAvx512()) process.env.LP_NATIVE_VECTOR_WIDTH = "512";
    Object.assign(globalThis, globals);
    const gpu = create(options.dawn ?? []);
    holder[KEEP] = { gpu, device: open(options, gpu) };
  }
  return holder[KEEP].device;
}

let current: Device | null = null;

/** Opens the device (once) and makes it the one ops use. */
export async function init(options: DeviceOptions = {}): Promise<Device> {
  current = await getDevice(options);
  return current;
}

/** The device ops run on; `await init()` first. */
export function device(): Device {
  if (!current) throw new DeviceError("no device: call `await init()` from @llms-eye/tensor before creating tensors");
  return current;
}
