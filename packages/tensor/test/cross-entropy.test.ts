import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { DTypeError, IndexError, LimitError, ReleasedError, ShapeError, crossEntropy, crossEntropyBackward, device, dispose, tensor, type Reduction } from "../src/index.js";
import { crossEntropyBackwardRef, crossEntropyRef } from "../src/ops/cross-entropy.js";
import { FC, TOL, assertClose, dimArb, randomValues, readRange, ready } from "./helpers.js";

beforeAll(async () => {
  await ready;
});

/** Runs crossEntropy on f32-rounded logits and compares loss and lse with the float64 reference. */
async function check(N: number, V: number, logits: Float32Array, targets: number[], opts: { ignoreIndex?: number; reduction?: Reduction; classes?: number }): Promise<void> {
  const x = tensor(logits, [N, V]);
  const t = tensor(targets, [N], "i32");
  const { loss, lse } = crossEntropy(x, t, opts);
  try {
    const want = crossEntropyRef(logits, targets, N, V, opts);
    expect(loss.shape).toEqual(opts.reduction === "none" ? [N] : [1]);
    expect(lse.shape).toEqual([N]);
    const what = `[${N}, ${V}] ${JSON.stringify(opts)}`;
    assertClose(await loss.toArray(), want.loss, TOL.reduce, `${what} loss`);
    assertClose(await lse.toArray(), want.lse, TOL.reduce, `${what} lse`);
  } finally {
    dispose(x, t, loss, lse);
  }
}

describe("crossEntropy vs float64", () => {
  it("[1600, 50257] (321 MB, above one storage binding) runs in row chunks", async () => {
    const N = 1600;
    const V = 50257;
    const logits = new Float32Array(N * V);
    for (let i = 0; i < logits.length; i++) logits[i] = (Math.imul(i, 0x9e3779b1) >>> 20) / 512 - 4; // hashed, in [-4, 4)
    const targets = Array.from({ length: N }, (_, n) => (n % 97 === 5 ? -100 : (n * 7919) % V));
    const x = tensor(logits, [N, V], "f32");
    const t = tensor(targets, [N], "i32");
    expect(() => x.binding("test")).toThrow(LimitError);
    const mean = crossEntropy(x, t);
    const none = crossEntropy(x, t, { reduction: "none" });
    try {
      const want = crossEntropyRef(logits, targets, N, V, { reduction: "none" });
      assertClose(await none.loss.toArray(), want.loss, TOL.reduce, "row losses");
      assertClose(await none.lse.toArray(), want.lse, TOL.reduce, "lse");
      assertClose(await mean.loss.toArray(), crossEntropyRef(logits, targets, N, V).loss, TOL.reduce, "mean loss");
    } finally {
      dispose(x, t, mean, none);
    }
  });

  it("random shapes, targets, ignore index and reductions", async () => {
    await fc.assert(
      fc.asyncProperty(
        dimArb(65),
        fc.oneof(dimArb(129), fc.integer({ min: 130, max: 3000 })),
        fc.integer({ min: 1, max: 1 << 30 }),
        fc.constantFrom<Reduction>("mean", "sum", "none"),
        fc.constantFrom(undefined, -1, 0),
        async (N, V, seed, reduction, ignoreIndex) => {
          const logits = Float32Array.from(randomValues(N * V, seed, 6));
          const ign = ignoreIndex ?? -100;
          const u = randomValues(N, seed + 1);
          const targets = Array.from(u, (r, n) => (n > 0 && r > 0.6 ? ign : Math.floor(((r + 1) / 2) * V) % V));
          if (targets[0] === ign) targets[0] = V - 1; // keep at least one counted row
          await check(N, V, logits, targets, { reduction, ignoreIndex });
        },
      ),
      FC,
    );
  });

  it("extreme logits stay finite (online max)", async () => {
    const N = 4;
    const V = 1031;
    const logits = Float32Array.from(randomValues(N * V, 3, 50));
    logits[7] = 1e4;
    logits[V + 3] = -1e4;
    for (let v = 0; v < V; v++) logits[2 * V + v] = 95; // exp() alone overflows
    await check(N, V, logits, [7, 3, 1030, 0], { reduction: "none" });
  });

  it("classes < V: padding columns are outside the softmax and get zero gradient", async () => {
    // a GPT-2 vocabulary of 50258 padded to 50304 columns, scaled down: 37 of 44, rows of 2 to 9
    for (const [N, V, C] of [[5, 44, 37], [9, 50, 50], [2, 1031, 1001]] as const) {
      const logits = Float32Array.from(randomValues(N * V, N + V, 4));
      const targets = Array.from({ length: N }, (_, n) => (n === 1 ? -100 : (n * 13) % C));
      for (const reduction of ["mean", "none"] as const) await check(N, V, logits, targets, { reduction, classes: C });
      const x = tensor(logits, [N, V]);
      const t = tensor(targets, [N], "i32");
      const { loss, lse } = crossEntropy(x, t, { classes: C });
      const g = crossEntropyBackward(x, t, lse, 1, { classes: C });
      try {
        const got = await g.toArray();
        assertClose(got, crossEntropyBackwardRef(logits, targets, N, V, 1, { classes: C }), TOL.reduce, `[${N}, ${V}] classes ${C} dlogits`);
        for (let n = 0; n < N; n++) for (let v = C; v < V; v++) expect(got[n * V + v]).toBe(0);
      } finally {
        dispose(x, t, loss, lse, g);
      }
    }
    const x = tensor(new Float32Array(8), [2, 4]);
    const t = tensor([0, 3], [2], "i32");
    const r = crossEntropy(x, t, { classes: 3 });
    await expect(r.loss.toArray()).rejects.toThrow("crossEntropy: expected targets in [0, 3) or ignoreIndex, got 3 (3 classes)");
    expect(() => crossEntropy(x, t, { classes: 5 })).toThrow("crossEntropy: expected classes in [1, 4], got 5 (logits=[2, 4])");
    dispose(x, t, r.loss, r.lse);
  });

  it("every row ignored: mean is NaN, sum 0, none zeros (as torch)", async () => {
    const x = tensor(Float32Array.from(randomValues(6, 1)), [2, 3]);
    const t = tensor([-100, -100], [2], "i32");
    const mean = crossEntropy(x, t);
    const sum = crossEntropy(x, t, { reduction: "sum" });
    const none = crossEntropy(x, t, { reduction: "none" });
    expect(Number.isNaN((await mean.loss.toArray())[0])).toBe(true);
    expect(Array.from(await sum.loss.toArray())).toEqual([0]);
    expect(Array.from(await none.loss.toArray())).toEqual([0, 0]);
    dispose(x, t, mean, sum, none);
  });

});

describe("crossEntropy errors", () => {
  it("a target outside [0, V) raises IndexError naming the op, the target and V on the next read", async () => {
    const x = tensor(Float32Array.from(randomValues(3 * 37, 2)), [3, 37]);
    for (const bad of [37, -5, 1000]) {
      const t = tensor([1, bad, 0], [3], "i32");
      const { loss, lse } = crossEntropy(x, t);
      await expect(loss.toArray()).rejects.toThrow(IndexError);
      dispose(t, loss, lse);
      const t2 = tensor([1, bad, 0], [3], "i32");
      const r = crossEntropy(x, t2);
      await expect(r.loss.toArray()).rejects.toThrow(`crossEntropy: expected targets in [0, 37) or ignoreIndex, got ${bad}`);
      dispose(t2, r);
    }
    // the error was consumed: a good call reads back fine
    const ok = tensor([1, 2, 0], [3], "i32");
    const r = crossEntropy(x, ok);
    expect(Number.isFinite((await r.loss.toArray())[0])).toBe(true);
    dispose(x, ok, r);
  });

  it("rejects mismatched shapes, dtypes, options and released tensors", () => {
    const x = tensor(Float32Array.from(randomValues(12, 1)), [3, 4]);
    const t = tensor([0, 1, 2], [3], "i32");
    expect(() => crossEntropy(x, tensor([0, 1], [2], "i32"))).toThrow(ShapeError);
    expect(() => crossEntropy(x, tensor([0, 1], [2], "i32"))).toThrow(/crossEntropy: expected shape \[3\] for targets, got \[2\] \(logits=\[3, 4\]\)/);
    expect(() => crossEntropy(x.reshape([3, 2, 2]), t)).toThrow(/crossEntropy: expected rank 2 for logits, got 3/);
    expect(() => crossEntropy(x, tensor([0, 1, 2], [3], "u32"))).toThrow(DTypeError);
    expect(() => crossEntropy(x, tensor([0, 1, 2], [3]))).toThrow(/expected dtype i32 for targets, got f32/);
    expect(() => crossEntropy(x, t, { reduction: "avg" as Reduction })).toThrow(/expected "mean", "sum" or "none" for reduction/);
    expect(() => crossEntropy(x, t, { ignoreIndex: 0.5 })).toThrow(/expected an i32 for ignoreIndex/);
    t.dispose();
    expect(() => crossEntropy(x, t)).toThrow(ReleasedError);
    expect(() => crossEntropy(x, t)).toThrow(/crossEntropy: expected a live tensor for targets/);
    x.dispose();
  });
});

describe("crossEntropyBackward vs float64", () => {
  // f32 softmax (exp of x - lse) times a scale: a few ulps of each probability
  const TOL_GRAD = { abs: 1e-6, rel: 1e-4 };

  it("random shapes, ignore index, reductions, number or tensor gradients", async () => {
    await fc.assert(
      fc.asyncProperty(
        dimArb(65),
        fc.oneof(dimArb(129), fc.integer({ min: 130, max: 1500 })),
        fc.integer({ min: 1, max: 1 << 30 }),
        fc.constantFrom<Reduction>("mean", "sum", "none"),
        fc.constantFrom(undefined, -1, 0),
        fc.boolean(),
        async (N, V, seed, reduction, ignoreIndex, asTensor) => {
          const logits = Float32Array.from(randomValues(N * V, seed, 6));
          const ign = ignoreIndex ?? -100;
          const u = randomValues(N, seed + 1);
          const targets = Array.from(u, (r, n) => (r > 0.6 ? ign : Math.floor(((r + 1) / 2) * V) % V));
          const gRows = Float32Array.from(randomValues(reduction === "none" ? N : 1, seed + 2, 2));
          const x = tensor(logits, [N, V]);
          const t = tensor(targets, [N], "i32");
          const gt = tensor(gRows, [gRows.length]);
          const { loss, lse } = crossEntropy(x, t, { reduction, ignoreIndex });
          const opts = { reduction, ignoreIndex };
          const g = asTensor ? gt : gRows[0]!;
          const dx = crossEntropyBackward(x, t, lse, g, opts);
          try {
            expect(dx.shape).toEqual([N, V]);
            const want = crossEntropyBackwardRef(logits, targets, N, V, asTensor ? gRows : gRows[0]!, opts);
            assertClose(await dx.toArray(), want, TOL_GRAD, `[${N}, ${V}] ${JSON.stringify(opts)} tensor=${asTensor}`);
          } finally {
            dispose(x, t, gt, loss, lse, dx);
          }
        },
      ),
      { ...FC, numRuns: 15 },
    );
  });

  it("every row ignored gives zeros; rows sum to 0 (softmax minus one-hot)", async () => {
    const x = tensor(Float32Array.from(randomValues(12, 5, 3)), [3, 4]);
    const t = tensor([-100, -100, -100], [3], "i32");
    const { lse } = crossEntropy(x, t);
    const dx = crossEntropyBackward(x, t, lse, 1);
    expect(Array.from(await dx.toArray())).toEqual(new Array(12).fill(0));
    const t2 = tensor([0, 3, 1], [3], "i32");
    const dx2 = crossEntropyBackward(x, t2, lse, 1, { reduction: "sum" });
    const got = await dx2.toArray();
    for (let n = 0; n < 3; n++) expect(Math.abs(got[4 * n]! + got[4 * n + 1]! + got[4 * n + 2]! + got[4 * n + 3]!)).toBeLessThan(1e-6);
    dispose(x, t, lse, dx, t2, dx2);
  });

  it("[680, 50257] (137 MB, above one storage binding) runs in row chunks", async (ctx) => {
    if (device().maxBinding > 2 ** 28) ctx.skip(); // a real GPU: one binding holds it
    const N = 680;
    const V = 50257;
    expect(N * V * 4).toBeGreaterThan(device().maxBinding);
    const logits = new Float32Array(N * V);
    for (let i = 0; i < logits.length; i++) logits[i] = (Math.imul(i, 0x9e3779b1) >>> 20) / 512 - 4;
    const targets = Array.from({ length: N }, (_, n) => (n % 97 === 5 ? -100 : (n * 7919) % V));
    const x = tensor(logits, [N, V]);
    const t = tensor(targets, [N], "i32");
    const { loss, lse } = crossEntropy(x, t);
    const dx = crossEntropyBackward(x, t, lse, 1);
    try {
      const rows = [0, 5, 333, 334, 678, 679];
      for (const n of rows) {
        const got = await readRange(dx, n * V, V);
        const want = crossEntropyBackwardRef(logits.subarray(n * V, (n + 1) * V), [targets[n]!], 1, V, 1 / targets.filter((v) => v !== -100).length, { reduction: "sum" });
        assertClose(got, want, TOL_GRAD, `row ${n}`);
      }
    } finally {
      dispose(x, t, loss, lse, dx);
    }
  });

  it("rejects mismatched lse, gradLoss and released tensors", () => {
    const x = tensor(Float32Array.from(randomValues(12, 1)), [3, 4]);
    const t = tensor([0, 1, 2], [3], "i32");
    const lse = tensor([0, 0, 0], [3]);
    expect(() => crossEntropyBackward(x, t, tensor([0, 0], [2]), 1)).toThrow(/crossEntropyBackward: expected shape \[3\] for lse, got \[2\] \(logits=\[3, 4\]\)/);
    expect(() => crossEntropyBackward(x, t, lse, tensor([1, 1], [2]))).toThrow(/expected 1 element\(s\) for gradLoss, got \[2\]/);
    expect(() => crossEntropyBackward(x, t, lse, tensor([1], [1]), { reduction: "none" })).toThrow(/expected 3 element\(s\) for gradLoss/);
    expect(() => crossEntropyBackward(x, tensor([0, 1], [2], "i32"), lse, 1)).toThrow(ShapeError);
    lse.dispose();
    expect(() => crossEntropyBackward(x, t, lse, 1)).toThrow(/crossEntropyBackward: expected a live tensor for lse/);
    dispose(x, t);
  });
});
