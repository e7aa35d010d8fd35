// The bench harness: records, timing (median after warm-up, each run ending when the GPU has
// finished), validation against float64 references, and the streamed results table.
// Families (matmul.ts, …) describe cases; peers (tfjs.ts, torch.ts) time the same OpSpec.

/** One result, as written by `--json` (one JSON array of these). */
export interface BenchRecord {
  op: string;
  /** Dimensions joined by "x", e.g. "2048x2048x2048" (matmul: M x K x N), or a named shape ("distilgpt2-b8-t64"). */
  shape: string;
  engine: string;
  /** Median wall time of one run, GPU work included; null when the case failed. */
  median_ms: number | null;
  gflops?: number;
  gbps?: number;
  items_per_s?: number;
  /** Timed runs behind the median. */
  runs?: number;
  /** CPU threads the engine computed with: lavapipe's pool (ours, tfjs), torch's intra-op threads. */
  threads?: number;
  /** Why the case has no timing: a validation failure or an engine error. */
  error?: string;
}

/** Napkin-math work of one run: flops (compute-bound), bytes moved (memory-bound), items. */
export interface Work {
  flops?: number;
  bytes?: number;
  items?: number;
}

/** The operation a case times, in engine-neutral terms: peers implement these. */
export type OpSpec =
  | { op: "matmul"; m: number; k: number; n: number; transB: boolean; transA: boolean }
  | { op: "attention"; b: number; h: number; t: number; dh: number; causal: boolean }
  | { op: "layernorm"; n: number; c: number }
  | { op: "softmax"; n: number; v: number }
  | { op: "cross-entropy"; n: number; v: number }
  | { op: "infonce"; b: number; e: number }
  | { op: "adamw"; shapes: number[][] }
  | { op: "train_step_gpt2"; layers: number; width: number; heads: number; vocab: number; positions: number; batch: number; seq: number }
  | {
      op: "train_step_eye"; layers: number; width: number; heads: number; vocab: number; positions: number;
      /** B images with one caption each: K cached feature rows of width Dv, L caption tokens, heads to E. */
      batch: number; imageTokens: number; visionWidth: number; captionLen: number; embedDim: number;
    };

export interface Timing {
  warmup: number;
  /** Timed runs wanted… */
  runs: number;
  /** …but no more than fit in this many ms (estimated from the last warm-up), and at least minRuns. */
  budgetMs: number;
  minRuns: number;
}

/** A comparison engine. `bench` times `spec` (inputs are its own) or throws. */
export interface Peer {
  readonly engine: string;
  /** CPU threads it computes with, for the notes and records; "adapter": our adapter's, as ours (tfjs). */
  readonly threads?: number | "adapter";
  /** A reason to skip `spec` (unsupported, too slow for --quick), or undefined to run it. */
  skip(spec: OpSpec, quick: boolean): string | undefined;
  bench(spec: OpSpec, timing: Timing): Promise<{ median_ms: number; runs: number }>;
  close?(): Promise<void>;
}

export class ValidationError extends Error {
  override name = "ValidationError";
}

export type Tol = { abs: number; rel: number };

/**
 * Throws ValidationError unless |got - want| <= abs + rel·|want| everywhere (NaN only matches
 * NaN, ±Infinity only itself), naming the worst index.
 */
export function compare(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: Tol): void {
  if (got.length !== want.length) throw new ValidationError(`${what}: expected ${want.length} values, got ${got.length}`);
  let worst = -1;
  let worstExcess = -Infinity;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (g === w || (Number.isNaN(g) && Number.isNaN(w))) continue;
    const excess = Math.abs(g - w) - (tol.abs + tol.rel * Math.abs(w));
    const bad = !(excess <= 0); // NaN against a number, or too far
    if (bad && (worst < 0 || Number.isNaN(excess) || excess > worstExcess)) {
      worst = i;
      worstExcess = Number.isNaN(excess) ? Infinity : excess;
    }
  }
  if (worst >= 0) {
    throw new ValidationError(
      `${what}: index ${worst} got ${got[worst]} want ${want[worst]} (tol abs ${tol.abs} rel ${tol.rel})`,
    );
  }
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/**
 * Runs `step` `warmup` times, then times it; every call of `step` must end only when its GPU
 * work has finished (a sync or a read back). Returns the median and the number of timed runs.
 * `priorMs`: a run's time measured by the caller, used when there is no warm-up here.
 */
export async function timeRuns(step: () => Promise<void>, t: Timing, priorMs = 0): Promise<{ median_ms: number; runs: number }> {
  let last = priorMs;
  for (let i = 0; i < t.warmup; i++) {
    const t0 = performance.now();
    await step();
    last = performance.now() - t0;
  }
  const fit = last > 0 ? Math.floor(t.budgetMs / last) : t.runs;
  const runs = Math.max(t.minRuns, Math.min(t.runs, fit));
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await step();
    times.push(performance.now() - t0);
  }
  return { median_ms: median(times), runs };
}

/** A record with throughput derived from `work` (rounded for reading). */
export function makeRecord(base: Omit<BenchRecord, "median_ms">, ms: number | null, work: Work, runs?: number): BenchRecord {
  const r: BenchRecord = { ...base, median_ms: ms === null ? null : round(ms, 4) };
  if (ms !== null && ms > 0) {
    if (work.flops !== undefined) r.gflops = round(work.flops / ms / 1e6, 4);
    if (work.bytes !== undefined) r.gbps = round(work.bytes / ms / 1e6, 4);
    if (work.items !== undefined) r.items_per_s = round((work.items / ms) * 1e3, 4);
  }
  if (runs !== undefined) r.runs = runs;
  return r;
}

const round = (x: number, digits: number): number => Number(x.toPrecision(digits));

export const shapeKey = (...dims: number[]): string => dims.join("x");

export const errorText = (e: unknown): string => (e instanceof Error ? `${e.name}: ${e.message}` : String(e)).split("\n")[0]!.slice(0, 300);

// ---------------------------------------------------------------------------------------------
// Table: rows are printed as results arrive, in fixed-width columns.

const COLS: Array<[string, number]> = [
  ["op", 15],
  ["shape", 16],
  ["engine", 12],
  ["median ms", 11],
  ["throughput", 14],
  ["of ceiling", 11],
  ["ours faster", 12],
];

const pad = (s: string, w: number, right = false): string => (s.length >= w ? s + " " : right ? s.padStart(w - 1) + " " : s.padEnd(w));

export function formatHeader(): string {
  const line = COLS.map(([h, w], i) => pad(h, w, i >= 3)).join("");
  return `${line}\n${"-".repeat(line.length)}`;
}

export function fmtNum(x: number): string {
  if (x >= 100) return x.toFixed(0);
  if (x >= 10) return x.toFixed(1);
  if (x >= 1) return x.toFixed(2);
  return x.toPrecision(2);
}

/** One table row; `ceiling` is the probe's figure in the record's unit, `oursMs` our median. */
export function formatRow(r: BenchRecord, ceiling: { gflops?: number; gbps?: number }, oursMs?: number, note = ""): string {
  let thr = "";
  let frac = "";
  if (r.gflops !== undefined) {
    thr = `${fmtNum(r.gflops)} GFLOPS`;
    if (ceiling.gflops) frac = `${((100 * r.gflops) / ceiling.gflops).toFixed(1)}%`;
  } else if (r.gbps !== undefined) {
    thr = `${fmtNum(r.gbps)} GB/s`;
    if (ceiling.gbps) frac = `${((100 * r.gbps) / ceiling.gbps).toFixed(1)}%`;
  } else if (r.items_per_s !== undefined) {
    thr = `${fmtNum(r.items_per_s)} /s`;
  }
  const ratio = oursMs !== undefined && r.median_ms !== null && r.engine !== "llms-eye" ? `${fmtNum(r.median_ms / oursMs)}x` : "";
  const cells = [r.op, r.shape, r.engine, r.median_ms === null ? "FAILED" : fmtNum(r.median_ms), thr, frac, ratio];
  const line = cells.map((c, i) => pad(c, COLS[i]![1], i >= 3)).join("");
  const rate = r.gflops !== undefined && r.items_per_s !== undefined ? `${fmtNum(r.items_per_s)} items/s` : "";
  const tail = r.error ? ` ${r.error}` : [rate, note].filter(Boolean).map((s) => ` ${s}`).join(";");
  return (line + tail).trimEnd();
}

/** Up to `k` distinct indices in [0, n), sorted: the first, the last and seeded random ones. */
export function sampleIndices(n: number, k: number, seed = 1): number[] {
  if (n <= k) return [...Array(n).keys()];
  const out = new Set<number>([0, n - 1]);
  let s = seed >>> 0 || 1;
  while (out.size < k) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.add(s % n);
  }
  return [...out].sort((a, b) => a - b);
}

/** Rows `rows` of a row-major [*, width] array, concatenated. */
export function pickRows(x: ArrayLike<number>, width: number, rows: readonly number[]): Float64Array {
  const out = new Float64Array(rows.length * width);
  rows.forEach((r, i) => {
    for (let j = 0; j < width; j++) out[i * width + j] = x[r * width + j]!;
  });
  return out;
}
