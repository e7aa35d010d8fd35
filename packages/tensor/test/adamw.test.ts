import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  DTypeError,
  ReleasedError,
  ShapeError,
  adamw,
  adamwRef,
  device,
  sgd,
  sgdRef,
  tensor,
  zeros,
  type AdamWOptions,
  type SGDOptions,
  type Tensor,
} from "../src/index.js";
import { FC, TOL, assertClose, randomValues, readRange, ready, shapeArb } from "./helpers.js";

beforeAll(async () => {
  await ready;
});

const size = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);
const f32 = (a: ArrayLike<number>): Float64Array => Float64Array.from(Float32Array.from(a));

/** Runs `steps` adamw steps on the GPU and in float64, comparing param, m and v after each. */
async function checkAdamW(shape: number[], init: { p: Float64Array; m: Float64Array; v: Float64Array }, grads: Float64Array[], opts: Omit<AdamWOptions, "step">): Promise<void> {
  const t = { p: tensor(Float32Array.from(init.p), shape), m: tensor(Float32Array.from(init.m), shape), v: tensor(Float32Array.from(init.v), shape) };
  let ref = { param: f32(init.p), m: f32(init.m), v: f32(init.v) };
  try {
    for (let s = 0; s < grads.length; s++) {
      const g = tensor(Float32Array.from(grads[s]!), shape);
      adamw(t.p, g, t.m, t.v, { ...opts, step: s + 1 });
      g.dispose();
      ref = adamwRef(ref.param, f32(grads[s]!), ref.m, ref.v, { ...opts, step: s + 1 });
      const what = `adamw ${JSON.stringify(shape)} step ${s + 1}`;
      assertClose(await t.p.toArray(), ref.param, TOL.elementwise, `${what} param`);
      assertClose(await t.m.toArray(), ref.m, TOL.elementwise, `${what} m`);
      assertClose(await t.v.toArray(), ref.v, TOL.elementwise, `${what} v`);
    }
  } finally {
    for (const x of Object.values(t)) x.dispose();
  }
}

describe("adamw", () => {
  it("matches torch.optim.AdamW over several steps, random shapes and hyper-parameters", async () => {
    await fc.assert(
      fc.asyncProperty(
        shapeArb(1, 3, 33),
        fc.nat(),
        fc.record({
          lr: fc.constantFrom(1e-3, 3e-2),
          beta1: fc.constantFrom(0.9, 0.5),
          beta2: fc.constantFrom(0.999, 0.95),
          weightDecay: fc.constantFrom(0, 0.01, 0.1),
          gradScale: fc.constantFrom(1, 0.25),
        }),
        async (shape, seed, hyper) => {
          const n = size(shape);
          const init = { p: randomValues(n, seed), m: randomValues(n, seed + 1, 0.1), v: randomValues(n, seed + 2, 0.01).map(Math.abs) };
          const grads = [0, 1, 2].map((k) => randomValues(n, seed + 10 + k));
          await checkAdamW(shape, init, grads, hyper);
        },
      ),
      { ...FC, numRuns: 10 }, // each run is 3 steps with 9 read-backs
    );
  });

  it("places eps after the bias-corrected sqrt(v), as torch does", async () => {
    // g ~ 1e-8: sqrt(v)/sqrt(bc2) ~ 1e-8 is comparable to eps, so the placement of eps changes
    // the update by 2x or more (checked against two wrong placements below)
    const n = 8;
    const grads = [1, 2, 3].map((k) => randomValues(n, 30 + k, 2e-8));
    const init = { p: randomValues(n, 40), m: new Float64Array(n), v: new Float64Array(n) };
    const opts = { lr: 1e-2, weightDecay: 0.05, eps: 1e-8 };
    await checkAdamW([n], init, grads, opts);
    // at step 1, m/bc1 = g and v = (1 − β2)·g²: the update is lr·g/denom, and the placements
    // of eps that torch does not use change it far beyond the tolerance
    const g = f32(grads[0]!);
    const bc2 = 1 - 0.999;
    const v1 = g.map((x) => bc2 * x * x);
    const torch = v1.map((v, i) => g[i]! / (Math.sqrt(v) / Math.sqrt(bc2) + 1e-8));
    const beforeCorrection = v1.map((v, i) => g[i]! / ((Math.sqrt(v) + 1e-8) / Math.sqrt(bc2)));
    const insideSqrt = v1.map((v, i) => g[i]! / Math.sqrt(v / bc2 + 1e-8));
    for (const wrong of [beforeCorrection, insideSqrt]) {
      expect(Math.min(...torch.map((t, i) => Math.abs(t - wrong[i]!) / Math.abs(t)))).toBeGreaterThan(0.3);
    }
  });

  it("updates a wte-sized parameter (154 MB, above one binding) in chunks", async () => {
    const R = 50257;
    const C = 768;
    expect(R * C * 4).toBeGreaterThan(device().maxBinding);
    // row r of param / grad: a base row rotated by r % C, plus r % 3 (host fill by copying)
    const fill = (seed: number): Float32Array => {
      const base = Array.from({ length: 3 }, (_, k) => Float32Array.from(randomValues(C, seed), (x) => x + k));
      const out = new Float32Array(R * C);
      for (let r = 0; r < R; r++) {
        const src = base[r % 3]!;
        const rot = r % C;
        out.set(src.subarray(rot), r * C);
        out.set(src.subarray(0, rot), r * C + C - rot);
      }
      return out;
    };
    const hp = fill(1);
    const hg = fill(2);
    const p = tensor(hp, [R, C], "f32");
    const g = tensor(hg, [R, C], "f32");
    const m = zeros([R, C]);
    const v = zeros([R, C]);
    const opts = { lr: 1e-2, weightDecay: 0.1, step: 1 };
    adamw(p, g, m, v, opts);
    // a chunk holds 33554368 elements: row 43690 straddles the first boundary
    for (const r of [0, 43689, 43690, 43691, R - 1]) {
      const at = r * C;
      const zero = new Float64Array(C);
      const want = adamwRef(hp.subarray(at, at + C), hg.subarray(at, at + C), zero, zero, opts);
      assertClose(await readRange(p, at, C), want.param, TOL.elementwise, `param row ${r}`);
      assertClose(await readRange(m, at, C), want.m, TOL.elementwise, `m row ${r}`);
      assertClose(await readRange(v, at, C), want.v, TOL.elementwise, `v row ${r}`);
    }
    for (const t of [p, g, m, v]) t.dispose();
  });

  it("rejects mismatched shapes, dtypes, released tensors and bad steps", () => {
    const p = tensor(new Float32Array(6), [2, 3]);
    const g = tensor(new Float32Array(6), [3, 2]);
    const m = tensor(new Float32Array(6), [2, 3]);
    const v = tensor(new Float32Array(6), [2, 3]);
    const vi = tensor(new Int32Array(6), [2, 3]);
    expect(() => adamw(p, g, m, v, { lr: 1e-3, step: 1 })).toThrow(ShapeError);
    expect(() => adamw(p, g, m, v, { lr: 1e-3, step: 1 })).toThrow(
      "adamw: expected the shape of param for grad, got [3, 2] (param=[2, 3], grad=[3, 2], m=[2, 3], v=[2, 3])",
    );
    expect(() => adamw(p, m, m, vi, { lr: 1e-3, step: 1 })).toThrow(DTypeError);
    expect(() => adamw(p, m, m, v, { lr: 1e-3, step: 0 })).toThrow("adamw: expected a positive integer for step, got 0");
    expect(() => adamw(p, m, m, v, { lr: NaN, step: 1 })).toThrow("adamw: expected a finite number for lr, got NaN");
    v.dispose();
    expect(() => adamw(p, m, m, v, { lr: 1e-3, step: 1 })).toThrow(ReleasedError);
    expect(() => sgd(p, m, null, { lr: 1, momentum: 0.9 })).toThrow("sgd: expected a momentum buffer for momentum 0.9, got null");
    expect(() => sgd(p, m, m, { lr: 1, momentum: 0.9, dampening: 0.1, nesterov: true })).toThrow(/sgd: expected momentum > 0 and dampening 0 for nesterov/);
    for (const t of [p, g, m, vi]) t.dispose();
  });
});

describe("sgd", () => {
  it("matches torch.optim.SGD over several steps (momentum, dampening, nesterov, decay)", async () => {
    const configs: Omit<SGDOptions, "step">[] = [
      { lr: 0.1 },
      { lr: 0.1, weightDecay: 0.01 },
      { lr: 0.05, momentum: 0.9 },
      { lr: 0.05, momentum: 0.9, dampening: 0.5, weightDecay: 0.1 },
      { lr: 0.05, momentum: 0.8, nesterov: true, gradScale: 0.5 },
    ];
    for (const [c, opts] of configs.entries()) {
      const shape = [7, 13];
      const n = size(shape);
      const hp = randomValues(n, 50 + c);
      const p = tensor(Float32Array.from(hp), shape);
      const buf: Tensor | null = opts.momentum ? zeros(shape) : null;
      let ref: { param: Float64Array; buf: Float64Array } = { param: f32(hp), buf: new Float64Array(n) };
      for (let s = 1; s <= 3; s++) {
        const hg = randomValues(n, 60 + 10 * c + s);
        const g = tensor(Float32Array.from(hg), shape);
        sgd(p, g, buf, { ...opts, step: s });
        g.dispose();
        ref = sgdRef(ref.param, f32(hg), ref.buf, { ...opts, step: s });
        assertClose(await p.toArray(), ref.param, TOL.elementwise, `sgd ${JSON.stringify(opts)} step ${s} param`);
        if (buf) assertClose(await buf.toArray(), ref.buf, TOL.elementwise, `sgd ${JSON.stringify(opts)} step ${s} buf`);
      }
      p.dispose();
      buf?.dispose();
    }
  });
});
