// Test helpers: device set-up, float64 comparison with named tolerance presets, shape arbitraries.
import fc from "fast-check";
import { expect } from "vitest";
import { init, type Tensor } from "../src/index.js";

export const ready = init();

/** Named tolerances: |got - want| <= abs + rel * |want|. */
export const TOL = {
  exact: { abs: 0, rel: 0 },
  /** elementwise f32 math against float64 (a few ulps, transcendental builtins). */
  elementwise: { abs: 1e-6, rel: 1e-5 },
  /** reductions and dot products over up to ~1e4 terms, f32 accumulation. */
  reduce: { abs: 1e-5, rel: 1e-4 },
  /** matmul/attention: long f32 dot products of O(1) values. */
  matmul: { abs: 1e-4, rel: 1e-4 },
} as const;
export type Tol = { abs: number; rel: number };

export function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tol, what = "values"): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  let worst = -1;
  let worstErr = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    const err = Math.abs(g - w) - (tol.abs + tol.rel * Math.abs(w));
    if (!(err <= 0) && (Number.isNaN(err) ? !(Number.isNaN(g) && Number.isNaN(w)) && !(g === w) : true)) {
      if (worst < 0 || err > worstErr || Number.isNaN(err)) {
        worst = i;
        worstErr = err;
      }
    }
  }
  if (worst >= 0) {
    expect.fail(`${what}: index ${worst} got ${got[worst]} want ${want[worst]} (tol abs ${tol.abs} rel ${tol.rel})`);
  }
}

export async function expectTensor(t: Tensor, want: ArrayLike<number>, tol: Tol, what?: string): Promise<void> {
  assertClose(await t.toArray(), want, tol, what ?? t.toString());
}

/** Dimension sizes worth testing: 1, primes, and sizes around 4/16/32/64-wide tile edges. */
export const EDGE_DIMS = [1, 2, 3, 4, 5, 7, 8, 13, 15, 16, 17, 31, 32, 33, 45, 63, 64, 65, 127, 128, 129];
export const dimArb = (max = 129): fc.Arbitrary<number> => fc.oneof(fc.constantFrom(...EDGE_DIMS.filter((d) => d <= max)), fc.integer({ min: 1, max }));
export const shapeArb = (minRank = 1, maxRank = 4, maxDim = 33): fc.Arbitrary<number[]> =>
  fc.array(dimArb(maxDim), { minLength: minRank, maxLength: maxRank });

/** Deterministic pseudo-random float64 values in [-scale, scale). */
export function randomValues(n: number, seed: number, scale = 1): Float64Array {
  let a = seed >>> 0 || 1;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    a ^= a << 13; a >>>= 0;
    a ^= a >>> 17;
    a ^= a << 5; a >>>= 0;
    out[i] = ((a / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

/** fast-check settings: few runs (each run is a GPU round trip), reproducible. */
export const FC = { numRuns: 25, seed: 42 } as const;

export interface RefInput {
  shape: number[];
  data: Float64Array | Int32Array;
  dtype?: "f32" | "i32" | "u32";
}

/**
 * The generic runner: uploads `inputs`, runs `gpu` on them, compares with `ref` (float64 over the
 * same values rounded to f32) and disposes everything.
 */
export async function checkOp(opts: {
  what: string;
  inputs: RefInput[];
  gpu: (ts: Tensor[]) => Tensor;
  ref: (xs: Float64Array[]) => ArrayLike<number>;
  tol: Tol;
  shape?: number[];
}): Promise<void> {
  const { tensor } = await import("../src/index.js");
  const ts = opts.inputs.map((i) =>
    tensor(i.dtype && i.dtype !== "f32" ? Array.from(i.data) : Float32Array.from(i.data), i.shape, i.dtype ?? "f32"),
  );
  const rounded = opts.inputs.map((i) => Float64Array.from(i.dtype && i.dtype !== "f32" ? i.data : Float32Array.from(i.data)));
  try {
    const out = opts.gpu(ts);
    try {
      if (opts.shape) expect(out.shape, `${opts.what}: shape`).toEqual(opts.shape);
      assertClose(await out.toArray(), opts.ref(rounded), opts.tol, opts.what);
    } finally {
      out.dispose();
    }
  } finally {
    for (const t of ts) t.dispose();
  }
}

// ---- large tensors (above one storage binding): partial read back ----
import { device as deviceLarge } from "../src/index.js";
import type { AnyTypedArray } from "../src/index.js";

/** Reads elements [start, start + count) of `t` (raw 32-bit words as `t.dtype`) without reading the rest. */
export async function readRange(t: Tensor, start: number, count: number): Promise<AnyTypedArray> {
  const { binding, skip } = t.rangeBinding("readRange", "t", start, count);
  const bytes = await deviceLarge().recorder.read(binding.buffer, binding.offset + skip * 4, count * 4);
  return t.dtype === "f32" ? new Float32Array(bytes) : t.dtype === "i32" ? new Int32Array(bytes) : new Uint32Array(bytes);
}

/**
 * Presets added for long reductions: `reduceLong` is one f32 sum of ~1e6 same-sign terms
 * (tree of Kahan-compensated segments; the result's own f32 rounding is 6e-8 relative).
 */
export const TOL_LONG = { reduceLong: { abs: 0, rel: 1e-6 } } as const;
