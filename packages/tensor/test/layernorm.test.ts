import fc from "fast-check";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  DTypeError,
  ReleasedError,
  ShapeError,
  device,
  layerNorm,
  layerNormConfig,
  layerNormRef,
  layerNormStatsRef,
  layerNormWithStats,
  tensor,
} from "../src/index.js";
import { FC, TOL, assertClose, checkOp, dimArb, randomValues, readRange, ready, shapeArb } from "./helpers.js";

beforeAll(async () => {
  await ready;
});
afterEach(() => {
  layerNormConfig.rows = "auto";
});

const size = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);
const LAYOUTS = ["invocation", "workgroup"] as const;

describe("layerNorm", () => {
  it("matches its float64 reference over random shapes, both layouts", async () => {
    await fc.assert(
      fc.asyncProperty(
        shapeArb(0, 2, 17),
        dimArb(1100),
        fc.constantFrom(...LAYOUTS),
        fc.nat(),
        fc.double({ min: -50, max: 50, noNaN: true }),
        async (lead, C, rows, seed, offset) => {
          layerNormConfig.rows = rows;
          const shape = [...lead, C];
          // an offset far from 0 checks the two-pass variance
          const x = randomValues(size(shape), seed, 3).map((v) => v + offset);
          const w = randomValues(C, seed + 1);
          const b = randomValues(C, seed + 2);
          await checkOp({
            what: `layerNorm ${JSON.stringify(shape)} ${rows}`,
            inputs: [
              { shape, data: x },
              { shape: [C], data: w },
              { shape: [C], data: b },
            ],
            gpu: ([xt, wt, bt]) => layerNorm(xt!, wt!, bt!),
            ref: ([xs, ws, bs]) => layerNormRef(xs!, shape, ws!, bs!),
            tol: TOL.reduce,
            shape,
          });
        },
      ),
      { ...FC, numRuns: 16 }, // each run is a layout, a C up to 1100 and an offset
    );
  });

  for (const rows of LAYOUTS) {
    it(`returns mean and rstd per row, honours eps on constant rows (${rows})`, async () => {
      layerNormConfig.rows = rows;
      const shape = [2, 3, 5];
      const data = Float64Array.from(Float32Array.from(randomValues(30, 3, 2)));
      data.fill(4, 5, 10); // row 1 constant: var 0, rstd = 1/sqrt(eps), y = bias
      const x = tensor(Float32Array.from(data), shape);
      const w = tensor([1, 2, 3, 4, 5]);
      const b = tensor([0.5, -0.5, 0, 1, 2]);
      const eps = 1e-3;
      const { out, mean, rstd } = layerNormWithStats(x, w, b, eps);
      expect(mean.shape).toEqual([6]);
      expect(rstd.shape).toEqual([6]);
      const want = layerNormStatsRef(data, shape, eps);
      assertClose(await mean.toArray(), want.mean, TOL.reduce, "mean");
      assertClose(await rstd.toArray(), want.rstd, TOL.reduce, "rstd");
      expect((await rstd.toArray())[1]).toBeCloseTo(1 / Math.sqrt(eps), 3);
      const y = await out.toArray();
      assertClose(y, layerNormRef(data, shape, [1, 2, 3, 4, 5], [0.5, -0.5, 0, 1, 2], eps), TOL.reduce, "out");
      assertClose(y.subarray(5, 10), [0.5, -0.5, 0, 1, 2], TOL.exact, "constant row");
      for (const t of [x, w, b, out, mean, rstd]) t.dispose();
    });
  }

  it("rejects bad shapes, dtypes and released tensors", () => {
    const x = tensor(new Float32Array(12), [3, 4]);
    const w = tensor(new Float32Array(4));
    const w5 = tensor(new Float32Array(5));
    const b = tensor(new Float32Array(4));
    expect(() => layerNorm(x, w5, b)).toThrow(ShapeError);
    expect(() => layerNorm(x, w5, b)).toThrow("layerNorm: expected weight and bias of shape [4] (the last dim of x), got weight=[5], bias=[4] (x=[3, 4])");
    const w2 = tensor(new Float32Array(4), [1, 4]);
    expect(() => layerNormWithStats(x, w2, b)).toThrow("layerNormWithStats: expected rank 1 for weight, got 2 (shape [1, 4])");
    const xi = tensor(new Int32Array(4), [1, 4]);
    expect(() => layerNorm(xi, w, b)).toThrow(DTypeError);
    expect(() => layerNorm(xi, w, b)).toThrow("layerNorm: expected dtype f32 for x, got i32 (shape [1, 4])");
    b.dispose();
    expect(() => layerNorm(x, w, b)).toThrow(ReleasedError);
    expect(() => layerNorm(x, w, b)).toThrow(/layerNorm: expected a live tensor for bias/);
    for (const t of [x, w, w5, w2, xi]) t.dispose();
  });

  it("normalises x above one storage binding in chunks of rows", async () => {
    const C = 768;
    const R = 43700; // 134.2 MB; a chunk holds 43690 rows
    expect(R * C * 4).toBeGreaterThan(device().maxBinding);
    // row r = a base row rotated by r % C, scaled by 1 + r % 5 (host fill by copying)
    const base = Float32Array.from(randomValues(C, 11, 2));
    const scaled = Array.from({ length: 5 }, (_, k) => Float32Array.from(base, (v) => v * (1 + k) + k));
    const host = new Float32Array(R * C);
    for (let r = 0; r < R; r++) {
      const src = scaled[r % 5]!;
      const rot = r % C;
      host.set(src.subarray(rot), r * C);
      host.set(src.subarray(0, rot), r * C + C - rot);
    }
    const x = tensor(host, [R, C], "f32");
    const w = tensor(Float32Array.from(randomValues(C, 12), (v) => v + 1));
    const b = tensor(Float32Array.from(randomValues(C, 13)));
    const ws = await w.toArray();
    const bs = await b.toArray();
    const { out, mean, rstd } = layerNormWithStats(x, w, b);
    const means = await mean.toArray();
    const rstds = await rstd.toArray();
    for (const r of [0, 1, 43688, 43689, 43690, 43691, R - 1]) {
      const row = host.subarray(r * C, (r + 1) * C);
      const got = await readRange(out, r * C, C);
      assertClose(got, layerNormRef(row, [1, C], ws, bs), TOL.reduce, `row ${r}`);
      const st = layerNormStatsRef(row, [1, C]);
      assertClose([means[r]!, rstds[r]!], [st.mean[0]!, st.rstd[0]!], TOL.reduce, `stats of row ${r}`);
    }
    for (const t of [x, w, b, out, mean, rstd]) t.dispose();
  });
});
