import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { DTypeError, ReleasedError, ShapeError, dispose, infoNCE, l2Normalize, tensor } from "../src/index.js";
import { infoNCERef, l2NormalizeRef } from "../src/ops/infonce.js";
import { permuteRef } from "../src/ops/permute.js";
import { FC, TOL, assertClose, checkOp, dimArb, randomValues, ready } from "./helpers.js";

beforeAll(async () => {
  await ready;
});

async function check(B: number, E: number, logScale: number, seed: number, maxLogScale?: number): Promise<void> {
  const a = Float32Array.from(randomValues(B * E, seed, 3));
  const b = Float32Array.from(randomValues(B * E, seed + 1, 3));
  // make pairs correlated, as after some training
  for (let i = 0; i < a.length; i++) b[i] = b[i]! + (seed % 2 === 0 ? a[i]! : 0);
  const img = tensor(a, [B, E]);
  const txt = tensor(b, [B, E]);
  const s = tensor([logScale]);
  const { loss, logits } = infoNCE(img, txt, s, maxLogScale === undefined ? {} : { maxLogScale });
  try {
    const want = infoNCERef(a, b, B, E, Math.fround(logScale), maxLogScale);
    expect(loss.shape).toEqual([1]);
    expect(logits.shape).toEqual([B, B]);
    const what = `B ${B} E ${E} s ${logScale}`;
    assertClose(await logits.toArray(), want.logits, TOL.matmul, `${what} logits`);
    assertClose(await loss.toArray(), [want.loss], TOL.matmul, `${what} loss`);
  } finally {
    dispose(img, txt, s, loss, logits);
  }
}

describe("infoNCE vs float64", () => {
  it("B = 1, 2, 7, 64, 256 with several E; logScale below and above the clamp", async () => {
    for (const [B, E] of [[1, 3], [2, 5], [7, 16], [64, 256], [256, 33]] as const) {
      await check(B, E, Math.log(1 / 0.07), B);
      await check(B, E, 6, B + 1); // clamped to ln 100
    }
    await check(7, 9, 3, 5, 2.5); // custom clamp
  });

  it("random B and E", async () => {
    await fc.assert(
      fc.asyncProperty(dimArb(70), dimArb(129), fc.double({ min: -2, max: 5, noNaN: true }), fc.integer({ min: 1, max: 1 << 30 }), async (B, E, s, seed) => {
        await check(B, E, s, seed);
      }),
      { ...FC, numRuns: 15 },
    );
  });
});

describe("l2Normalize", () => {
  it("random shapes and axes vs float64", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(dimArb(40), { minLength: 1, maxLength: 3 }), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 1, max: 1 << 30 }), async (shape, pick, seed) => {
        const axis = -1 - (pick % shape.length);
        const ax = shape.length + axis;
        const perm = [...shape.keys()];
        perm[ax] = shape.length - 1;
        perm[shape.length - 1] = ax;
        const data = randomValues(shape.reduce((a, b) => a * b, 1), seed, 4);
        await checkOp({
          what: `l2Normalize ${JSON.stringify(shape)} axis ${axis}`,
          inputs: [{ shape, data }],
          gpu: ([x]) => l2Normalize(x!, axis),
          ref: ([x]) => {
            // move the axis last, normalise rows, move it back
            const moved = permuteRef(x!, shape, perm);
            const norm = l2NormalizeRef(moved, shape[ax]!);
            return permuteRef(norm, perm.map((p) => shape[p]!), perm);
          },
          tol: TOL.elementwise,
          shape,
        });
      }),
      FC,
    );
  });

  it("a zero row stays zero (norm clamped at 1e-12, as torch's F.normalize)", async () => {
    const x = tensor([0, 0, 0, 3, 4, 0], [2, 3]);
    const y = l2Normalize(x);
    assertClose(await y.toArray(), [0, 0, 0, 0.6, 0.8, 0], TOL.elementwise);
    dispose(x, y);
  });
});

describe("infoNCE errors", () => {
  it("rejects mismatched shapes, a non-scalar logScale, bad dtypes and released tensors", () => {
    const img = tensor(new Float32Array(12), [3, 4]);
    const txt = tensor(new Float32Array(12), [3, 4]);
    const s = tensor([2.6]);
    expect(() => infoNCE(img, tensor(new Float32Array(8), [2, 4]), s)).toThrow(ShapeError);
    expect(() => infoNCE(img, tensor(new Float32Array(8), [2, 4]), s)).toThrow(/infoNCE: expected shape \[3, 4\] \(that of img\) for txt, got \[2, 4\]/);
    expect(() => infoNCE(img, txt, tensor([1, 2]))).toThrow(/infoNCE: expected shape \[1\] for logScale, got \[2\]/);
    expect(() => infoNCE(img.reshape([12]), txt, s)).toThrow(/infoNCE: expected rank 2 for img, got 1/);
    expect(() => infoNCE(img, txt, tensor([1], [1], "i32"))).toThrow(DTypeError);
    expect(() => l2Normalize(tensor([1], [1], "u32"))).toThrow(/l2Normalize: expected dtype f32 for x, got u32/);
    txt.dispose();
    expect(() => infoNCE(img, txt, s)).toThrow(ReleasedError);
    expect(() => infoNCE(img, txt, s)).toThrow(/infoNCE: expected a live tensor for txt/);
    dispose(img, s);
  });
});
