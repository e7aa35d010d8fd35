// Gradient checks of the loss, lookup and movement rules (crossEntropy, embedding, indexSelect,
// quickGelu, slice, concat) against central differences of the engine's float64 references,
// on random shapes (fast-check, few runs: each is a GPU round trip plus 2·size reference
// evaluations). Tolerance: gradCheck's default |err| <= 2e-4 + 2e-3·|want| (f32 kernels vs
// float64 differences with h = 1e-6).
import {
  concatRef, crossEntropyRef, device, dispose, embeddingRef, indexSelectRef, sliceRef, tensor, tidy, unaryRef, type Tensor,
} from "@llms-eye/tensor";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { Var, ag, backward } from "../src/index.js";
import { gradCheck, ready } from "./gradcheck.js";

beforeAll(async () => {
  await ready;
});

const RUNS = { numRuns: 5, seed: 7 } as const;
const dim = (max: number) => fc.integer({ min: 1, max });
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

describe("loss and lookup rules vs central differences", () => {
  it("crossEntropy (ignore index, mean / sum / none, padding columns)", async () => {
    await fc.assert(
      fc.asyncProperty(dim(9), dim(40), fc.constantFrom("mean", "sum", "none" as const), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 9, maxLength: 9 }), fc.constantFrom(-100, 0), fc.constantFrom(0, 3),
        async (N, C, reduction, u, ignoreIndex, pad) => {
          const V = C + pad;
          const targets = Array.from({ length: N }, (_, n) => (n > 0 && u[n]! > 0.7 ? ignoreIndex : Math.floor(u[n]! * C) % C));
          if (targets[0] === ignoreIndex) targets[0] = C - 1 === ignoreIndex ? 0 : C - 1; // one counted row at least
          if (targets[0] === ignoreIndex) return; // C = 1 with ignoreIndex 0: nothing to check
          const t = tensor(targets, [N], "i32");
          const opts = { reduction, ignoreIndex, ...(pad ? { classes: C } : {}) };
          await gradCheck({
            name: `crossEntropy [${N}, ${V}] ${JSON.stringify(opts)}`,
            shapes: [[N, V]],
            gpu: ([x]) => ag.crossEntropy(x!, t, opts),
            ref: ([x]) => crossEntropyRef(x!, targets, N, V, opts).loss,
          });
          t.dispose();
        }),
      RUNS,
    );
  });

  it("embedding (repeated ids)", async () => {
    await fc.assert(
      fc.asyncProperty(dim(7), dim(9), fc.array(fc.nat(), { minLength: 1, maxLength: 12 }), async (V, D, raw) => {
        const idv = raw.map((r) => r % Math.min(V, 3)); // few distinct ids: repeats
        const ids = tensor(idv, [idv.length], "i32");
        await gradCheck({
          name: `embedding [${V}, ${D}] ids ${JSON.stringify(idv)}`,
          shapes: [[V, D]],
          gpu: ([w]) => ag.embedding(w!, ids),
          ref: ([w]) => embeddingRef(w!, [V, D], idv),
        });
        ids.dispose();
      }),
      RUNS,
    );
  });

  it("indexSelect on any axis (repeated ids)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(dim(5), { minLength: 1, maxLength: 3 }), fc.nat(), fc.array(fc.nat(), { minLength: 1, maxLength: 6 }), async (shape, a, raw) => {
        const axis = a % shape.length;
        const idv = raw.map((r) => r % shape[axis]!);
        const index = tensor(idv, [idv.length], "i32");
        await gradCheck({
          name: `indexSelect [${shape}] axis ${axis} ids ${JSON.stringify(idv)}`,
          shapes: [shape],
          gpu: ([x]) => ag.indexSelect(x!, axis, index),
          ref: ([x]) => indexSelectRef(x!, shape, axis, idv),
        });
        index.dispose();
      }),
      RUNS,
    );
  });

  it("quickGelu", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(dim(9), { minLength: 1, maxLength: 3 }), async (shape) =>
        gradCheck({ name: `quickGelu [${shape}]`, shapes: [shape], gpu: ([x]) => ag.quickGelu(x!), ref: ([x]) => unaryRef("quickGelu", x!) })),
      RUNS,
    );
  });

  it("slice (leading axes, negative bounds, views and copies)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(dim(6), { minLength: 1, maxLength: 3 }), fc.array(fc.tuple(fc.nat(), fc.nat(), fc.boolean()), { minLength: 3, maxLength: 3 }), fc.nat(),
        async (shape, bounds, k) => {
          const n = 1 + (k % shape.length);
          const starts: number[] = [];
          const ends: number[] = [];
          for (let i = 0; i < n; i++) {
            const d = shape[i]!;
            const [a, b, negative] = bounds[i]!;
            const s = a % d;
            const e = s + 1 + (b % (d - s));
            starts.push(negative ? s - d : s);
            ends.push(negative && e < d ? e - d : e);
          }
          await gradCheck({
            name: `slice [${shape}] ${JSON.stringify(starts)}:${JSON.stringify(ends)}`,
            shapes: [shape],
            gpu: ([x]) => ag.slice(x!, starts, ends),
            ref: ([x]) => sliceRef(x!, shape, starts, ends),
          });
        }),
      RUNS,
    );
  });

  it("concat (2 or 3 inputs, any axis)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(dim(5), { minLength: 1, maxLength: 3 }), fc.nat(), fc.array(dim(4), { minLength: 2, maxLength: 3 }), async (base, a, sizes) => {
        const axis = a % base.length;
        const shapes = sizes.map((s) => base.map((d, i) => (i === axis ? s : d)));
        await gradCheck({
          name: `concat ${JSON.stringify(shapes)} axis ${axis}`,
          shapes,
          gpu: (xs) => ag.concat(xs, axis),
          ref: (xs) => concatRef(xs, shapes, axis),
        });
      }),
      RUNS,
    );
  });
});

describe("loss and lookup rules: frozen inputs and memory", () => {
  it("concat with a constant input gives the Var its slice only", async () => {
    const x = new Var(tensor([1, 2, 3, 4], [2, 2]).keep(), true);
    const c = tensor([5, 6], [2, 1]);
    tidy(() => backward(ag.sum(ag.mul(ag.concat([c, x], 1), tensor([1, 2, 3, 4, 5, 6], [2, 3])))));
    expect(Array.from(await x.grad!.toArray())).toEqual([2, 3, 5, 6]);
    dispose(c);
    x.dispose();
  });

  it("an embedding → quickGelu → crossEntropy step releases every intermediate", async () => {
    const w = new Var(tensor(Array.from({ length: 40 }, (_, i) => Math.sin(i)), [10, 4]).keep(), true);
    const ids = tensor([1, 3, 3, 9, 0, 1], [6], "i32");
    const targets = tensor([0, 1, 2, -100, 3, 1], [6], "i32");
    const step = () =>
      tidy(() => {
        const h = ag.quickGelu(ag.embedding(w, ids));
        const x = ag.slice(ag.concat([h, h], 1), [0, 2], [6, 6]);
        backward(ag.crossEntropy(x, targets));
      });
    step();
    const before = device().stats().liveBytes;
    for (let i = 0; i < 20; i++) step();
    await device().sync();
    expect(device().stats().liveBytes).toBe(before);
    const g: Tensor = w.grad!;
    expect((await g.toArray()).every(Number.isFinite)).toBe(true);
    expect(Array.from((await g.toArray()).subarray(16, 32))).toEqual(new Array(16).fill(0)); // rows 4..7 never looked up
    dispose(ids, targets);
    w.dispose();
  });
});
