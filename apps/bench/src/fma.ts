// Ceiling probes: what this adapter can do at best, so every figure is also shown as a fraction.
//   fma-probe:  each invocation runs C independent scalar FMA chains (C = 8, 16, 24; the best
//               counts: past the register file the chains spill) for `iters` steps; 64
//               invocations a workgroup, many workgroups. flops = 2·C·iters·invocations.
//   copy-probe: a vec4 copy of 64 MiB (16 Mi f32), bytes = 2·64 MiB; the best of three
//               layouts: one vec4 per invocation (256 a workgroup), 4 vec4 a lane apart
//               (256), a contiguous run of 4 vec4 per invocation (64).
import { WG_ARGS, WG_INDEX, alloc, device, f32, fillInPlace, kernel, run } from "@llms-eye/tensor";
import { type BenchRecord, ValidationError, makeRecord, shapeKey, timeRuns, type Timing } from "./harness.js";

const WG = 64;

const fmaKernel = (chains: number) =>
  kernel("bench_fma", String(chains), () => {
    const idx = [...Array(chains).keys()];
    return {
      bindings: ["rw"],
      code: `
struct P { iters: u32, n: u32, m: f32, c: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WG}) fn main(${WG_ARGS}) {
  let i = ${WG_INDEX} * ${WG}u + lid;
  let x = f32(i & 1023u) * 1e-3;
  ${idx.map((j) => `var a${j} = x + ${j}.0;`).join(" ")}
  for (var it = 0u; it < p.iters; it++) {
    ${idx.map((j) => `a${j} = fma(a${j}, p.m, p.c);`).join(" ")}
  }
  if (i < p.n) { out[i] = ${idx.map((j) => `a${j}`).join(" + ")}; }
}`,
    };
  });

type CopyLayout = { wg: number; per: number; run: boolean };
const COPY_LAYOUTS: CopyLayout[] = [
  { wg: 256, per: 1, run: false },
  { wg: 256, per: 4, run: false },
  { wg: 64, per: 4, run: true },
];

const copyKernel = ({ wg, per, run: contiguous }: CopyLayout) =>
  kernel("bench_copy", `${wg}x${per}${contiguous ? "run" : "lane"}`, () => {
    const js = [...Array(per).keys()];
    return {
      bindings: ["read", "rw"],
      code: `
struct P { n4: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4f>;
@compute @workgroup_size(${wg}) fn main(${WG_ARGS}) {
  ${contiguous ? `let b = (${WG_INDEX} * ${wg}u + lid) * ${per}u; let st = 1u;` : `let b = ${WG_INDEX} * ${wg * per}u + lid; let st = ${wg}u;`}
  if (b + ${per - 1}u * st < p.n4) {
    ${js.map((j) => `let v${j} = src[b + ${j}u * st];`).join(" ")}
    ${js.map((j) => `dst[b + ${j}u * st] = v${j};`).join(" ")}
  } else {
    for (var j = 0u; j < ${per}u; j++) { let i = b + j * st; if (i < p.n4) { dst[i] = src[i]; } }
  }
}`,
    };
  });

export interface ProbeSize {
  workgroups: number;
  iters: number;
  copyElems: number;
}

export const PROBE_SIZES: Record<"full" | "tiny", ProbeSize> = {
  full: { workgroups: 4096, iters: 1024, copyElems: 16 << 20 },
  tiny: { workgroups: 16, iters: 16, copyElems: 4100 },
};

/** The FMA probe: the best over chain counts. The sum of the chains is checked on one lane. */
export async function fmaProbe(size: ProbeSize, timing: Timing): Promise<{ record: BenchRecord; chains: number }> {
  const n = size.workgroups * WG;
  const out = alloc([n]);
  const m = 0.999;
  const c = 0.001;
  let best: { record: BenchRecord; chains: number } | undefined;
  try {
    for (const chains of [8, 16, 24]) {
      const k = fmaKernel(chains);
      const dispatch = () => run(k, [out.binding("fma")], [size.iters, n, f32(m), f32(c)], size.workgroups, 2 * chains * size.iters * n);
      dispatch();
      // invocation 5: a_j starts at 0.005 + j and follows a <- a·m + c
      const got = (await out.toArray())[5]!;
      let want = 0;
      for (let j = 0; j < chains; j++) {
        let a = Math.fround(0.005 + j);
        for (let t = 0; t < size.iters; t++) a = a * m + c;
        want += a;
      }
      if (!(Math.abs(got - want) <= 1e-3 * Math.abs(want) + 1e-3)) {
        throw new ValidationError(`fma-probe: lane 5 got ${got}, want ${want} (chains ${chains})`);
      }
      const t = await timeRuns(async () => {
        dispatch();
        await device().sync();
      }, timing);
      const rec = makeRecord(
        { op: "fma-probe", shape: shapeKey(size.workgroups * WG, chains, size.iters), engine: "llms-eye" },
        t.median_ms,
        { flops: 2 * chains * size.iters * n },
        t.runs,
      );
      if (!best || (rec.gflops ?? 0) > (best.record.gflops ?? 0)) best = { record: rec, chains };
    }
  } finally {
    out.dispose();
  }
  return best!;
}

/** The copy probe: device-memory bandwidth (read + write), the best of COPY_LAYOUTS. */
export async function copyProbe(size: ProbeSize, timing: Timing): Promise<{ record: BenchRecord; layout: string }> {
  const n = size.copyElems;
  const src = alloc([n]);
  const dst = alloc([n]);
  let best: { record: BenchRecord; layout: string } | undefined;
  try {
    const init = kernel("bench_iota", "", () => ({
      bindings: ["rw"],
      code: `
struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(256) fn main(${WG_ARGS}) {
  let i = ${WG_INDEX} * 256u + lid;
  if (i < p.n) { o[i] = f32(i % 4099u); }
}`,
    }));
    run(init, [src.binding("copy")], [n], Math.ceil(n / 256), n);
    for (const layout of COPY_LAYOUTS) {
      const k = copyKernel(layout);
      const dispatch = () => run(k, [src.binding("copy"), dst.binding("copy")], [n / 4], Math.ceil(n / 4 / (layout.wg * layout.per)), 2 * n);
      fillInPlace(dst, -1);
      dispatch();
      const got = await dst.toArray();
      for (const i of [0, 1, 5, n >> 1, n - 5, n - 1]) {
        if (got[i] !== i % 4099) throw new ValidationError(`copy-probe: index ${i} got ${got[i]}, want ${i % 4099}`);
      }
      const t = await timeRuns(async () => {
        dispatch();
        await device().sync();
      }, timing);
      const record = makeRecord({ op: "copy-probe", shape: shapeKey(n), engine: "llms-eye" }, t.median_ms, { bytes: 8 * n }, t.runs);
      const name = `${layout.per} vec4 per invocation${layout.per > 1 ? (layout.run ? ", contiguous" : ", a lane apart") : ""}`;
      if (!best || (record.gbps ?? 0) > (best.record.gbps ?? 0)) best = { record, layout: name };
    }
  } finally {
    src.dispose();
    dst.dispose();
  }
  return best!;
}
