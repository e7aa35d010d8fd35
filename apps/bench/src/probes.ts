// probes: how fast each way of getting a value into a lane is on this adapter — the evidence
// behind the software-adapter kernels (matmul-tex.ts). Every probe runs 64-lane workgroups;
// each lane sums R = 64 values (vec4: 4 floats each) fetched by one mechanism from a 64 KiB
// source that stays in cache, so the figure is the instruction cost, not memory bandwidth:
//   storage    per-lane vec4 loads from a storage buffer (a branch per lane and component on lavapipe)
//   texture    per-lane textureLoad of rgba32float texels (one sampler call per SIMD batch)
//   ubo        per-lane vec4 loads from a 64 KiB uniform-buffer binding (a gather)
//   uniform    storage vec4 loads at an address the compiler sees as uniform: the workgroup's
//              origin laundered through immediates (a scalar load, but a bounds check each)
//   wg-const   workgroup memory at constant addresses in straight-line code (the tile kernels'
//              B operand: one broadcast each), staged once per workgroup
//   subgroup   one per-lane vec4 load per 8 values, handed out by subgroupBroadcast (lanes 0-7)
// items = floats delivered (lanes x R x 4). Compare with the fma probe's mul+add rate: a
// value that feeds n mul+adds must cost less than n of them to keep the arithmetic busy.
import { device } from "@llms-eye/tensor";
import type { Family, OurCase, Preset } from "./bench.js";
import { ValidationError, shapeKey } from "./harness.js";

const R = 64;
const WG = 64;
const S = 4096; // vec4 entries in the source (64 KiB)
type Mechanism = "storage" | "texture" | "ubo" | "uniform" | "wg-const" | "subgroup";
const MECHANISMS: Mechanism[] = ["storage", "texture", "ubo", "uniform", "wg-const", "subgroup"];

/** Source entry i: exact small values, so the sums are exact in f32. */
const value = (i: number): [number, number, number, number] => [(i % 7) * 0.25, (i % 11) * 0.25, (i % 13) * 0.25, 1];
/** The entry lane g (global id) fetches at step r; `uniform` and `wg-const` use one index a workgroup. */
const index = (m: Mechanism, g: number, r: number): number => {
  const w = Math.floor(g / WG);
  if (m === "uniform") return (w * 64 + r * 17) & (S - 1);
  if (m === "wg-const") return (w * 64 + r) & (S - 1);
  if (m === "subgroup") return (w * 64 + (r % 8) * 5 + Math.floor(r / 8) * 17) & (S - 1);
  return (g * 5 + r * 17) & (S - 1);
};

function code(m: Mechanism): string {
  const steps = [...Array(R).keys()];
  const head = `@group(0) @binding(1) var<storage, read_write> out: array<f32>;`;
  const src: Record<Mechanism, string> = {
    storage: `@group(0) @binding(0) var<storage, read> src: array<vec4f>;`,
    texture: `@group(0) @binding(0) var src: texture_2d<f32>;`,
    ubo: `struct U { v: array<vec4f, ${S}> }\n@group(0) @binding(0) var<uniform> src: U;`,
    uniform: `@group(0) @binding(0) var<storage, read> src: array<vec4f>;\nstruct I { a: vec4u }\nvar<immediate> im: I;`,
    "wg-const": `@group(0) @binding(0) var<storage, read> src: array<vec4f>;\nvar<workgroup> ws: array<vec4f, ${R}>;`,
    subgroup: `enable subgroups;\n@group(0) @binding(0) var<storage, read> src: array<vec4f>;`,
  };
  const load = (r: number): string => {
    const i = `((g * 5u + ${r * 17}u) & ${S - 1}u)`;
    switch (m) {
      case "storage": return `src[${i}]`;
      case "texture": return `textureLoad(src, vec2u(${i} & 63u, ${i} >> 6u), 0)`;
      case "ubo": return `src.v[${i}]`;
      case "uniform": return `src[(w * 64u + ${r * 17}u) & ${S - 1}u]`;
      case "wg-const": return `ws[${r}]`;
      case "subgroup": return `subgroupBroadcast(v${r >> 3}, ${r % 8}u)`;
    }
  };
  const pre: Partial<Record<Mechanism, string>> = {
    uniform: `let w = ${[0, 1, 2, 3, 4, 5].map((d) => `${4 ** d}u * im.a[(wid.x >> ${2 * d}u) & 3u]`).join(" + ")};`,
    "wg-const": `ws[lid] = src[(wid.x * 64u + lid) & ${S - 1}u];\n  workgroupBarrier();`,
    subgroup: [...Array(R / 8).keys()].map((h) => `let v${h} = src[(wid.x * 64u + (sg % 8u) * 5u + ${h * 17}u) & ${S - 1}u];`).join("\n  "),
  };
  const sg = m === "subgroup" ? ", @builtin(subgroup_invocation_id) sg: u32" : "";
  return `${src[m]}
${head}
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32${sg}) {
  let g = wid.x * ${WG}u + lid;
  ${pre[m] ?? ""}
  var acc = vec4f(0.0);
  ${steps.map((r) => `acc += ${load(r)};`).join("\n  ")}
  out[g] = dot(acc, vec4f(1.0));
}`;
}

function probeCase(m: Mechanism, workgroups: number): OurCase {
  const lanes = workgroups * WG;
  return {
    op: `probe-${m}`,
    shape: shapeKey(lanes, R, 4),
    work: { items: lanes * R * 4 },
    note: m === "uniform" || m === "wg-const" ? "one address a workgroup" : "per-lane addresses",
    setup() {
      const gpu = device().gpu;
      const data = new Float32Array(S * 4);
      for (let i = 0; i < S; i++) data.set(value(i), 4 * i);
      const usage = m === "ubo" ? GPUBufferUsage.UNIFORM : GPUBufferUsage.STORAGE;
      const src = gpu.createBuffer({ size: data.byteLength, usage: usage | GPUBufferUsage.COPY_DST });
      gpu.queue.writeBuffer(src, 0, data);
      const tex = m === "texture" ? gpu.createTexture({ size: [64, S / 64], format: "rgba32float", usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST }) : undefined;
      if (tex) gpu.queue.writeTexture({ texture: tex }, data, { bytesPerRow: 64 * 16 }, [64, S / 64]);
      const out = gpu.createBuffer({ size: lanes * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
      const read = gpu.createBuffer({ size: lanes * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      const module = gpu.createShaderModule({ code: code(m), label: `probe-${m}` });
      const layout = gpu.createPipelineLayout({
        bindGroupLayouts: [
          gpu.createBindGroupLayout({
            entries: [
              tex
                ? { binding: 0, visibility: GPUShaderStage.COMPUTE, texture: { sampleType: "unfilterable-float" } }
                : { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: m === "ubo" ? "uniform" : "read-only-storage" } },
              { binding: 1, visibility: GPUShaderStage.COMPUTE, buffer: { type: "storage" } },
            ],
          }),
        ],
        ...(m === "uniform" ? { immediateSize: 16 } : {}),
      } as GPUPipelineLayoutDescriptor);
      const pipeline = gpu.createComputePipeline({ layout, compute: { module, entryPoint: "main" } });
      const group = gpu.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [{ binding: 0, resource: tex ? tex.createView() : { buffer: src } }, { binding: 1, resource: { buffer: out } }],
      });
      const dispatch = (copy: boolean): void => {
        const enc = gpu.createCommandEncoder();
        const pass = enc.beginComputePass();
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, group);
        if (m === "uniform") (pass as unknown as { setImmediates(o: number, d: Uint32Array): void }).setImmediates(0, new Uint32Array([0, 1, 2, 3]));
        pass.dispatchWorkgroups(workgroups);
        pass.end();
        if (copy) enc.copyBufferToBuffer(out, 0, read, 0, lanes * 4);
        gpu.queue.submit([enc.finish()]);
      };
      return {
        async validate() {
          dispatch(true);
          await read.mapAsync(GPUMapMode.READ);
          const got = new Float32Array(read.getMappedRange().slice(0));
          read.unmap();
          for (const g of [0, 5, 17, 63, 64, lanes - 1]) {
            let want = 0;
            for (let r = 0; r < R; r++) want += value(index(m, g, r)).reduce((a, b) => a + b, 0);
            if (got[g] !== want) throw new ValidationError(`probe-${m}: lane ${g} summed ${got[g]}, want ${want}`);
          }
        },
        async step() {
          dispatch(false);
          await gpu.queue.onSubmittedWorkDone();
        },
        dispose() {
          for (const b of [src, out, read]) b.destroy();
          tex?.destroy();
        },
      };
    },
  };
}

const WORKGROUPS: Record<Preset, number> = { full: 2048, quick: 2048, tiny: 4 };

export const family: Family = {
  name: "probes",
  cases: (preset) => {
    const has = device().features.has("subgroups");
    return MECHANISMS.filter((m) => m !== "subgroup" || has).map((m) => probeCase(m, WORKGROUPS[preset]));
  },
};
