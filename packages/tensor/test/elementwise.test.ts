import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  BINARY,
  BINARY_OPS,
  DTypeError,
  LimitError,
  ReleasedError,
  ShapeError,
  UNARY_OPS,
  add,
  binaryOp,
  binaryRef,
  device,
  div,
  full,
  mul,
  pow,
  scale,
  sub,
  tensor,
  unaryOp,
  unaryRef,
  type BinaryOp,
  type UnaryOp,
} from "../src/index.js";
import { FC, TOL, assertClose, checkOp, randomValues, ready, shapeArb } from "./helpers.js";

beforeAll(async () => {
  await ready;
});

const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);

// input domain per unary op: values drawn from [lo, hi]
const DOMAIN: Record<UnaryOp, [number, number]> = {
  neg: [-10, 10],
  exp: [-20, 20],
  log: [1e-3, 100],
  sqrt: [0, 100],
  rsqrt: [1e-3, 100],
  abs: [-10, 10],
  tanh: [-8, 8],
  relu: [-10, 10],
  sigmoid: [-30, 30],
  gelu: [-10, 10],
  quickGelu: [-10, 10],
  square: [-100, 100],
  reciprocal: [0.01, 100],
};
// extremes: where f32 overflows or the math has a limit; the reference in float64 decides
const EXTREMES = [0, -0, 1e-30, -1e-30, 1, -1, 88, 89, -88, -104, 100, -100, 1e4, -1e4, 1e20, -1e20, Infinity, -Infinity];

const inDomain = (op: UnaryOp, n: number, seed: number): Float64Array => {
  const [lo, hi] = DOMAIN[op];
  return randomValues(n, seed, 1).map((u) => lo + ((u + 1) / 2) * (hi - lo));
};

describe("unary", () => {
  for (const op of UNARY_OPS) {
    it(`${op} matches its float64 reference over random shapes`, async () => {
      await fc.assert(
        fc.asyncProperty(shapeArb(1, 4, 33), fc.nat(), async (shape, seed) => {
          await checkOp({
            what: `${op} ${JSON.stringify(shape)}`,
            inputs: [{ shape, data: inDomain(op, size(shape), seed) }],
            gpu: ([x]) => unaryOp(op, x!),
            ref: ([x]) => unaryRef(op, x!),
            tol: TOL.elementwise,
            shape,
          });
        }),
        { ...FC, numRuns: 8 }, // fewer runs per op: the loop covers 13 (unary) / 7 (binary) ops
      );
    });
  }

  it("handles extreme values without NaN where the math has a value", async () => {
    const x = Float64Array.from(EXTREMES);
    for (const op of UNARY_OPS) {
      const t = tensor(Float32Array.from(x));
      const y = unaryOp(op, t);
      const got = await y.toArray();
      const want = unaryRef(op, Float32Array.from(x));
      // f32 overflow: where float64 exceeds f32's range, the f32 result is ±inf
      const f32want = Float64Array.from(Float32Array.from(want));
      assertClose(got, f32want, TOL.elementwise, `${op} at extremes ${EXTREMES.join(",")}`);
      t.dispose();
      y.dispose();
    }
  });

  it("rejects non-f32 input and released tensors", () => {
    const i = tensor([1, 2], [2], "i32");
    expect(() => unaryOp("exp", i)).toThrow(DTypeError);
    expect(() => unaryOp("exp", i)).toThrow(/exp: expected dtype f32 for x, got i32 \(shape \[2\]\)/);
    i.dispose();
    const x = tensor([1, 2]);
    x.dispose();
    expect(() => unaryOp("gelu", x)).toThrow(ReleasedError);
    expect(() => unaryOp("gelu", x)).toThrow(/gelu: .*released/);
  });
});

// out shape, then a and b derived from it: dims set to 1 and leading dims dropped at random
const broadcastArb = fc
  .record({
    out: shapeArb(1, 4, 17),
    maskA: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
    maskB: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
    dropA: fc.nat(4),
    dropB: fc.nat(4),
    seed: fc.nat(),
  })
  .map(({ out, maskA, maskB, dropA, dropB, seed }) => {
    const derive = (mask: boolean[], drop: number): number[] => out.map((d, i) => (mask[i] ? 1 : d)).slice(Math.min(drop, out.length));
    return { a: derive(maskA, dropA), b: derive(maskB, dropB), seed };
  });

// operand domains where the op is well-conditioned
const values = (op: BinaryOp, side: "a" | "b", n: number, seed: number): Float64Array => {
  const u = randomValues(n, seed, 1);
  if (op === "pow") return side === "a" ? u.map((v) => 0.25 + 1.5 * (v + 1)) : u.map((v) => 3 * v);
  if (op === "div" && side === "b") return u.map((v) => (v >= 0 ? 0.1 + v : v - 0.1));
  return u.map((v) => 10 * v);
};

describe("binary", () => {
  for (const op of BINARY_OPS) {
    it(`${op} broadcasts like NumPy and matches its float64 reference`, async () => {
      await fc.assert(
        fc.asyncProperty(broadcastArb, async ({ a, b, seed }) => {
          const ad = values(op, "a", size(a), seed);
          const bd = values(op, "b", size(b), seed + 1);
          await checkOp({
            what: `${op} a=${JSON.stringify(a)} b=${JSON.stringify(b)}`,
            inputs: [
              { shape: a, data: ad },
              { shape: b, data: bd },
            ],
            gpu: ([x, y]) => binaryOp(op, x!, y!),
            ref: ([x, y]) => binaryRef(op, x!, a, y!, b),
            tol: TOL.elementwise,
          });
        }),
        { ...FC, numRuns: 8 }, // fewer runs per op: the loop covers 13 (unary) / 7 (binary) ops
      );
    });
  }

  it("takes a number on either side as a uniform", async () => {
    const shape = [5, 7];
    const xs = Float64Array.from(Float32Array.from(randomValues(35, 3, 4)));
    const x = tensor(Float32Array.from(xs), shape);
    for (const op of BINARY_OPS) {
      const xin = op === "pow" ? xs.map(Math.abs) : xs;
      const xt = op === "pow" ? tensor(Float32Array.from(xin), shape) : x;
      const right = binaryOp(op, xt, 1.5);
      const left = binaryOp(op, 2.5, xt);
      assertClose(await right.toArray(), binaryRef(op, xin, shape, 1.5, []), TOL.elementwise, `${op}(x, 1.5)`);
      assertClose(await left.toArray(), binaryRef(op, 2.5, [], xin, shape), TOL.elementwise, `${op}(2.5, x)`);
      right.dispose();
      left.dispose();
      if (xt !== x) xt.dispose();
    }
    const s = scale(x, -3);
    assertClose(await s.toArray(), binaryRef("mul", xs, shape, -3, []), TOL.elementwise, "scale");
    s.dispose();
    x.dispose();
  });

  it("computes integer powers of negative bases and pow(x, 0) = 1 like torch", async () => {
    const a = [-2, -2, -3, 0, 0, 0, 2, -8, -1.5];
    const b = [2, 3, -1, 0, 2, -1, 0.5, 1 / 3, 0];
    const t = pow(tensor(a), tensor(b));
    assertClose(await t.toArray(), binaryRef("pow", Float32Array.from(a), [9], Float32Array.from(b), [9]), TOL.elementwise, "pow");
    t.dispose();
  });

  it("broadcasts rank-6 operands on both sides", async () => {
    const a = [2, 3, 1, 4, 1, 5];
    const b = [3, 1, 4, 2, 1];
    await checkOp({
      what: "sub rank 6",
      inputs: [
        { shape: a, data: randomValues(size(a), 1) },
        { shape: b, data: randomValues(size(b), 2) },
      ],
      gpu: ([x, y]) => sub(x!, y!),
      ref: ([x, y]) => binaryRef("sub", x!, a, y!, b),
      tol: TOL.elementwise,
      shape: [2, 3, 1, 4, 2, 5],
    });
  });

  it("runs add/sub/mul/maximum/minimum on i32 with wrap-around", async () => {
    const ops = BINARY_OPS.filter((op) => "intRef" in BINARY[op]);
    expect(ops).toEqual(["add", "sub", "mul", "maximum", "minimum"]);
    const a = [4, 3];
    const b = [3];
    const big = [2147483647, -2147483648, 65537, -7, 0, 1, 46341, -46341, 123456, 99, 5, -5];
    for (const op of ops) {
      await checkOp({
        what: `${op} i32`,
        inputs: [
          { shape: a, data: Int32Array.from(big), dtype: "i32" },
          { shape: b, data: Int32Array.from([3, -2147483648, 46341]), dtype: "i32" },
        ],
        gpu: ([x, y]) => {
          const out = binaryOp(op, x!, y!);
          expect(out.dtype).toBe("i32");
          return out;
        },
        ref: ([x, y]) => binaryRef(op, x!, a, y!, b, "i32"),
        tol: TOL.exact,
      });
    }
    const t = tensor([1, 2, 3], [3], "i32");
    const s = add(t, -5);
    expect(Array.from(await s.toArray())).toEqual([-4, -3, -2]);
    s.dispose();
    t.dispose();
  });

  it("rejects bad shapes, dtypes and released tensors, naming the op and shapes", () => {
    const a = tensor(new Float32Array(6), [2, 3]);
    const b = tensor(new Float32Array(4), [4]);
    const i = tensor([1, 2, 3], [3], "i32");
    expect(() => add(a, b)).toThrow(ShapeError);
    expect(() => add(a, b)).toThrow("add: expected broadcastable shapes, got a=[2, 3], b=[4]");
    expect(() => mul(a, i)).toThrow(DTypeError);
    expect(() => mul(a, i)).toThrow("mul: expected the same dtype for a and b, got f32 and i32 (a=[2, 3], b=[3])");
    expect(() => div(i, i)).toThrow(/div: expected dtype f32 for a, got i32/);
    expect(() => add(i, 1.5)).toThrow(/add: expected an i32 integer for b/);
    const r7 = tensor(new Float32Array(1), [1, 1, 1, 1, 1, 1, 1]);
    expect(() => add(r7, 1)).toThrow(/add: expected rank at most 6 for a, got 7/);
    const c = tensor(new Float32Array(3), [3]);
    c.dispose();
    expect(() => sub(a, c)).toThrow(ReleasedError);
    expect(() => sub(a, c)).toThrow("sub: expected a live tensor for b, got one released by dispose() (shape [3])");
    b.dispose();
    a.dispose();
    i.dispose();
    r7.dispose();
  });
});

describe("tensors above one storage binding", () => {
  it("runs broadcast, tensor∘number and same-shape ops in chunks", async () => {
    const dev = device();
    // rows r and columns c/1024: r + c/1024 is exact in f32, so every result is exact
    const R = 8193;
    const C = 4100;
    expect(R * C * 4).toBeGreaterThan(dev.maxBinding);
    const rows = tensor(Float32Array.from({ length: R }, (_, r) => r), [R, 1]);
    const cols = tensor(Float32Array.from({ length: C }, (_, c) => c / 1024), [C]);
    const x = add(rows, cols); // broadcast, chunked over rows
    const y = mul(x, 2); // tensor ∘ number
    const z = add(x, y); // same shape
    const got = (await z.toArray()) as Float32Array;
    let bad = -1;
    for (let r = 0; r < R && bad < 0; r++) {
      for (let c = 0; c < C; c++) {
        const v = r + c / 1024;
        if (got[r * C + c] !== Math.fround(v + 2 * v)) {
          bad = r * C + c;
          break;
        }
      }
    }
    expect(bad, `first wrong element ${bad}: got ${got[bad]}`).toBe(-1);
    for (const t of [rows, cols, x, y, z]) t.dispose();
  });

  it("throws a LimitError when a big operand is broadcast over chunked rows", () => {
    const dev = device();
    const n = Math.floor(dev.maxBinding / 4) + 64;
    const big = full([n], 1);
    const two = full([2, 1], 1);
    expect(() => add(two, big)).toThrow(LimitError);
    expect(() => add(two, big)).toThrow(/add: expected at most \d+ bytes .* for b, which is broadcast/);
    big.dispose();
    two.dispose();
  });
});
