// embedding: the token gather against its float64 reference, bad ids (IndexError on the next
// read back, never a silent row), bad input, and a table above one storage binding.
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { DTypeError, IndexError, ReleasedError, ShapeError, device, embedding, embeddingBackward, embeddingBackwardRef, embeddingRef, tensor } from "../src/index.js";
import { FC, TOL, assertClose, checkOp, dimArb, randomValues, readRange, ready, shapeArb } from "./helpers.js";

beforeAll(async () => {
  await ready;
});

describe("embedding", () => {
  it("gathers rows for ids of any shape (vec4 and scalar rows)", async () => {
    const arb = fc.tuple(dimArb(129), dimArb(65), shapeArb(0, 3, 9), fc.array(fc.nat(), { minLength: 729, maxLength: 729 }), fc.integer());
    await fc.assert(
      fc.asyncProperty(arb, async ([v, d, idShape, raw, seed]) => {
        const n = idShape.reduce((a, b) => a * b, 1);
        const ids = Int32Array.from(raw.slice(0, n), (x) => x % v);
        await checkOp({
          what: `embedding [${v}, ${d}] ids [${idShape}]`,
          inputs: [{ shape: [v, d], data: randomValues(v * d, seed) }, { shape: idShape, data: ids, dtype: "i32" }],
          gpu: ([w, i]) => embedding(w!, i!),
          ref: ([w, i]) => embeddingRef(w!, [v, d], i!),
          tol: TOL.exact,
          shape: [...idShape, d],
        });
      }),
      FC,
    );
  });

  it("throws IndexError on the next read back for ids out of range", async () => {
    const w = tensor(Float32Array.from(randomValues(40, 1)), [10, 4]);
    for (const [bad, msg] of [[10, /embedding: expected ids in \[0, 10\) for ids, got 10/], [-1, /embedding: expected ids in \[0, 10\) for ids, got -1/]] as const) {
      const ids = tensor([[1, 2], [bad, 3]].flat(), [2, 2], "i32");
      const out = embedding(w, ids);
      const err = await out.toArray().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(IndexError);
      expect(String(err)).toMatch(msg);
      ids.dispose();
      out.dispose();
    }
    // the error is reported once; the table is intact and later reads work
    expect(Array.from(await w.toArray())).toHaveLength(40);
    w.dispose();
  });

  it("rejects bad shapes, dtypes and released tensors", () => {
    const w = tensor(new Float32Array(12), [3, 4]);
    const ids = tensor([0, 1], [2], "i32");
    const w1 = tensor(new Float32Array(12), [12]);
    const wi = tensor(new Int32Array(12), [3, 4]);
    const fid = tensor([0, 1]);
    expect(() => embedding(w1, ids)).toThrow(ShapeError);
    expect(() => embedding(w1, ids)).toThrow(/embedding: expected rank 2 for weight, got 1 \(shape \[12\]\)/);
    expect(() => embedding(wi, ids)).toThrow(DTypeError);
    expect(() => embedding(w, fid)).toThrow(/embedding: expected dtype i32 for ids, got f32/);
    ids.dispose();
    expect(() => embedding(w, ids)).toThrow(ReleasedError);
    expect(() => embedding(w, ids)).toThrow(/embedding: expected a live tensor for ids/);
    for (const t of [w, w1, wi, fid]) t.dispose();
  });

  it("gathers from a table above maxStorageBufferBindingSize (GPT-2 wte size class)", async (ctx) => {
    if (device().maxBinding > 2 ** 28) ctx.skip(); // multi-GiB bindings (a real GPU): wte fits one binding
    const V = 50257;
    const D = 700; // 50257 x 700 x 4 = 140.7 MB > 128 MiB
    expect(V * D * 4).toBeGreaterThan(device().maxBinding);
    const data = new Float32Array(V * D);
    for (let r = 0; r < V; r++) for (let c = 0; c < D; c++) data[r * D + c] = r * 7 + c; // exact in f32
    const w = tensor(data, [V, D], "f32");
    const rowsPerChunk = Math.floor((device().maxBinding / 4 - device().limits.minStorageBufferOffsetAlignment / 4) / D);
    const picks = [0, rowsPerChunk - 1, rowsPerChunk, V - 1, 12345, rowsPerChunk + 1, 3];
    const ids = tensor(picks, [1, picks.length], "i32");
    const out = embedding(w, ids);
    expect(out.shape).toEqual([1, picks.length, D]);
    const got = await out.toArray();
    picks.forEach((r, j) => expect(Array.from(got.subarray(j * D, (j + 1) * D)), `row ${r}`).toEqual(Array.from(data.subarray(r * D, (r + 1) * D))));
    // the table's last row is intact and readable by range
    expect(Array.from(await readRange(w, (V - 1) * D, 4))).toEqual([(V - 1) * 7, (V - 1) * 7 + 1, (V - 1) * 7 + 2, (V - 1) * 7 + 3]);
    // an id out of range is still caught on the big path
    const bad = tensor([V], [1], "i32");
    const out2 = embedding(w, bad);
    await expect(out2.toArray()).rejects.toThrow(/embedding: expected ids in \[0, 50257\) for ids, got 50257/);
    for (const t of [w, ids, out, bad, out2]) t.dispose();
  });
});

describe("embeddingBackward (scatter-add)", () => {
  it("sums repeated ids (vec4 and scalar rows) as the float64 reference", async () => {
    const arb = fc.tuple(dimArb(65), dimArb(33), shapeArb(1, 2, 17), fc.integer({ min: 1, max: 1 << 30 }));
    await fc.assert(
      fc.asyncProperty(arb, async ([v, d, idShape, seed]) => {
        const n = idShape.reduce((a, b) => a * b, 1);
        // few distinct ids so repeats are common
        const ids = Int32Array.from(randomValues(n, seed), (r) => Math.floor(((r + 1) / 2) * Math.min(v, 5)) % v);
        await checkOp({
          what: `embeddingBackward V=${v} D=${d} ids [${idShape}]`,
          inputs: [{ shape: [...idShape, d], data: randomValues(n * d, seed + 1) }, { shape: idShape, data: ids, dtype: "i32" }],
          gpu: ([g, i]) => embeddingBackward(g!, i!, v),
          ref: ([g, i]) => embeddingBackwardRef(g!, i!, v, d),
          tol: TOL.reduce,
          shape: [v, d],
        });
      }),
      FC,
    );
  });

  it("is deterministic and exact for a single id repeated (token-order sum)", async () => {
    const N = 300;
    const g = Float32Array.from(randomValues(N * 4, 9));
    const gt = tensor(g, [N, 4]);
    const ids = tensor(new Array(N).fill(2), [N], "i32");
    const a = embeddingBackward(gt, ids, 3);
    const b = embeddingBackward(gt, ids, 3);
    const ga = await a.toArray();
    expect(Array.from(ga)).toEqual(Array.from(await b.toArray()));
    const want = [0, 0, 0, 0];
    for (let j = 0; j < N; j++) for (let e = 0; e < 4; e++) want[e] = Math.fround(want[e]! + g[j * 4 + e]!); // f32, in token order
    expect(Array.from(ga.subarray(8))).toEqual(want);
    expect(Array.from(ga.subarray(0, 8))).toEqual(new Array(8).fill(0));
    const idsU = tensor(new Array(N).fill(2), [N], "u32"); // indexSelect's u32 ids: same result
    const c = embeddingBackward(gt, idsU, 3);
    expect(Array.from(await c.toArray())).toEqual(Array.from(ga));
    for (const t of [gt, ids, a, b, idsU, c]) t.dispose();
  });

  it("rejects bad shapes, dtypes and released tensors", () => {
    const g = tensor(new Float32Array(12), [3, 4]);
    const ids = tensor([0, 1, 2], [3], "i32");
    expect(() => embeddingBackward(g, tensor([0, 1], [2], "i32"), 5)).toThrow(/embeddingBackward: expected shape \[2, D\] for gradOut, got \[3, 4\] \(ids=\[2\]\)/);
    expect(() => embeddingBackward(g, tensor([0, 1, 2], [3]), 5)).toThrow(DTypeError);
    expect(() => embeddingBackward(g, ids, 0)).toThrow(/expected an integer in \[1, 2\^30\) for V, got 0/);
    ids.dispose();
    expect(() => embeddingBackward(g, ids, 5)).toThrow(/embeddingBackward: expected a live tensor for ids/);
    g.dispose();
  });

  it("writes a table above maxStorageBufferBindingSize by row ranges (GPT-2 wte size class)", async (ctx) => {
    if (device().maxBinding > 2 ** 28) ctx.skip();
    const V = 50257;
    const D = 700; // 140.7 MB > 128 MiB
    const rowsPerChunk = Math.floor((device().maxBinding / 4 - device().limits.minStorageBufferOffsetAlignment / 4) / D);
    const picks = [0, rowsPerChunk - 1, rowsPerChunk, V - 1, rowsPerChunk, 7, V - 1];
    const g = Float32Array.from(randomValues(picks.length * D, 4));
    const gt = tensor(g, [picks.length, D]);
    const ids = tensor(picks, [picks.length], "i32");
    const dw = embeddingBackward(gt, ids, V);
    const want = embeddingBackwardRef(g, picks, V, D);
    for (const r of [0, 1, rowsPerChunk - 1, rowsPerChunk, 7, V - 2, V - 1]) {
      assertClose(await readRange(dw, r * D, D), want.subarray(r * D, (r + 1) * D), TOL.reduce, `row ${r}`);
    }
    for (const t of [gt, ids, dw]) t.dispose();
  });
});
