// The bench run: opens the device, runs the ceiling probes, then each selected family; every
// case is validated before it is timed, then timed on our engine and on each peer. Results
// stream to the console as a table and are returned (and written with --json).
import { writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { type Tensor, device, init } from "@llms-eye/tensor";
import { copyProbe, fmaProbe, PROBE_SIZES } from "./fma.js";
import {
  type BenchRecord,
  type OpSpec,
  type Peer,
  type Timing,
  type Work,
  ValidationError,
  errorText,
  formatHeader,
  formatRow,
  makeRecord,
  timeRuns,
} from "./harness.js";

/** full: the issue's shapes; quick: the same shapes, fewer runs and peers; tiny: tests. */
export type Preset = "full" | "quick" | "tiny";

/** One timed case on our engine: `setup` allocates inputs; `validate` checks against float64. */
export interface OurCase {
  op: string;
  shape: string;
  work: Work;
  /** Shown after the row, e.g. "transB (LM head)". */
  note?: string;
  /** The same operation for the peers; omitted when no peer has it. */
  spec?: OpSpec;
  /** Makes the inputs; every tensor passed to `keep` is disposed when the case ends. */
  setup(keep: Keep): Promise<Prepared> | Prepared;
}

export type Keep = <T extends Tensor>(t: T) => T;

export interface Prepared {
  /** Runs the op once and compares (a sample of) its output with the float64 reference. */
  validate(): Promise<void>;
  /** One timed run; resolves when the GPU has finished. */
  step(): Promise<void>;
  /** Releases what `keep` does not hold (e.g. optimizer state). */
  dispose?(): void;
}

export interface Family {
  name: string;
  /** Small odd-shaped checks of every kernel the family times; a failure skips its timing. */
  validate?(): Promise<void>;
  cases(preset: Preset): OurCase[];
}

export interface BenchOptions {
  preset: Preset;
  families: Family[];
  peers: Peer[];
  json?: string;
  /** Where lines go (console.log by default). */
  log?: (line: string) => void;
}

export interface BenchResult {
  records: BenchRecord[];
  /** Our cases that failed validation or threw. */
  failures: string[];
}

const TIMINGS: Record<Preset, { ours: Timing; peer: Timing; probe: Timing }> = {
  full: {
    ours: { warmup: 1, runs: 10, budgetMs: 20_000, minRuns: 3 },
    peer: { warmup: 1, runs: 5, budgetMs: 15_000, minRuns: 2 },
    probe: { warmup: 2, runs: 7, budgetMs: 3_000, minRuns: 3 },
  },
  quick: {
    ours: { warmup: 0, runs: 5, budgetMs: 2_500, minRuns: 1 },
    peer: { warmup: 1, runs: 3, budgetMs: 1_500, minRuns: 1 },
    probe: { warmup: 1, runs: 5, budgetMs: 1_000, minRuns: 3 },
  },
  tiny: {
    ours: { warmup: 0, runs: 2, budgetMs: 500, minRuns: 1 },
    peer: { warmup: 1, runs: 2, budgetMs: 500, minRuns: 1 },
    probe: { warmup: 1, runs: 2, budgetMs: 500, minRuns: 1 },
  },
};

export async function runBench(opts: BenchOptions): Promise<BenchResult> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const timing = TIMINGS[opts.preset];
  const records: BenchRecord[] = [];
  const failures: string[] = [];
  const dev = await init();
  const a = dev.adapter;
  log(`adapter: ${a.vendor} ${a.architecture} ${a.description}${a.software ? " (software)" : ""}; preset ${opts.preset}`);
  if (process.env.LP_NATIVE_VECTOR_WIDTH) log(`LP_NATIVE_VECTOR_WIDTH=${process.env.LP_NATIVE_VECTOR_WIDTH}`);
  // each engine's CPU threads, shown here and recorded (ours: none on a hardware GPU)
  const ours = a.software ? lavapipeThreads() : undefined;
  const onAdapter = ours === undefined ? `on ${a.description || a.vendor}` : `${ours} lavapipe threads`;
  const threads = new Map<string, number | undefined>([["llms-eye", ours]]);
  for (const p of opts.peers) threads.set(p.engine, p.threads === "adapter" ? ours : p.threads);
  const shown = opts.peers.map((p) => `${p.engine} ${p.threads === "adapter" ? `${onAdapter} (same adapter)` : (p.threads ?? "?")}`);
  log(`threads: ${[`llms-eye ${onAdapter}`, ...shown].join("; ")}`);
  log("");
  log(formatHeader());

  const ceiling: { gflops?: number; gbps?: number } = {};
  const emit = (r: BenchRecord, oursMs?: number, note?: string): void => {
    const n = threads.get(r.engine);
    if (n !== undefined) r.threads = n;
    records.push(r);
    log(formatRow(r, ceiling, oursMs, note));
  };

  // Ceilings first: each later figure is shown as a fraction of them.
  const probeSize = PROBE_SIZES[opts.preset === "tiny" ? "tiny" : "full"];
  try {
    const { record, chains } = await fmaProbe(probeSize, timing.probe);
    emit(record, undefined, `${chains} FMA chains per invocation (best of 8/16/24): the GFLOPS ceiling`);
    const copy = await copyProbe(probeSize, timing.probe);
    emit(copy.record, undefined, `vec4 copy, ${copy.layout} (best of 3), read + write: the GB/s ceiling`);
    ceiling.gflops = record.gflops;
    ceiling.gbps = copy.record.gbps;
  } catch (e) {
    failures.push(`probes: ${errorText(e)}`);
    log(`probe FAILED: ${errorText(e)}`);
  }

  for (const fam of opts.families) {
    let famError: string | undefined;
    if (fam.validate) {
      try {
        await fam.validate();
      } catch (e) {
        famError = `${e instanceof ValidationError ? "validation failed" : "error"}: ${errorText(e)}`;
        log(`${fam.name}: ${famError} — its cases are not timed`);
      }
    }
    for (const c of fam.cases(opts.preset)) {
      const base = { op: c.op, shape: c.shape, engine: "llms-eye" };
      let oursMs: number | undefined;
      if (famError) {
        failures.push(`${c.op} ${c.shape}: ${famError}`);
        emit({ ...base, median_ms: null, error: famError });
      } else {
        const r = await runOurs(c, timing.ours);
        if (r.error) failures.push(`${c.op} ${c.shape}: ${r.error}`);
        else oursMs = r.median_ms ?? undefined;
        emit(r, undefined, c.note);
      }
      if (!c.spec) continue;
      for (const peer of opts.peers) {
        const skip = peer.skip(c.spec, opts.preset !== "full");
        if (skip) {
          log(`${" ".repeat(31)}${peer.engine}: skipped (${skip})`);
          continue;
        }
        let r: BenchRecord;
        try {
          const t = await peer.bench(c.spec, timing.peer);
          r = makeRecord({ ...base, engine: peer.engine }, t.median_ms, c.work, t.runs);
        } catch (e) {
          r = { ...base, engine: peer.engine, median_ms: null, error: errorText(e) };
        }
        emit(r, oursMs);
      }
    }
  }
  for (const peer of opts.peers) await peer.close?.();

  if (opts.json) {
    writeFileSync(opts.json, `${JSON.stringify(records, null, 1)}\n`);
    log(`\nwrote ${records.length} records to ${opts.json}`);
  }
  if (failures.length > 0) {
    log(`\n${failures.length} of our cases FAILED:`);
    for (const f of failures) log(`  ${f}`);
  }
  log(`\nlive GPU bytes at the end: ${device().stats().liveBytes}`);
  return { records, failures };
}

/** lavapipe's (llvmpipe's) compute threads: LP_NUM_THREADS if a number, else one a CPU; 1 to 32 (0: the caller's). */
export function lavapipeThreads(env: NodeJS.ProcessEnv = process.env): number {
  const set = Number.parseInt(env.LP_NUM_THREADS ?? "", 10);
  return Math.min(Math.max(Number.isNaN(set) ? availableParallelism() : set, 1), 32);
}

/**
 * Sets up, validates, then times one case; any error becomes the record's `error`. The
 * validation run is the first warm-up (pipelines compiled, buffers pooled).
 */
export async function runOurs(c: OurCase, timing: Timing): Promise<BenchRecord> {
  const base = { op: c.op, shape: c.shape, engine: "llms-eye" };
  const held: Tensor[] = [];
  const keep: Keep = (t) => (held.push(t), t);
  let prepared: Prepared | undefined;
  try {
    prepared = await c.setup(keep);
    const t0 = performance.now();
    try {
      await prepared.validate();
    } catch (e) {
      const what = e instanceof ValidationError ? "validation failed" : "error";
      return { ...base, median_ms: null, error: `${what}: ${errorText(e)}` };
    }
    const t = await timeRuns(prepared.step, timing, performance.now() - t0);
    return makeRecord(base, t.median_ms, c.work, t.runs);
  } catch (e) {
    return { ...base, median_ms: null, error: `error: ${errorText(e)}` };
  } finally {
    prepared?.dispose?.();
    for (const t of held) t.dispose();
  }
}
