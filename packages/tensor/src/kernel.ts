// Compute pipelines, cached by a key, and their dispatch. Binding 0 of every kernel is its
// uniform block `p` (a dynamic-offset slot of the recorder's uniform buffer); bindings
// 1..n are storage buffers, read-only or read-write as the kernel declares.
import "./webgpu.js";
import { device, type Device } from "./device.js";
import { LimitError } from "./errors.js";
import type { Binding, BufferBinding, Uniform } from "./recorder.js";

/** Storage buffer read-only / read-write, or a sampled 2-D float texture. */
export type Access = "read" | "rw" | "tex";

export interface KernelSource {
  code: string;
  /** Access of bindings 1..n. */
  bindings: readonly Access[];
  entry?: string;
}

export interface Kernel {
  readonly name: string;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  readonly layoutKey: string;
}

const caches = new WeakMap<Device, Map<string, Kernel>>();
const layouts = new WeakMap<Device, Map<string, GPUBindGroupLayout>>();

function layoutFor(dev: Device, bindings: readonly Access[]): [GPUBindGroupLayout, string] {
  const key = bindings.map((b) => ({ read: "r", rw: "w", tex: "t" })[b]).join("");
  let m = layouts.get(dev);
  if (!m) layouts.set(dev, (m = new Map()));
  let layout = m.get(key);
  if (!layout) {
    const entries: GPUBindGroupLayoutEntry[] = [
      { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: "uniform", hasDynamicOffset: true } },
    ];
    bindings.forEach((b, i) => {
      const entry: GPUBindGroupLayoutEntry = { binding: i + 1, visibility: GPUShaderStage.COMPUTE };
      if (b === "tex") entry.texture = { sampleType: "unfilterable-float" };
      else entry.buffer = { type: b === "read" ? "read-only-storage" : "storage" };
      entries.push(entry);
    });
    layout = dev.gpu.createBindGroupLayout({ entries });
    m.set(key, layout);
  }
  return [layout, key];
}

/** The pipeline for `key`, compiled from `build()` the first time. */
export function kernel(name: string, key: string, build: () => KernelSource, dev: Device = device()): Kernel {
  let cache = caches.get(dev);
  if (!cache) caches.set(dev, (cache = new Map()));
  const full = `${name}:${key}`;
  let k = cache.get(full);
  if (k) return k;
  const src = build();
  const maxStorage = dev.limits.maxStorageBuffersPerShaderStage;
  const storage = src.bindings.filter((b) => b !== "tex").length;
  if (storage > maxStorage) {
    throw new LimitError(`${name}: expected at most ${maxStorage} storage buffers per shader stage, got ${storage}`);
  }
  const [layout, layoutKey] = layoutFor(dev, src.bindings);
  const module = dev.gpu.createShaderModule({ code: src.code, label: full });
  const pipeline = dev.gpu.createComputePipeline({
    label: full,
    layout: dev.gpu.createPipelineLayout({ bindGroupLayouts: [layout] }),
    compute: { module, entryPoint: src.entry ?? "main" },
  });
  k = { name, pipeline, layout, layoutKey };
  cache.set(full, k);
  return k;
}

/** Records a dispatch of `k`. `cost`: its work in flop-equivalents (2·M·N·K for a GEMM, elements for a copy), summed in stats. */
export function run(
  k: Kernel,
  buffers: readonly Binding[],
  uniforms: readonly Uniform[],
  workgroups: number | readonly [number, number, number],
  cost = 0,
  dev: Device = device(),
): void {
  const wg: readonly [number, number, number] = typeof workgroups === "number" ? grid(workgroups, dev) : workgroups;
  dev.recorder.dispatch(k.pipeline, k.layout, k.layoutKey, buffers, uniforms, wg, cost);
}

/**
 * Lays `n` workgroups out as [x, y, 1] within the per-dimension limit (65535). Shaders
 * recover the linear index with `wid.x + wid.y * nwg.x` (see WG_INDEX) and skip indices >= n.
 */
export function grid(n: number, dev: Device = device()): [number, number, number] {
  const max = dev.limits.maxComputeWorkgroupsPerDimension;
  if (n <= max) return [n, 1, 1];
  const y = Math.ceil(n / max);
  if (y > max) throw new LimitError(`dispatch: expected at most ${max * max} workgroups, got ${n}`);
  return [Math.ceil(n / y), y, 1];
}

/** WGSL builtins for kernels dispatched with grid(): declare in the entry's parameters. */
export const WG_ARGS = "@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32";
/** WGSL expression: linear workgroup index under grid(). */
export const WG_INDEX = "(wid.x + wid.y * nwg.x)";

/** The error-flag binding for kernels that report bad input (see registerKernelError). */
export function errorBinding(dev: Device = device()): BufferBinding {
  return { buffer: dev.recorder.errorBuffer, offset: 0, size: 16 };
}

/** WGSL for the error-flag buffer at `binding`, and `report(code, a, b)`. */
export const errorWgsl = (binding: number): string => `
@group(0) @binding(${binding}) var<storage, read_write> err: array<atomic<u32>, 4>;
fn report(code: u32, a: u32, b: u32) {
  if (atomicCompareExchangeWeak(&err[0], 0u, code).exchanged) { atomicStore(&err[1], a); atomicStore(&err[2], b); }
}`;
