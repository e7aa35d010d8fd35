import {
  binaryRef, layerNormRef, matmulRef, permuteRef, reduceRef, softmaxRef, unaryRef, device,
} from "@llms-eye/tensor";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { Var, ag, backward, noGrad } from "../src/index.js";
import { type GradCase, gradCheck, ready } from "./gradcheck.js";

beforeAll(async () => {
  await ready;
});

const cases: GradCase[] = [
  ...(["add", "sub", "mul", "div"] as const).map((op) => ({
    name: `${op} broadcast`,
    shapes: [[3, 1, 5], [4, 1]],
    positive: [false, op === "div"],
    gpu: ([a, b]: Var[]) => ag[op](a!, b!),
    ref: ([a, b]: Float64Array[]) => binaryRef(op, a!, [3, 1, 5], b!, [4, 1], "f32"),
  })),
  ...(["exp", "tanh", "gelu"] as const).map((op) => ({
    name: op, shapes: [[7, 3]], gpu: ([x]: Var[]) => ag[op](x!), ref: ([x]: Float64Array[]) => unaryRef(op, x!),
  })),
  { name: "log", shapes: [[5]], positive: [true], gpu: ([x]) => ag.log(x!), ref: ([x]) => unaryRef("log", x!) },
  { name: "neg", shapes: [[5]], gpu: ([x]) => ag.neg(x!), ref: ([x]) => unaryRef("neg", x!) },
  ...[
    [false, false], [true, false], [false, true], [true, true],
  ].map(([transA, transB]) => ({
    name: `matmul transA=${transA} transB=${transB}`,
    shapes: [transA ? [2, 5, 3] : [2, 3, 5], transB ? [4, 5] : [5, 4]],
    gpu: ([a, b]: Var[]) => ag.matmul(a!, b!, { transA, transB }),
    ref: ([a, b]: Float64Array[]) =>
      matmulRef(a!, transA ? [2, 5, 3] : [2, 3, 5], b!, transB ? [4, 5] : [5, 4], { transA, transB }),
    tol: { abs: 5e-4, rel: 2e-3 },
  })),
  { name: "sum axis", shapes: [[3, 4, 2]], gpu: ([x]) => ag.sum(x!, [1]), ref: ([x]) => reduceRef("sum", x!, [3, 4, 2], [1]) },
  { name: "mean all", shapes: [[3, 4]], gpu: ([x]) => ag.mean(x!), ref: ([x]) => reduceRef("mean", x!, [3, 4], [0, 1]) },
  { name: "reshape+permute", shapes: [[2, 3, 4]], gpu: ([x]) => ag.permute(ag.reshape(x!, [6, 4]), [1, 0]), ref: ([x]) => permuteRef(x!, [6, 4], [1, 0]) },
  { name: "softmax", shapes: [[3, 9]], gpu: ([x]) => ag.softmax(x!), ref: ([x]) => softmaxRef(x!, [3, 9]) },
  {
    name: "layerNorm (x, weight, bias)",
    shapes: [[2, 3, 16], [16], [16]],
    gpu: ([x, w, b]) => ag.layerNorm(x!, w!, b!),
    ref: ([x, w, b]) => layerNormRef(x!, [2, 3, 16], w!, b!),
    tol: { abs: 5e-4, rel: 5e-3 },
  },
];

describe("gradient rules vs central differences of the float64 reference", () => {
  for (const c of cases) it(c.name, () => gradCheck(c));
});

// The same rules on random shapes: broadcasting pairs (size-1 and missing axes on either side),
// batched matmuls in every orientation, reductions over random axis sets, random permutations.
const RUNS = { numRuns: 6, seed: 11 } as const;
const dim = (max: number) => fc.integer({ min: 1, max });
const shapeArb = (maxRank: number, maxDim: number) => fc.array(dim(maxDim), { minLength: 1, maxLength: maxRank });
/** Two shapes that broadcast: b is a suffix of a's rank with some axes set to 1 (or the reverse). */
const broadcastPair = fc.tuple(shapeArb(3, 4), fc.nat(), fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }), fc.boolean()).map(([a, drop, ones, swap]) => {
  const tail = a.slice(drop % a.length).map((d, i) => (ones[i] ? 1 : d));
  return swap ? [tail, a] : [a, tail];
});
const axesOf = (rank: number, mask: boolean[]): number[] => [...Array(rank).keys()].filter((i) => mask[i]);

describe("gradient rules on random shapes (fast-check)", () => {
  it("broadcasting add / sub / mul / div", async () => {
    await fc.assert(
      fc.asyncProperty(broadcastPair, fc.constantFrom("add", "sub", "mul", "div" as const), async ([sa, sb], op) => {
        await gradCheck({
          name: `${op} ${JSON.stringify([sa, sb])}`,
          shapes: [sa!, sb!],
          positive: [false, op === "div"],
          gpu: ([a, b]) => ag[op](a!, b!),
          ref: ([a, b]) => binaryRef(op, a!, sa!, b!, sb!, "f32"),
        });
      }),
      RUNS,
    );
  });

  it("unary exp / tanh / gelu / log / neg", async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb(3, 6), fc.constantFrom("exp", "tanh", "gelu", "log", "neg" as const), async (shape, op) => {
        await gradCheck({ name: `${op} ${JSON.stringify(shape)}`, shapes: [shape], positive: [op === "log"], gpu: ([x]) => ag[op](x!), ref: ([x]) => unaryRef(op, x!) });
      }),
      RUNS,
    );
  });

  it("batched matmul with transposes (batch on A only, or on both)", async () => {
    await fc.assert(
      fc.asyncProperty(dim(3), dim(7), dim(9), dim(7), fc.boolean(), fc.boolean(), fc.boolean(), async (batch, M, K, N, transA, transB, batchB) => {
        const sa = transA ? [batch, K, M] : [batch, M, K];
        const sb0 = transB ? [N, K] : [K, N];
        const sb = batchB ? [batch, ...sb0] : sb0;
        await gradCheck({
          name: `matmul ${JSON.stringify({ sa, sb, transA, transB })}`,
          shapes: [sa, sb],
          gpu: ([a, b]) => ag.matmul(a!, b!, { transA, transB }),
          ref: ([a, b]) => matmulRef(a!, sa, b!, sb, { transA, transB }),
          tol: { abs: 5e-4, rel: 2e-3 },
        });
      }),
      RUNS,
    );
  });

  it("sum / mean over random axes", async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb(3, 5), fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }), fc.constantFrom("sum", "mean" as const), async (shape, mask, op) => {
        const axes = axesOf(shape.length, mask);
        if (axes.length === 0) axes.push(shape.length - 1);
        await gradCheck({ name: `${op} ${JSON.stringify({ shape, axes })}`, shapes: [shape], gpu: ([x]) => ag[op](x!, axes), ref: ([x]) => reduceRef(op, x!, shape, axes) });
      }),
      RUNS,
    );
  });

  it("permute (random permutation) and reshape", async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb(4, 4), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 4, maxLength: 4 }), async (shape, keys) => {
        const perm = [...shape.keys()].sort((a, b) => keys[a]! - keys[b]! || a - b);
        const flat = [shape.reduce((a, b) => a * b, 1)];
        await gradCheck({
          name: `permute ${JSON.stringify({ shape, perm })}`,
          shapes: [flat],
          gpu: ([x]) => ag.permute(ag.reshape(x!, shape), perm),
          ref: ([x]) => permuteRef(x!, shape, perm),
        });
      }),
      RUNS,
    );
  });

  it("softmax and layerNorm over the last axis", async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb(2, 4), dim(24), async (lead, C) => {
        const shape = [...lead, C];
        await gradCheck({ name: `softmax ${JSON.stringify(shape)}`, shapes: [shape], gpu: ([x]) => ag.softmax(x!), ref: ([x]) => softmaxRef(x!, shape) });
        if (C < 2) return; // a one-element layernorm is constant
        await gradCheck({
          name: `layerNorm ${JSON.stringify(shape)}`,
          shapes: [shape, [C], [C]],
          gpu: ([x, w, b]) => ag.layerNorm(x!, w!, b!),
          ref: ([x, w, b]) => layerNormRef(x!, shape, w!, b!),
          tol: { abs: 5e-4, rel: 5e-3 },
        });
      }),
      RUNS,
    );
  });
});

describe("tape", () => {
  it("accumulates until zeroed, skips frozen inputs, records nothing under noGrad", async () => {
    const { tensor } = await import("@llms-eye/tensor");
    const w = new Var(tensor([1, 2, 3]).keep(), true);
    const frozen = new Var(tensor([4, 5, 6]).keep(), false);
    for (let i = 0; i < 2; i++) backward(ag.sum(ag.mul(w, frozen)));
    expect(Array.from(await w.grad!.toArray())).toEqual([8, 10, 12]);
    expect(frozen.grad).toBeNull();
    w.zeroGrad();
    const y = noGrad(() => ag.mul(w, w));
    expect(y.requiresGrad).toBe(false);
    expect(y.node).toBeNull();
    expect(() => backward(y.value.size === 1 ? y : ag.sum(y))).toThrow(/constant/);
    y.dispose();
    w.dispose();
    frozen.dispose();
  });

  it("releases every intermediate: live bytes return to the start", async () => {
    const { tensor, tidy } = await import("@llms-eye/tensor");
    const w = new Var(tensor([0.5, -1, 2, 0.25], [2, 2]).keep(), true);
    const step = () => tidy(() => backward(ag.mean(ag.gelu(ag.matmul(w, w)))));
    step(); // w.grad now exists; later steps add into it
    const before = device().stats().liveBytes;
    for (let i = 0; i < 50; i++) {
      step();
    }
    await device().sync();
    expect(device().stats().liveBytes).toBe(before);
    w.dispose();
  });
});
