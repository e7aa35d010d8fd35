import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { DTypeError, LimitError, ReleasedError, ShapeError, dispose, logSoftmax, softmax, tensor } from "../src/index.js";
import { logSoftmaxRef, softmaxRef } from "../src/ops/softmax.js";
import { FC, TOL, assertClose, checkOp, dimArb, randomValues, readRange, ready } from "./helpers.js";

beforeAll(async () => {
  await ready;
});

describe("softmax / logSoftmax vs float64", () => {
  it("[1600, 50257] (321 MB, above one storage binding) runs in row chunks", async () => {
    const N = 1600;
    const V = 50257;
    const data = new Float32Array(N * V);
    for (let i = 0; i < data.length; i++) data[i] = (Math.imul(i, 0x9e3779b1) >>> 20) / 512 - 4; // hashed, in [-4, 4)
    const x = tensor(data, [N, V], "f32");
    expect(() => x.binding("test")).toThrow(LimitError);
    const y = softmax(x);
    try {
      expect(y.shape).toEqual([N, V]);
      // rows at both chunk edges (3 chunks of 534 rows) and the last rows
      for (const [r0, rows] of [[530, 8], [1064, 8], [1596, 4]] as const) {
        const got = await readRange(y, r0 * V, rows * V);
        const want = softmaxRef(data.subarray(r0 * V, (r0 + rows) * V), [rows, V]);
        assertClose(got, want, TOL.reduce, `rows ${r0}..${r0 + rows}`);
      }
    } finally {
      dispose(x, y);
    }
  });

  it("random shapes and axes", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(dimArb(70), { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 0, max: 2 }),
        fc.integer({ min: 1, max: 1 << 30 }),
        fc.boolean(),
        async (shape, axisPick, seed, log) => {
          const axis = -1 - (axisPick % shape.length);
          const data = randomValues(shape.reduce((a, b) => a * b, 1), seed, 8);
          await checkOp({
            what: `${log ? "logSoftmax" : "softmax"} ${JSON.stringify(shape)} axis ${axis}`,
            inputs: [{ shape, data }],
            gpu: ([x]) => (log ? logSoftmax(x!, axis) : softmax(x!, axis)),
            ref: ([x]) => (log ? logSoftmaxRef(x!, shape, axis) : softmaxRef(x!, shape, axis)),
            tol: TOL.reduce,
            shape,
          });
        },
      ),
      FC,
    );
  });

  it("rows of every width 1..9 and around vec4 edges (row starts at every alignment)", async () => {
    for (const width of [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17]) {
      const shape = [13, width];
      const data = randomValues(13 * width, width, 5);
      for (const log of [false, true]) {
        await checkOp({
          what: `width ${width}`,
          inputs: [{ shape, data }],
          gpu: ([x]) => (log ? logSoftmax(x!) : softmax(x!)),
          ref: ([x]) => softmaxRef(x!, shape, -1, log),
          tol: TOL.reduce,
        });
      }
    }
  });

  it("a vocabulary-wide row and extreme values stay finite (max subtraction)", async () => {
    const V = 50257;
    const data = randomValues(3 * V, 7, 30);
    data[5] = 1e4; // one dominating logit
    data[V + 17] = -1e4;
    for (let i = 2 * V; i < 3 * V; i++) data[i] = 88 + (i % 3); // exp() alone would overflow f32
    for (const log of [false, true]) {
      await checkOp({
        what: `[3, ${V}] ${log ? "logSoftmax" : "softmax"}`,
        inputs: [{ shape: [3, V], data }],
        gpu: ([x]) => (log ? logSoftmax(x!) : softmax(x!)),
        ref: ([x]) => softmaxRef(x!, [3, V], -1, log),
        tol: TOL.reduce,
      });
    }
  });

});

describe("softmax with -inf (masked) logits", () => {
  it("-inf entries get probability 0; a row of only -inf gives NaN, as torch", async () => {
    const x = tensor([0, -Infinity, 1, -Infinity, 2, 3, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity], [2, 6]);
    const p = await softmax(x).toArray();
    const lp = await logSoftmax(x).toArray();
    assertClose(p.subarray(0, 6), softmaxRef([0, -Infinity, 1, -Infinity, 2, 3], [1, 6]), TOL.elementwise);
    expect(lp[1]).toBe(-Infinity);
    expect(Array.from(p.subarray(6)).every(Number.isNaN)).toBe(true);
    expect(Array.from(lp.subarray(6)).every(Number.isNaN)).toBe(true);
    x.dispose();
  });
});

describe("softmax errors", () => {
  it("rejects non-f32 input, bad axes and released tensors, naming the op", () => {
    const i = tensor([1, 2, 3], [3], "i32");
    expect(() => softmax(i)).toThrow(DTypeError);
    expect(() => softmax(i)).toThrow(/softmax: expected dtype f32 for x, got i32/);
    const x = tensor([1, 2, 3, 4], [2, 2]);
    expect(() => logSoftmax(x, 2)).toThrow(ShapeError);
    expect(() => logSoftmax(x, 2)).toThrow(/logSoftmax: expected axis in \[-2, 1\], got 2/);
    x.dispose();
    expect(() => softmax(x)).toThrow(ReleasedError);
    expect(() => softmax(x)).toThrow(/softmax: expected a live tensor for x/);
    i.dispose();
  });
});
