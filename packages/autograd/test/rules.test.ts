import {
  binaryRef, layerNormRef, matmulRef, permuteRef, reduceRef, softmaxRef, unaryRef, device,
} from "@llms-eye/tensor";
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
