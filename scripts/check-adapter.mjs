// Exits 0 when Dawn gives an adapter that can run a compute shader, 1 otherwise.
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

// resolve `webgpu` as the engine package does (it is that package's dependency)
const require = createRequire(new URL("../packages/tensor/package.json", import.meta.url));
const { create, globals } = await import(pathToFileURL(require.resolve("webgpu")).href);
Object.assign(globalThis, globals);
const gpu = create([]);
globalThis.__llmsEyeGpu = gpu; // keep alive for the process's life

const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
if (!adapter) {
  console.log("[setup] no WebGPU adapter found");
  process.exit(1);
}
try {
  const device = await adapter.requestDevice();
  const buf = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const read = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const module = device.createShaderModule({
    code: "@group(0) @binding(0) var<storage, read_write> o: array<u32>;\n@compute @workgroup_size(4) fn main(@builtin(global_invocation_id) g: vec3u) { o[g.x] = g.x * 7u; }",
  });
  const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf } }] }));
  pass.dispatchWorkgroups(1);
  pass.end();
  enc.copyBufferToBuffer(buf, 0, read, 0, 16);
  device.queue.submit([enc.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const got = Array.from(new Uint32Array(read.getMappedRange()));
  if (got.join() !== "0,7,14,21") throw new Error(`compute check returned ${got.join()}`);
  const info = adapter.info ?? {};
  console.log(`[setup] WebGPU adapter: ${[info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(" / ") || "unknown"}`);
  device.destroy();
  process.exit(0);
} catch (err) {
  console.log(`[setup] the WebGPU adapter failed a compute check: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
}
