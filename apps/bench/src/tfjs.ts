// The tfjs peer: @tensorflow/tfjs-backend-webgpu on the same Dawn adapter, in this process.
// tfjs finds WebGPU through `navigator.gpu`; we give it the GPU object the engine created (held
// under a global symbol for the process's life; if it were collected the next submit would
// crash). Each OpSpec is built from tfjs ops: attention = matmul + mask + softmax + matmul,
// layernorm = moments + elementwise, AdamW by hand. A timed run ends when tfjs's queue is idle.
// Failures (e.g. a binding above maxStorageBufferBindingSize) are caught by an error scope
// around the first run and thrown as errors, which the harness records.
import type * as TF from "@tensorflow/tfjs-core";
import { randArray, randnArray } from "@llms-eye/tensor";
import { create, globals } from "webgpu";
import { type OpSpec, type Peer, type Timing, timeRuns } from "./harness.js";

type Tf = typeof TF;
/** The parts of tfjs's WebGPUBackend this file uses (not in its public types). */
interface Backend {
  device: GPUDevice;
  queue: GPUQueue;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  bufferManager: { freeBuffers: Map<string, GPUBuffer[]>; numFreeBuffers: number; numBytesAllocated: number };
}

const KEEP = Symbol.for("llms-eye.tensor.gpu");
const OWN = Symbol.for("llms-eye.bench.tfjs-gpu");

let loaded: Promise<{ tf: Tf; be: Backend }> | undefined;

async function load(): Promise<{ tf: Tf; be: Backend }> {
  const g = globalThis as Record<symbol, { gpu?: GPU } | undefined>;
  Object.assign(globalThis, globals);
  const gpu = g[KEEP]?.gpu ?? (g[OWN] ??= { gpu: create([]) }).gpu!;
  const nav = (globalThis as { navigator?: object }).navigator ?? {};
  Object.defineProperty(globalThis, "navigator", { value: { ...nav, gpu }, configurable: true, writable: true });
  const tf = await import("@tensorflow/tfjs-core");
  await import("@tensorflow/tfjs-backend-webgpu");
  if (!(await tf.setBackend("webgpu"))) throw new Error("tfjs: the webgpu backend did not initialise");
  await tf.ready();
  return { tf, be: tf.backend() as unknown as Backend };
}

/** Rough single-run time on tfjs-webgpu here (PERF-NOTES: ≈5 GFLOPS, softmax ≈0.6 GB/s), for --quick. */
function estimateMs(spec: OpSpec): number {
  const flopsMs = (flops: number) => flops / 5e6;
  const bytesMs = (bytes: number) => bytes / 0.6e6;
  switch (spec.op) {
    case "matmul":
      return flopsMs(2 * spec.m * spec.n * spec.k);
    case "attention":
      return flopsMs(4 * spec.b * spec.h * spec.t * spec.t * spec.dh) + bytesMs(3 * 8 * spec.b * spec.h * spec.t * spec.t);
    case "layernorm":
      return bytesMs(6 * 8 * spec.n * spec.c);
    case "softmax":
      return bytesMs(8 * spec.n * spec.v);
    case "cross-entropy":
      return bytesMs(12 * spec.n * spec.v);
    case "infonce":
      return flopsMs(2 * spec.b * spec.b * spec.e) + 20;
    case "adamw":
      return bytesMs(15 * 12 * spec.shapes.reduce((s, d) => s + d.reduce((a, b) => a * b, 1), 0));
    case "train_step_gpt2":
    case "train_step_eye":
      return Infinity;
  }
}

const QUICK_MAX_MS = 1000;

export class TfjsPeer implements Peer {
  readonly engine = "tfjs-webgpu";
  readonly threads = "adapter";

  skip(spec: OpSpec, quick: boolean): string | undefined {
    if (spec.op === "train_step_gpt2") return "no GPT-2 training step written for tfjs";
    if (spec.op === "train_step_eye") return "no eye training step written for tfjs";
    const est = estimateMs(spec);
    if (quick && est > QUICK_MAX_MS) return `about ${(est / 1000).toFixed(1)} s a run on tfjs here; --quick`;
    return undefined;
  }

  async bench(spec: OpSpec, timing: Timing): Promise<{ median_ms: number; runs: number }> {
    loaded ??= load();
    const { tf, be } = await loaded;
    const sync = async (): Promise<void> => {
      be.ensureCommandEncoderReady();
      be.endComputePassEncoder();
      be.submitQueue();
      await be.queue.onSubmittedWorkDone();
    };
    const made = build(tf, spec, be.device.limits.maxStorageBufferBindingSize);
    const step = async (): Promise<void> => {
      const out = tf.tidy(made.run);
      await sync();
      tf.dispose(out);
    };
    try {
      // the first run is checked for WebGPU errors (and counts as a warm-up)
      be.device.pushErrorScope("out-of-memory");
      be.device.pushErrorScope("validation");
      const t0 = performance.now();
      let thrown: unknown;
      try {
        await step();
      } catch (e) {
        thrown = e;
      }
      const firstMs = performance.now() - t0;
      const validation = await be.device.popErrorScope();
      const oom = await be.device.popErrorScope();
      const err = validation ?? oom;
      if (err) throw new Error(`WebGPU ${validation ? "validation" : "out-of-memory"} error: ${err.message.split("\n")[0]}`);
      if (thrown) throw thrown;
      return await timeRuns(step, { ...timing, warmup: Math.max(0, timing.warmup - 1) }, firstMs);
    } finally {
      made.dispose();
      await sync().catch(() => undefined);
      trimFree(be);
    }
  }
}

/** Destroys the buffers tfjs keeps for reuse (its BufferManager only pools). */
function trimFree(be: Backend): void {
  const bm = be.bufferManager;
  for (const list of bm.freeBuffers.values()) {
    for (const b of list) {
      bm.numBytesAllocated -= b.size;
      b.destroy();
    }
    bm.numFreeBuffers -= list.length;
    list.length = 0;
  }
}

interface Built {
  run: () => TF.TensorContainer;
  dispose: () => void;
}

function build(tf: Tf, spec: OpSpec, maxBinding: number): Built {
  const held: TF.Tensor[] = [];
  const keep = <T extends TF.Tensor>(t: T): T => (held.push(t), t);
  const randn = (shape: number[], seed: number, std = 1): TF.Tensor =>
    keep(tf.tensor(randnArray(shape.reduce((a, b) => a * b, 1), seed, std), shape));
  const dispose = (): void => tf.dispose(held);
  switch (spec.op) {
    case "matmul": {
      const a = randn(spec.transA ? [spec.k, spec.m] : [spec.m, spec.k], 1);
      const b = randn(spec.transB ? [spec.n, spec.k] : [spec.k, spec.n], 2);
      return { run: () => tf.matMul(a, b, spec.transA, spec.transB), dispose };
    }
    case "attention": {
      const shape = [spec.b, spec.h, spec.t, spec.dh];
      const [q, k, v] = [randn(shape, 1), randn(shape, 2), randn(shape, 3)];
      const scale = 1 / Math.sqrt(spec.dh);
      const mask = spec.causal
        ? keep(tf.tidy(() => tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([spec.t, spec.t]), -1, 0)), -1e9)))
        : undefined;
      return {
        run: () => {
          let s = tf.mul(tf.matMul(q, k, false, true), scale); // (B, H, T, T)
          if (mask) s = tf.add(s, mask);
          return tf.matMul(tf.softmax(s), v); // (B, H, T, Dh)
        },
        dispose,
      };
    }
    case "layernorm": {
      const x = randn([spec.n, spec.c], 1);
      const w = randn([spec.c], 2);
      const b = randn([spec.c], 3);
      return {
        run: () => {
          const { mean, variance } = tf.moments(x, -1, true);
          return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), w), b);
        },
        dispose,
      };
    }
    case "softmax": {
      const x = randn([spec.n, spec.v], 1);
      return { run: () => tf.softmax(x), dispose };
    }
    case "cross-entropy": {
      const logits = randn([spec.n, spec.v], 1);
      const t = randArray(spec.n, 2, 0, spec.v);
      const flat = keep(tf.tensor1d(Int32Array.from(t, (x, i) => i * spec.v + Math.floor(x)), "int32"));
      return {
        run: () => tf.mean(tf.sub(tf.logSumExp(logits, 1), tf.gather(tf.reshape(logits, [-1]), flat))),
        dispose,
      };
    }
    case "infonce": {
      const img = randn([spec.b, spec.e], 1);
      const txt = randn([spec.b, spec.e], 2);
      const logScale = keep(tf.scalar(Math.log(1 / 0.07)));
      return {
        run: () => {
          const i = tf.div(img, tf.norm(img, 2, 1, true));
          const t = tf.div(txt, tf.norm(txt, 2, 1, true));
          const s = tf.exp(logScale);
          const logits = tf.mul(tf.matMul(i, t, false, true), s); // (B, B)
          const diag = tf.mul(tf.sum(tf.mul(i, t), 1), s);
          const rows = tf.mean(tf.sub(tf.logSumExp(logits, 1), diag));
          const cols = tf.mean(tf.sub(tf.logSumExp(logits, 0), diag));
          return tf.mul(tf.add(rows, cols), 0.5);
        },
        dispose,
      };
    }
    case "adamw": {
      // tfjs cannot bind more than maxBinding bytes: larger tensors (wte) are split into row blocks
      const pieces: number[][] = [];
      for (const s of spec.shapes) {
        const rows = s[0]!;
        const cols = s.slice(1).reduce((a, b) => a * b, 1);
        const per = Math.max(1, Math.floor(maxBinding / 4 / cols));
        for (let r = 0; r < rows; r += per) pieces.push([Math.min(per, rows - r), ...s.slice(1)]);
      }
      const vars = pieces.map((s, i) => ({
        p: keep(tf.variable(randn(s, 4 * i, 0.02))),
        g: randn(s, 4 * i + 1, 0.01),
        m: keep(tf.variable(tf.zeros(s))),
        v: keep(tf.variable(tf.zeros(s))),
      }));
      const [lr, b1, b2, eps, wd] = [1e-3, 0.9, 0.999, 1e-8, 0.01];
      let step = 0;
      return {
        run: () => {
          step++;
          const c1 = 1 - b1 ** step;
          const c2 = 1 - b2 ** step;
          for (const { p, g, m, v } of vars) {
            const m1 = tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1));
            const v1 = tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2));
            const upd = tf.add(tf.div(tf.div(m1, c1), tf.add(tf.sqrt(tf.div(v1, c2)), eps)), tf.mul(p, wd));
            p.assign(tf.sub(p, tf.mul(upd, lr)));
            m.assign(m1);
            v.assign(v1);
          }
          return [];
        },
        dispose,
      };
    }
    case "train_step_gpt2":
    case "train_step_eye":
      throw new Error(`tfjs: no ${spec.op} written for this peer`);
  }
}
