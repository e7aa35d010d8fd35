// The bench on tiny shapes: records have the documented form, validation catches a wrong
// kernel, peer failures are recorded instead of crashing, and the tfjs peer runs.
import { mkdtempSync, readFileSync } from "node:fs";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { device, fillInPlace, init, matmul, type Tensor } from "@llms-eye/tensor";
import { beforeAll, describe, expect, it } from "vitest";
import { type Family, lavapipeThreads, runBench, runOurs } from "../src/bench.js";
import { type BenchRecord, compare, type Peer, sampleIndices, type Timing, ValidationError } from "../src/harness.js";
import { FAMILIES } from "../src/families.js";
import { matmulCase } from "../src/matmul.js";
import { TfjsPeer } from "../src/tfjs.js";
import { torchPeer } from "../src/torch.js";

const TINY: Timing = { warmup: 0, runs: 2, budgetMs: 200, minRuns: 1 };
const quiet = { log: () => undefined };

/** The documented record form (README.md). */
function expectRecord(r: BenchRecord): void {
  const keys = ["op", "shape", "engine", "median_ms", "gflops", "gbps", "items_per_s", "runs", "threads", "error"];
  for (const k of Object.keys(r)) expect(keys, `unexpected key ${k}`).toContain(k);
  expect(r.op).toMatch(/^[a-z][a-z0-9_-]*$/);
  expect(r.shape).toMatch(/^(\d+(x\d+)*|[a-z][a-z0-9]*(-[a-z0-9]+)*)$/);
  expect(typeof r.engine).toBe("string");
  if (r.threads !== undefined) expect(Number.isInteger(r.threads) && r.threads > 0, `${r.engine} threads`).toBe(true);
  if (r.median_ms === null) {
    expect(typeof r.error).toBe("string");
  } else {
    expect(r.median_ms).toBeGreaterThan(0);
    expect(r.error).toBeUndefined();
    expect(r.gflops ?? r.gbps ?? r.items_per_s, `${r.op} has a throughput`).toBeGreaterThan(0);
    expect(Number.isInteger(r.runs)).toBe(true);
  }
}

beforeAll(async () => {
  await init();
});

describe("bench harness", () => {
  it("runs every family on tiny shapes and writes documented records", async () => {
    const families = await Promise.all(Object.values(FAMILIES).map((load) => load()));
    const json = join(mkdtempSync(join(tmpdir(), "bench-")), "out.json");
    const { records, failures } = await runBench({ preset: "tiny", families, peers: [], json, ...quiet });
    expect(failures).toEqual([]);
    const ops = new Set(records.map((r) => r.op));
    for (const op of ["fma-probe", "copy-probe", "matmul", "attention", "layernorm", "cross-entropy", "softmax", "infonce", "adamw", "train_step_gpt2", "train_step_eye"]) {
      expect(ops, op).toContain(op);
    }
    const threads = device().adapter.software ? lavapipeThreads() : undefined;
    for (const r of records) {
      expectRecord(r);
      expect(r.engine).toBe("llms-eye");
      expect(r.median_ms).not.toBeNull();
      expect(r.threads).toBe(threads);
    }
    expect(records.find((r) => r.op === "matmul")?.shape).toBe("33x17x45");
    expect(JSON.parse(readFileSync(json, "utf8"))).toEqual(records);
  });

  it("fails validation of a deliberately wrong kernel and does not time it", async () => {
    // row 0 (always sampled) of the product is overwritten
    const perturbed = (a: Tensor, b: Tensor, o?: Parameters<typeof matmul>[2]): Tensor => {
      const c = matmul(a, b, o);
      const row = c.rowsView(0, 1)!;
      fillInPlace(row, 1234);
      row.dispose();
      return c;
    };
    const r = await runOurs(matmulCase({ m: 33, k: 17, n: 45, transB: false }, perturbed), TINY);
    expectRecord(r);
    expect(r.median_ms).toBeNull();
    expect(r.error).toMatch(/^validation failed: ValidationError: matmul 33x17x45 rows \[0, .*got 1234/);
    const ok = await runOurs(matmulCase({ m: 33, k: 17, n: 45, transB: false }), TINY);
    expect(ok.median_ms).toBeGreaterThan(0);
  });

  it("skips a family whose small-shape validation fails, and records peer failures", async () => {
    const broken: Family = {
      name: "broken",
      validate: async () => compare("broken", [1, 2, 3], [1, 2, 4], { abs: 0, rel: 0 }),
      cases: () => [matmulCase({ m: 3, k: 2, n: 5, transB: false })],
    };
    const failing: Peer = {
      engine: "fake",
      threads: 3,
      skip: () => undefined,
      bench: async () => {
        throw new Error("binding too large");
      },
    };
    const { records, failures } = await runBench({ preset: "tiny", families: [broken], peers: [failing], ...quiet });
    const [ours, peer] = records.filter((r) => r.op === "matmul");
    expect(ours).toMatchObject({ engine: "llms-eye", median_ms: null, error: expect.stringMatching(/^validation failed: .*index 2 got 3 want 4/) });
    expect(peer).toMatchObject({ engine: "fake", median_ms: null, error: "Error: binding too large", threads: 3 });
    expect(failures).toHaveLength(1);
  });

  it("counts lavapipe's threads as Mesa does", () => {
    expect(lavapipeThreads({})).toBe(availableParallelism());
    expect(lavapipeThreads({ LP_NUM_THREADS: "5" })).toBe(5);
    expect(lavapipeThreads({ LP_NUM_THREADS: "0" })).toBe(1);
    expect(lavapipeThreads({ LP_NUM_THREADS: "64" })).toBe(32);
  });

  it("compare handles NaN and names the worst index", () => {
    expect(() => compare("x", [1, NaN], [1, NaN], { abs: 0, rel: 0 })).not.toThrow();
    expect(() => compare("x", [1, NaN], [1, 2], { abs: 1, rel: 0 })).toThrow(ValidationError);
    expect(() => compare("x", [1, 5, 2.5], [1, 2, 2], { abs: 0.1, rel: 0 })).toThrow(/index 1 got 5 want 2/);
    expect(sampleIndices(1000, 4)).toHaveLength(4);
    expect(sampleIndices(3, 4)).toEqual([0, 1, 2]);
  });
});

describe("tfjs peer", () => {
  it("times a matmul and a layernorm on tfjs-webgpu", async () => {
    const peer = new TfjsPeer();
    const mm = await peer.bench({ op: "matmul", m: 16, k: 8, n: 12, transB: true, transA: false }, TINY);
    expect(mm.median_ms).toBeGreaterThan(0);
    const ln = await peer.bench({ op: "layernorm", n: 4, c: 32 }, TINY);
    expect(ln.runs).toBeGreaterThanOrEqual(1);
    expect(peer.skip({ op: "matmul", m: 2048, k: 2048, n: 2048, transB: false, transA: false }, true)).toMatch(/--quick/);
    expect(peer.skip({ op: "matmul", m: 2048, k: 2048, n: 2048, transB: false, transA: false }, false)).toBeUndefined();
  });
});

// Debian's python3-torch is optional: without it the peer is skipped with a note (checked too).
const torch = torchPeer();
describe("torch peer", () => {
  it("says why it is skipped, or names the PyTorch it found", () => {
    expect(torch.note).toMatch(torch.peer ? /^torch peer: PyTorch \S+ on the CPU/ : /^torch peer skipped: .*import torch/);
    if (torch.peer) expect(torch.peer.threads).toBe(cpus().length); // every core: os.cpu_count()
  });

  it.skipIf(!torch.peer)("times every op spec on tiny shapes", async () => {
    const specs: Parameters<Peer["bench"]>[0][] = [
      { op: "matmul", m: 16, k: 8, n: 12, transB: true, transA: false },
      { op: "attention", b: 1, h: 2, t: 8, dh: 4, causal: true },
      { op: "layernorm", n: 4, c: 32 },
      { op: "softmax", n: 4, v: 33 },
      { op: "cross-entropy", n: 4, v: 33 },
      { op: "infonce", b: 5, e: 8 },
      { op: "adamw", shapes: [[3, 4], [5]] },
      { op: "train_step_gpt2", layers: 1, width: 16, heads: 2, vocab: 37, positions: 8, batch: 2, seq: 8 },
      { op: "train_step_eye", layers: 1, width: 16, heads: 2, vocab: 37, positions: 16, batch: 3, imageTokens: 4, visionWidth: 8, captionLen: 3, embedDim: 8 },
    ];
    for (const spec of specs) {
      const r = await torch.peer!.bench(spec, TINY);
      expect(r.median_ms, spec.op).toBeGreaterThan(0);
      expect(r.runs).toBeGreaterThanOrEqual(1);
    }
  });
});
