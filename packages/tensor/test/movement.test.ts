// Data-movement ops: clone, permute/transpose, slice, concat, indexSelect — against their
// float64 references over random shapes, bad input, and the paths above one storage binding
// (> 128 MiB) and above 65535 workgroups.
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  DTypeError,
  IndexError,
  ReleasedError,
  ShapeError,
  clone,
  cloneRef,
  concat,
  concatRef,
  device,
  dispose,
  indexSelect,
  indexSelectRef,
  permute,
  permuteRef,
  slice,
  sliceRef,
  tensor,
  transpose,
  type Tensor,
} from "../src/index.js";
import { EDGE_DIMS, FC, TOL, checkOp, dimArb, randomValues, readRange, ready, shapeArb } from "./helpers.js";

beforeAll(async () => {
  await ready;
});

const size = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);
const smallShape = (minRank: number, maxRank: number, maxDim = 33, maxSize = 30000): fc.Arbitrary<number[]> =>
  shapeArb(minRank, maxRank, maxDim).filter((s) => size(s) <= maxSize);
const values = (shape: number[], seed: number): Float64Array => randomValues(size(shape), seed);
const ints = (n: number, seed: number): Int32Array => Int32Array.from(randomValues(n, seed, 1e6), (v) => Math.round(v));

describe("clone", () => {
  it("copies any shape and dtype exactly", async () => {
    await fc.assert(
      fc.asyncProperty(smallShape(0, 4), fc.boolean(), fc.integer(), async (shape, asInt, seed) => {
        const data = asInt ? ints(size(shape), seed) : values(shape, seed);
        await checkOp({ what: `clone ${shape}`, inputs: [{ shape, data, dtype: asInt ? "i32" : "f32" }], gpu: ([x]) => clone(x!), ref: ([x]) => cloneRef(x!), tol: TOL.exact, shape });
      }),
      FC,
    );
  });

  it("keeps NaN, -0 and infinities bit for bit", async () => {
    const x = tensor(new Float32Array([NaN, -0, Infinity, -Infinity, 1e-45]));
    const y = clone(x);
    expect(Array.from(await y.toArray())).toEqual(Array.from(new Float32Array([NaN, -0, Infinity, -Infinity, 1e-45])));
    x.dispose();
    y.dispose();
  });

  it("throws on a released tensor", () => {
    const x = tensor([1, 2, 3]);
    x.dispose();
    expect(() => clone(x)).toThrow(ReleasedError);
    expect(() => clone(x)).toThrow(/clone: expected a live tensor/);
  });
});

const permArb = (rank: number): fc.Arbitrary<number[]> =>
  fc.shuffledSubarray(Array.from({ length: rank }, (_, i) => i), { minLength: rank, maxLength: rank });

describe("permute / transpose", () => {
  it("matches the reference for random shapes and orders (rank 1-5)", async () => {
    const arb = smallShape(1, 5, 17).chain((shape) => fc.tuple(fc.constant(shape), permArb(shape.length), fc.integer()));
    await fc.assert(
      fc.asyncProperty(arb, async ([shape, perm, seed]) => {
        await checkOp({
          what: `permute ${shape} by ${perm}`,
          inputs: [{ shape, data: values(shape, seed) }],
          gpu: ([x]) => permute(x!, perm),
          ref: ([x]) => permuteRef(x!, shape, perm),
          tol: TOL.exact,
          shape: perm.map((a) => shape[a]!),
        });
      }),
      FC,
    );
  });

  it("transposes 2-D and batched matrices at tile edges (block kernel, vec4 and scalar)", async () => {
    const arb = fc.tuple(fc.constantFrom(1, 2, 3), dimArb(129), dimArb(129), fc.integer());
    await fc.assert(
      fc.asyncProperty(arb, async ([b, r, c, seed]) => {
        const shape = b === 1 ? [r, c] : [b, r, c];
        const perm = b === 1 ? [1, 0] : [0, 2, 1];
        await checkOp({ what: `transpose ${shape}`, inputs: [{ shape, data: values(shape, seed) }], gpu: ([x]) => transpose(x!), ref: ([x]) => permuteRef(x!, shape, perm), tol: TOL.exact });
      }),
      FC,
    );
  });

  it("handles rank 6, merged axes, head splits, i32 data and negative axes", async () => {
    const cases: [number[], number[]][] = [
      [[2, 3, 1, 4, 5, 2], [5, 3, 1, 0, 4, 2]],
      [[2, 7, 3, 16], [0, 2, 1, 3]], // attention head split, vec4 rows
      [[2, 7, 3, 13], [0, 2, 1, 3]], // scalar rows
      [[4, 5, 6, 7], [0, 1, 3, 2]],
      [[3, 4, 5], [-1, 0, 1]],
    ];
    for (const [shape, perm] of cases) {
      const data = ints(size(shape), 7);
      await checkOp({ what: `permute ${shape} by ${perm}`, inputs: [{ shape, data, dtype: "i32" }], gpu: ([x]) => permute(x!, perm), ref: ([x]) => permuteRef(x!, shape, perm), tol: TOL.exact });
    }
    // rank 8 whose axes merge to rank <= 6
    const shape8 = [2, 1, 3, 2, 1, 2, 3, 2];
    const perm8 = [0, 1, 2, 3, 7, 6, 5, 4];
    await checkOp({ what: "permute rank 8 (mergeable)", inputs: [{ shape: shape8, data: values(shape8, 3) }], gpu: ([x]) => permute(x!, perm8), ref: ([x]) => permuteRef(x!, shape8, perm8), tol: TOL.exact });
  });

  it("transpose(x, d0, d1) swaps any two axes; the identity is a fresh copy", async () => {
    const shape = [3, 4, 5];
    await checkOp({ what: "transpose(x, 0, 2)", inputs: [{ shape, data: values(shape, 1) }], gpu: ([x]) => transpose(x!, 0, 2), ref: ([x]) => permuteRef(x!, shape, [2, 1, 0]), tol: TOL.exact, shape: [5, 4, 3] });
    const x = tensor([1, 2, 3, 4], [2, 2]);
    const y = permute(x, [0, 1]);
    x.dispose();
    expect(Array.from(await y.toArray())).toEqual([1, 2, 3, 4]);
    y.dispose();
  });

  it("rejects bad permutations, too many axes and released tensors", () => {
    const x = tensor(new Float32Array(24), [2, 3, 4]);
    expect(() => permute(x, [0, 1])).toThrow(/permute: expected a permutation of 3 axes for perm, got \[0, 1\] \(x=\[2, 3, 4\]\)/);
    expect(() => permute(x, [0, 1, 1])).toThrow(ShapeError);
    expect(() => permute(x, [0, 1, 3])).toThrow(ShapeError);
    expect(() => transpose(x, 0, 3)).toThrow(/transpose: expected axes in \[-3, 2\], got \(0, 3\)/);
    const big = tensor(new Float32Array(128), [2, 2, 2, 2, 2, 2, 2]);
    expect(() => permute(big, [6, 5, 4, 3, 2, 1, 0])).toThrow(/permute: expected at most 6 axes/);
    big.dispose();
    x.dispose();
    expect(() => permute(x, [2, 1, 0])).toThrow(ReleasedError);
  });
});

// a slice of `shape` over its first k axes, each end given as-is or counted from the end
const sliceArb = smallShape(1, 4, 33).chain((shape) =>
  fc
    .integer({ min: 1, max: shape.length })
    .chain((k) =>
      fc.tuple(
        fc.constant(shape),
        fc.tuple(...shape.slice(0, k).map((d) => fc.tuple(fc.integer({ min: 0, max: d - 1 }), fc.integer({ min: 1, max: d }), fc.boolean(), fc.boolean()))),
        fc.integer(),
      ),
    ),
);

describe("slice", () => {
  it("matches the reference for random ranges (negative ends included)", async () => {
    await fc.assert(
      fc.asyncProperty(sliceArb, async ([shape, rs, seed]) => {
        const starts: number[] = [];
        const ends: number[] = [];
        rs.forEach(([a, b, negS, negE], i) => {
          const d = shape[i]!;
          const [s, e] = a < b ? [a, b] : [b - 1, a + 1];
          starts.push(negS ? s - d : s);
          ends.push(negE && e < d ? e - d : e);
        });
        await checkOp({ what: `slice ${shape} [${starts}]:[${ends}]`, inputs: [{ shape, data: values(shape, seed) }], gpu: ([x]) => slice(x!, starts, ends), ref: ([x]) => sliceRef(x!, shape, starts, ends), tol: TOL.exact });
      }),
      FC,
    );
  });

  it("returns views for aligned contiguous blocks and copies otherwise", async () => {
    const x = tensor(Array.from({ length: 4 * 3 * 64 }, (_, i) => i), [4, 3, 64]);
    const live = device().stats().liveBuffers;
    const rows = slice(x, [2], [4]); // leading rows at offset 384: a view
    const one = slice(x, [1, 1], [2, 3]); // x[1, 1:3]: contiguous at offset 256: a view
    expect(device().stats().liveBuffers).toBe(live);
    expect(rows.shape).toEqual([2, 3, 64]);
    expect(one.shape).toEqual([1, 2, 64]);
    const copied = slice(x, [0, 1], [2, 2]); // x[0:2, 1:2]: strided, a copy
    const unaligned = slice(x, [0, 0, 1], [1, 1, 5]); // offset 1: a copy
    expect(device().stats().liveBuffers).toBe(live + 2);
    x.dispose();
    expect(Array.from(await rows.toArray()).slice(0, 2)).toEqual([384, 385]);
    expect(Array.from(await one.toArray()).slice(0, 2)).toEqual([256, 257]);
    expect(Array.from(await copied.toArray()).slice(0, 2)).toEqual([64, 65]);
    expect(Array.from(await unaligned.toArray())).toEqual([1, 2, 3, 4]);
    // ops read views at their offset: copy, strided, block-transpose and gather paths
    const want = sliceRef(Float64Array.from({ length: 4 * 3 * 64 }, (_, i) => i), [4, 3, 64], [2], [4]);
    const outs = [clone(rows), permute(rows, [1, 0, 2]), transpose(one), slice(rows, [1, 1], [2, 3]), concat([one, one], 1)];
    const idx = tensor([1], [1], "i32");
    outs.push(indexSelect(rows, 0, idx));
    const got = await Promise.all(outs.map((t) => t.toArray()));
    expect(Array.from(got[0]!)).toEqual(Array.from(want));
    expect(Array.from(got[1]!)).toEqual(Array.from(permuteRef(want, [2, 3, 64], [1, 0, 2])));
    expect(Array.from(got[2]!).slice(0, 3)).toEqual([256, 320, 257]);
    expect(Array.from(got[3]!).slice(0, 2)).toEqual([576 + 64, 576 + 65]);
    expect(Array.from(got[4]!).slice(126, 130)).toEqual([382, 383, 256, 257]);
    expect(Array.from(got[5]!)).toEqual(Array.from(want.subarray(192)));
    for (const t of [rows, one, copied, unaligned, idx, ...outs]) t.dispose();
  });

  it("rejects out-of-range and empty ranges, bad lengths and released tensors", () => {
    const x = tensor(new Float32Array(12), [3, 4]);
    expect(() => slice(x, [0, 0], [3, 5])).toThrow(/slice: expected start in \[-4, 4\) and end in \[-4, 4\] on axis 1, got 0:5 \(starts=\[0, 0\], ends=\[3, 5\], x=\[3, 4\]\)/);
    expect(() => slice(x, [-4], [2])).toThrow(ShapeError);
    expect(() => slice(x, [3], [3])).toThrow(ShapeError);
    expect(() => slice(x, [2], [1])).toThrow(/slice: expected a non-empty range on axis 0, got 2:1/);
    expect(() => slice(x, [1], [-2])).toThrow(/non-empty/);
    expect(() => slice(x, [0, 0], [1])).toThrow(/expected starts and ends of equal length/);
    expect(() => slice(x, [0, 0, 0], [1, 1, 1])).toThrow(ShapeError);
    x.dispose();
    expect(() => slice(x, [0], [1])).toThrow(/slice: expected a live tensor for x/);
  });
});

describe("concat", () => {
  const concatArb = fc
    .tuple(smallShape(1, 4, 17, 8000), fc.integer({ min: 1, max: 5 }), fc.nat(), fc.integer())
    .chain(([shape, n, axisSeed, seed]) => {
      const axis = axisSeed % shape.length;
      return fc.tuple(fc.constant(shape), fc.constant(axis), fc.array(fc.constantFrom(...EDGE_DIMS.filter((d) => d <= 17)), { minLength: n, maxLength: n }), fc.constant(seed), fc.boolean());
    });

  it("matches the reference for random inputs and axes", async () => {
    await fc.assert(
      fc.asyncProperty(concatArb, async ([shape, axis, sizes, seed, negAxis]) => {
        const shapes = sizes.map((d) => shape.map((s, i) => (i === axis ? d : s)));
        await checkOp({
          what: `concat ${shapes.map((s) => `[${s}]`).join(" ")} axis ${axis}`,
          inputs: shapes.map((s, i) => ({ shape: s, data: values(s, seed + i) })),
          gpu: (xs) => concat(xs, negAxis ? axis - shape.length : axis),
          ref: (xs) => concatRef(xs, shapes, axis),
          tol: TOL.exact,
        });
      }),
      FC,
    );
  });

  it("joins 24 inputs along any axis (one dispatch per input)", async () => {
    for (const axis of [0, 1, 2]) {
      const shapes = Array.from({ length: 24 }, (_, i) => [3, 5, 4].map((d, j) => (j === axis ? 1 + (i % 3) : d)));
      await checkOp({
        what: `concat of 24 along ${axis}`,
        inputs: shapes.map((s, i) => ({ shape: s, data: ints(size(s), i), dtype: "i32" as const })),
        gpu: (xs) => concat(xs, axis),
        ref: (xs) => concatRef(xs, shapes, axis),
        tol: TOL.exact,
      });
    }
  });

  it("rejects mismatched shapes and dtypes, empty lists and released tensors", () => {
    const a = tensor(new Float32Array(6), [2, 3]);
    const b = tensor(new Float32Array(8), [2, 4]);
    const c = tensor(new Int32Array(6), [2, 3]);
    expect(() => concat([a, b], 0)).toThrow(/concat: expected sizes equal to xs\[0\] outside axis 0 for xs\[1\], got \[2, 4\] \(xs\[0\]=\[2, 3\]\)/);
    expect(concat([a, b], 1).shape).toEqual([2, 7]);
    expect(() => concat([a, c], 0)).toThrow(DTypeError);
    expect(() => concat([a, c], 0)).toThrow(/concat: expected dtype f32 for xs\[1\], got i32/);
    expect(() => concat([], 0)).toThrow(/concat: expected at least one tensor/);
    expect(() => concat([a, a], 2)).toThrow(/concat: expected axis in \[-2, 1\], got 2/);
    b.dispose();
    expect(() => concat([a, b], 1)).toThrow(/concat: expected a live tensor for xs\[1\]/);
    a.dispose();
    c.dispose();
  });
});

describe("indexSelect", () => {
  const arb = smallShape(1, 4, 17, 10000).chain((shape) =>
    fc.tuple(
      fc.constant(shape),
      fc.integer({ min: 0, max: shape.length - 1 }),
      fc.integer({ min: 1, max: 12 }).chain((n) => fc.array(fc.nat(), { minLength: n, maxLength: n })),
      fc.integer(),
    ),
  );

  it("gathers along any axis (repeats included)", async () => {
    await fc.assert(
      fc.asyncProperty(arb, async ([shape, axis, raw, seed]) => {
        const ids = Int32Array.from(raw, (v) => v % shape[axis]!);
        await checkOp({
          what: `indexSelect ${shape} axis ${axis} [${ids}]`,
          inputs: [{ shape, data: values(shape, seed) }, { shape: [ids.length], data: ids, dtype: "i32" }],
          gpu: ([x, i]) => indexSelect(x!, axis, i!),
          ref: ([x, i]) => indexSelectRef(x!, shape, axis, i!),
          tol: TOL.exact,
          shape: shape.map((d, j) => (j === axis ? ids.length : d)),
        });
      }),
      FC,
    );
  });

  it("reports ids out of range on the next read back", async () => {
    const x = tensor(new Float32Array(12), [3, 4]);
    for (const bad of [4, -1]) {
      const idx = tensor([0, bad, 2], [3], "i32");
      const y = indexSelect(x, 1, idx);
      await expect(y.toArray()).rejects.toThrow(IndexError);
      idx.dispose();
      y.dispose();
    }
    const idx = tensor([7], [1], "i32");
    const y = indexSelect(x, 0, idx);
    await expect(y.toArray()).rejects.toThrow(/indexSelect: expected ids in \[0, 3\) for index, got 7/);
    // the flag is cleared: the next read back succeeds
    expect(Array.from(await x.toArray())).toHaveLength(12);
    for (const t of [x, idx, y]) t.dispose();
  });

  it("rejects bad index shapes and dtypes", () => {
    const x = tensor(new Float32Array(12), [3, 4]);
    const i2 = tensor([0, 1], [1, 2], "i32");
    const f = tensor([0, 1]);
    expect(() => indexSelect(x, 0, i2)).toThrow(/indexSelect: expected rank 1 for index, got 2 \(index=\[1, 2\], x=\[3, 4\]\)/);
    expect(() => indexSelect(x, 0, f)).toThrow(DTypeError);
    expect(() => indexSelect(x, 2, i2.reshape([2]))).toThrow(/indexSelect: expected axis in \[-2, 1\], got 2/);
    for (const t of [x, i2, f]) t.dispose();
  });
});

describe("memory", () => {
  it("leaves no live buffers behind (views, copies and failed calls)", async () => {
    const x = tensor(Float32Array.from(values([4, 6, 8], 5)), [4, 6, 8]);
    const idx = tensor([1, 0], [2], "i32");
    const before = device().stats();
    for (let i = 0; i < 3; i++) {
      dispose(
        clone(x), permute(x, [2, 0, 1]), transpose(x), slice(x, [1], [3]), slice(x, [0, 1], [2, 3]),
        concat([x, x, x], 1), indexSelect(x, 2, idx),
      );
      expect(() => slice(x, [0], [9])).toThrow(ShapeError);
      expect(() => concat([x, idx])).toThrow(DTypeError);
    }
    await device().sync();
    expect(device().stats().liveBuffers).toBe(before.liveBuffers);
    expect(device().stats().liveBytes).toBe(before.liveBytes);
    x.dispose();
    idx.dispose();
  });
});

describe("above one storage binding and 65535 workgroups", () => {
  it("clone, permute, slice, concat and indexSelect chunk a > 128 MiB tensor", async (ctx) => {
    if (device().maxBinding > 2 ** 28) ctx.skip(); // multi-GiB bindings (a real GPU): too big to build here
    // u32 iota [2, R, C] just above maxStorageBufferBindingSize: value = its flat index
    const C = 4100;
    const R = Math.ceil(device().maxBinding / 4 / 2 / C) + 3; // so that x[:, 1:, 1:] is above one binding too
    const n = 2 * R * C;
    expect(n * 4).toBeGreaterThan(device().maxBinding);
    const data = new Uint32Array(n);
    for (let i = 0; i < n; i++) data[i] = i;
    const x = tensor(data, [2, R, C], "u32");
    const at = (b: number, r: number, c: number): number => (b * R + r) * C + c;
    // reads `count` elements of `t` at flat `start` and compares with want(i)
    const expectAt = async (t: Tensor, start: number, count: number, want: (i: number) => number, what: string) => {
      const got = await readRange(t, start, count);
      expect(Array.from(got), what).toEqual(Array.from({ length: count }, (_, k) => want(start + k)));
    };
    const chunk = device().maxBinding / 4 - device().limits.minStorageBufferOffsetAlignment / 4; // ops' chunk (util.ts maxChunkElems)
    const probes = (size: number): number[] => {
      expect(size).toBeGreaterThan(chunk);
      return [0, Math.floor(size / 2) - 3, chunk - 4, size - chunk - 4, size - 8].filter((p) => p >= 0);
    };

    const cl = clone(x);
    for (const p of probes(n)) await expectAt(cl, p, 8, (i) => i, `clone @${p}`);
    cl.dispose();

    // [R, 2, C]: every output chunk reads both input chunks (vec4 rows)
    const pm = permute(x, [1, 0, 2]);
    const pmAt = (i: number): number => { const c = i % C; const b = Math.floor(i / C) % 2; const r = Math.floor(i / (2 * C)); return at(b, r, c); };
    for (const p of probes(n)) await expectAt(pm, p, 8, pmAt, `permute @${p}`);
    pm.dispose();

    // x as [2, R, 2, C/2] -> [R, 2, C/2, 2]: scalar strided copy, > 65535 workgroups, both input chunks
    const h = C / 2;
    const x4 = x.reshape([2, R, 2, h]);
    const pm2 = permute(x4, [1, 0, 3, 2]);
    x4.dispose();
    const pm2At = (i: number): number => {
      const c2 = i % 2; const c1 = Math.floor(i / 2) % h; const b = Math.floor(i / C) % 2; const r = Math.floor(i / (2 * C));
      return at(b, r, c2 * h + c1);
    };
    for (const p of probes(n)) await expectAt(pm2, p, 8, pm2At, `permute (scalar) @${p}`);
    pm2.dispose();

    // x[:, 1:, 1:]: scalar strided copy, > 65535 workgroups per chunk
    const sl = slice(x, [0, 1, 1], [2, R, C]);
    const slAt = (i: number): number => { const c = i % (C - 1); const r = Math.floor(i / (C - 1)) % (R - 1); const b = Math.floor(i / ((C - 1) * (R - 1))); return at(b, r + 1, c + 1); };
    for (const p of probes(sl.size)) await expectAt(sl, p, 8, slAt, `slice @${p}`);
    sl.dispose();

    // concat along the last axis with a [2, R, 3] block: row groups, scalar, > 65535 workgroups
    const tail = tensor(new Uint32Array(2 * R * 3).fill(7), [2, R, 3], "u32");
    const ct = concat([x, tail], 2);
    const ctAt = (i: number): number => { const c = i % (C + 3); const br = Math.floor(i / (C + 3)); return c < C ? br * C + c : 7; };
    for (const p of probes(ct.size)) await expectAt(ct, p, 8, ctAt, `concat @${p}`);
    ct.dispose();
    tail.dispose();

    // rows on both sides of the input chunk edge
    const ids = tensor([0, R - 1, Math.floor(R / 2)], [3], "i32");
    const sel = indexSelect(x, 1, ids);
    const selAt = (i: number): number => { const c = i % C; const j = Math.floor(i / C) % 3; const b = Math.floor(i / (3 * C)); return at(b, [0, R - 1, Math.floor(R / 2)][j]!, c); };
    await expectAt(sel, 0, sel.size, selAt, "indexSelect");
    for (const t of [sel, ids, x]) t.dispose();
  });
});
