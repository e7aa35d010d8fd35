import fc from "fast-check";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  DTypeError,
  ReleasedError,
  ShapeError,
  argmax,
  argmaxRef,
  device,
  max,
  mean,
  min,
  reduceConfig,
  reduceRef,
  sum,
  tensor,
} from "../src/index.js";
import { FC, TOL, TOL_LONG, assertClose, checkOp, randomValues, ready, shapeArb } from "./helpers.js";

beforeAll(async () => {
  await ready;
});
afterEach(() => {
  reduceConfig.rows = "auto";
});

const size = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);
const OPS = { sum, mean, max, min } as const;
type Kind = keyof typeof OPS;
const ROWS = ["invocation", "workgroup"] as const;

// a shape, a subset of its axes (or undefined = all), keepDims, and the row layout
const caseArb = shapeArb(1, 4, 33).chain((shape) =>
  fc.record({
    shape: fc.constant(shape),
    axes: fc.option(fc.subarray(shape.map((_, i) => i)), { nil: undefined }),
    negative: fc.boolean(),
    keepDims: fc.boolean(),
    rows: fc.constantFrom(...ROWS),
    seed: fc.nat(),
  }),
);

const outShapeOf = (shape: number[], axes: number[], keepDims: boolean): number[] =>
  shape.flatMap((d, i) => (axes.includes(i) ? (keepDims ? [1] : []) : [d]));

describe("sum, mean, max, min", () => {
  for (const kind of Object.keys(OPS) as Kind[]) {
    it(`${kind} matches its float64 reference over random shapes and axes`, async () => {
      await fc.assert(
        fc.asyncProperty(caseArb, async ({ shape, axes, negative, keepDims, rows, seed }) => {
          reduceConfig.rows = rows;
          const all = axes ?? shape.map((_, i) => i);
          const arg = axes && negative ? axes.map((a) => a - shape.length) : axes;
          await checkOp({
            what: `${kind} ${JSON.stringify(shape)} axes=${JSON.stringify(arg)} keepDims=${keepDims} rows=${rows}`,
            inputs: [{ shape, data: randomValues(size(shape), seed, 2) }],
            gpu: ([x]) => OPS[kind](x!, arg, keepDims),
            ref: ([x]) => reduceRef(kind, x!, shape, all),
            tol: TOL.reduce,
            shape: outShapeOf(shape, all, keepDims),
          });
        }),
        { ...FC, numRuns: 12 }, // x4 kinds, each run draws shape, axes and layout
      );
    });
  }

  it("sums, maxes and mins i32 exactly", async () => {
    const shape = [3, 5, 7];
    const data = Int32Array.from(randomValues(size(shape), 9, 1000), Math.round);
    for (const kind of ["sum", "max", "min"] as const) {
      for (const axes of [[0], [1], [2], [0, 2], [0, 1, 2]]) {
        await checkOp({
          what: `${kind} i32 axes=${axes}`,
          inputs: [{ shape, data, dtype: "i32" }],
          gpu: ([x]) => {
            const y = OPS[kind](x!, axes);
            expect(y.dtype).toBe("i32");
            return y;
          },
          ref: () => reduceRef(kind, data, shape, axes),
          tol: TOL.exact,
        });
      }
    }
  });

  it("treats [] as no axes and size-1 dims as free", async () => {
    const shape = [1, 4, 1, 3];
    const data = randomValues(12, 4);
    await checkOp({ what: "sum []", inputs: [{ shape, data }], gpu: ([x]) => sum(x!, []), ref: ([x]) => x!, tol: TOL.exact, shape });
    await checkOp({
      what: "mean [0, 2]",
      inputs: [{ shape, data }],
      gpu: ([x]) => mean(x!, [0, 2], true),
      ref: ([x]) => x!,
      tol: TOL.elementwise,
      shape,
    });
    const s = sum(tensor([1, 2, 3]));
    expect(s.shape).toEqual([]);
    expect(await s.item()).toBe(6);
    s.dispose();
  });

  for (const rows of ROWS) {
    it(`sums 1e6 elements to one accurately (${rows} rows)`, async () => {
      reduceConfig.rows = rows;
      const n = 1_000_000;
      const data = Float32Array.from(randomValues(n, 77), (v) => v + 1.5); // in [0.5, 2.5)
      let want = 0;
      for (const v of data) want += v;
      const x = tensor(data);
      const s = sum(x);
      const m = mean(x);
      // f32 tree of Kahan-compensated segments: well inside 1e-6 relative for positive data
      assertClose([await s.item()], [want], TOL_LONG.reduceLong, "sum 1e6");
      assertClose([await m.item()], [want / n], TOL_LONG.reduceLong, "mean 1e6");
      for (const t of [x, s, m]) t.dispose();
    });
  }
});

describe("argmax", () => {
  it("returns the first maximum along any axis", async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb(1, 4, 33), fc.nat(), fc.nat(), fc.constantFrom(...ROWS), async (shape, ax, seed, rows) => {
        reduceConfig.rows = rows;
        const axis = ax % shape.length;
        // few distinct values, so ties are common
        const data = randomValues(size(shape), seed, 3).map(Math.round);
        await checkOp({
          what: `argmax ${JSON.stringify(shape)} axis=${axis} rows=${rows}`,
          inputs: [{ shape, data }],
          gpu: ([x]) => {
            const y = argmax(x!, axis - shape.length);
            expect(y.dtype).toBe("i32");
            return y;
          },
          ref: ([x]) => argmaxRef(x!, shape, axis),
          tol: TOL.exact,
          shape: shape.filter((_, i) => i !== axis),
        });
      }),
      { ...FC, numRuns: 16 }, // ties drawn on purpose: 16 runs reach every axis and layout
    );
  });

  it("handles a 50257-wide row, -inf and keepDims", async () => {
    const V = 50257;
    const data = Float32Array.from(randomValues(2 * V, 5));
    data[V + 50000] = 7;
    data[V + 50001] = 7;
    data[12345] = 3;
    const x = tensor(data, [2, V]);
    const a = argmax(x, -1, true);
    expect(a.shape).toEqual([2, 1]);
    expect(Array.from(await a.toArray())).toEqual([12345, 50000]);
    const ninf = tensor([-Infinity, -Infinity, -Infinity]);
    const b = argmax(ninf);
    expect(await b.item()).toBe(0);
    const m = max(ninf);
    expect(await m.item()).toBe(-Infinity);
    for (const t of [x, a, ninf, b, m]) t.dispose();
  });
});

describe("errors", () => {
  it("rejects bad axes, dtypes and released tensors", () => {
    const x = tensor(new Float32Array(6), [2, 3]);
    expect(() => sum(x, [0, -2])).toThrow(ShapeError);
    expect(() => sum(x, [0, -2])).toThrow("sum: expected distinct axes, got [0, -2] (x=[2, 3])");
    expect(() => max(x, 2)).toThrow("max: expected axis in [-2, 1], got 2");
    expect(() => argmax(x, -3)).toThrow(/argmax: expected axis in \[-2, 1\], got -3/);
    const i = tensor([1, 2], [2], "i32");
    expect(() => mean(i)).toThrow(DTypeError);
    expect(() => mean(i)).toThrow("mean: expected dtype f32 for x, got i32 (shape [2])");
    const u = tensor(new Uint32Array([1, 2]));
    expect(() => sum(u)).toThrow(/sum: expected dtype f32 or i32 for x, got u32/);
    x.dispose();
    expect(() => sum(x)).toThrow(ReleasedError);
    expect(() => argmax(x)).toThrow("argmax: expected a live tensor for x, got one released by dispose() (shape [2, 3])");
    i.dispose();
    u.dispose();
  });
});

describe("tensors above one storage binding", () => {
  it("reduces a [1600, 50257] tensor (321 MB) over rows and columns in chunks", async () => {
    const R = 1600;
    const V = 50257;
    expect(R * V * 4).toBeGreaterThan(device().maxBinding);
    // row r = b rotated left by r, plus r % 7: values j/1024 + k are exact in f32, rows differ,
    // and the host fills it by copying (b has one largest value, at index 999)
    const b = Float64Array.from({ length: V }, (_, c) => (c % 1000) / 1024 - (c === 999 ? 0 : c > 999 ? 1 / 4096 : 0));
    const shifted = Array.from({ length: 7 }, (_, k) => Float32Array.from(b, (v) => v + k));
    const host = new Float32Array(R * V);
    for (let r = 0; r < R; r++) {
      const src = shifted[r % 7]!;
      const rot = r % V;
      host.set(src.subarray(rot), r * V);
      host.set(src.subarray(0, rot), r * V + V - rot);
    }
    const x = tensor(host, [R, V], "f32");
    const s = sum(x, -1);
    const m = max(x, 1);
    const a = argmax(x);
    const c = sum(x, 0);
    const b32 = Float64Array.from(Float32Array.from(b));
    const sb = b32.reduce((p, v) => p + v, 0);
    assertClose(await s.toArray(), Float64Array.from({ length: R }, (_, r) => sb + V * (r % 7)), TOL.reduce, "row sums");
    assertClose(await m.toArray(), Float64Array.from({ length: R }, (_, r) => b32[999]! + (r % 7)), TOL.exact, "row max");
    expect(Array.from(await a.toArray())).toEqual(Array.from({ length: R }, (_, r) => (999 - r + V) % V));
    // column c sums b[(c + r) % V] + r % 7 over r
    let k7 = 0;
    for (let r = 0; r < R; r++) k7 += r % 7;
    const prefix = new Float64Array(V + R + 1);
    for (let i = 0; i < V + R; i++) prefix[i + 1] = prefix[i]! + b32[i % V]!;
    const want = Float64Array.from({ length: V }, (_, col) => k7 + prefix[col + R]! - prefix[col]!);
    assertClose(await c.toArray(), want, TOL.reduce, "column sums");
    for (const t of [x, s, m, a, c]) t.dispose();
  });
});
