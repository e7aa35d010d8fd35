// Loader: determinism per seed, coverage per epoch (one caption per image, or every caption),
// save/restore reproducing an uninterrupted run exactly, padding and truncation counting.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Batch, Loader, type LoaderItem, type LoaderOptions } from "../src/loader.js";

/** n items; item i has 1 + (i % maxCaps) captions of varying word counts. */
function items(n: number, maxCaps = 3): LoaderItem[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `img${i}`,
    captions: Array.from({ length: 1 + (i % maxCaps) }, (_, j) => Array.from({ length: 1 + ((i * 7 + j * 3) % 9) }, (_, w) => `w${i}_${j}_${w}`).join(" ")),
  }));
}
const tokenize = (s: string): number[] => s.split(" ").map((w) => w.length);
const opts = (o: Partial<LoaderOptions> = {}): LoaderOptions => ({ batchSize: 4, seed: 1, tokenize, padId: -1, ...o });
const take = (l: Loader, k: number): Batch[] => Array.from({ length: k }, () => l.next());
const plain = (b: Batch) => ({ epoch: b.epoch, step: b.step, items: b.items, cap: b.captionIndex, tokens: [...b.tokens], shape: b.shape, lengths: b.lengths });

describe("Loader", () => {
  it("gives the same batches for the same seed and different ones for another seed", () => {
    const data = items(37);
    const a = take(new Loader(data, opts()), 30).map(plain);
    const b = take(new Loader(data, opts()), 30).map(plain);
    const c = take(new Loader(data, opts({ seed: 2 })), 30).map(plain);
    expect(b).toEqual(a);
    expect(c.map((x) => x.items)).not.toEqual(a.map((x) => x.items));
  });

  it("serves every image once per epoch, in a different order each epoch, with the smaller last batch", () => {
    const data = items(10);
    const l = new Loader(data, opts());
    expect(l.stepsPerEpoch).toBe(3);
    const epochs = [0, 1, 2].map((e) => {
      const bs = take(l, 3);
      expect(bs.map((b) => [b.epoch, b.step, b.items.length])).toEqual([[e, 0, 4], [e, 1, 4], [e, 2, 2]]);
      const order = bs.flatMap((b) => b.items);
      expect([...order].sort((x, y) => x - y)).toEqual([...Array(10).keys()]);
      return order;
    });
    expect(new Set(epochs.map((o) => o.join())).size).toBe(3);
    expect(l.position()).toMatchObject({ epoch: 3, index: 0 });
  });

  it("picks one caption per image per epoch, varying over epochs, deterministically", () => {
    const data = [{ id: "a", captions: ["x", "y y", "z z z", "w w w w", "v"] }];
    const picks = (seed: number) => take(new Loader(data, opts({ batchSize: 1, seed })), 40).map((b) => b.captionIndex[0]!);
    const p = picks(3);
    expect(picks(3)).toEqual(p);
    expect(new Set(p).size).toBe(5);
  });

  it('"all" mode serves every (image, caption) pair exactly once per epoch', () => {
    const data = items(11, 4);
    const total = data.reduce((s, d) => s + d.captions.length, 0);
    const l = new Loader(data, opts({ captions: "all", batchSize: 5 }));
    expect(l.units).toBe(total);
    for (let e = 0; e < 2; e++) {
      const bs = take(l, l.stepsPerEpoch);
      const pairs = bs.flatMap((b) => b.items.map((it, r) => `${it}:${b.captionIndex[r]}`));
      expect(pairs.length).toBe(total);
      expect(new Set(pairs).size).toBe(total);
      bs.forEach((b) => b.items.forEach((it, r) => expect(b.captions[r]).toBe(data[it]!.captions[b.captionIndex[r]!])));
    }
  });

  it("dropLast drops only the incomplete last batch", () => {
    const l = new Loader(items(10), opts({ dropLast: true }));
    expect(l.stepsPerEpoch).toBe(2);
    expect(take(l, 4).map((b) => [b.epoch, b.items.length])).toEqual([[0, 4], [0, 4], [1, 4], [1, 4]]);
  });

  it("restoring a saved position reproduces the uninterrupted run exactly (mid-epoch and across epochs)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 1, max: 9 }),
        fc.constantFrom<"random" | "all">("random", "all"),
        fc.boolean(),
        fc.integer({ min: 0, max: 1000 }),
        fc.nat(),
        (n, batchSize, captions, dropLast, seed, cut) => {
          const data = items(n);
          const o = opts({ batchSize, captions, dropLast, seed, maxTokens: 6 });
          let ref: Loader;
          try {
            ref = new Loader(data, o);
          } catch {
            return dropLast; // fewer units than a batch with dropLast: refused, checked below
          }
          const total = ref.stepsPerEpoch * 3 + 1;
          const whole = take(ref, total).map(plain);
          const k = cut % total;
          const first = new Loader(data, o);
          const before = take(first, k).map(plain);
          const saved = JSON.parse(JSON.stringify(first.position())) as unknown;
          const resumed = new Loader(data, o);
          resumed.restore(saved);
          expect([...before, ...take(resumed, total - k).map(plain)]).toEqual(whole);
          return true;
        },
      ),
      { numRuns: 150 },
    );
  });

  it("refuses a position from another dataset, options or seed, or a malformed one", () => {
    const data = items(12);
    const pos = (() => {
      const l = new Loader(data, opts());
      l.next();
      return l.position();
    })();
    expect(() => new Loader(items(13), opts()).restore(pos)).toThrow(/fingerprint .*12 units, batch 4/);
    expect(() => new Loader(data.map((d, i) => (i === 3 ? { ...d, id: "other" } : d)), opts()).restore(pos)).toThrow(/same dataset file/);
    expect(() => new Loader(data, opts({ batchSize: 3 })).restore(pos)).toThrow(/fingerprint/);
    expect(() => new Loader(data, opts({ captions: "all" })).restore(pos)).toThrow(/fingerprint/);
    expect(() => new Loader(data, opts({ seed: 9 })).restore(pos)).toThrow(/seed 9, got seed 1/);
    expect(() => new Loader(data, opts()).restore({ ...pos, index: 3 })).toThrow(/multiple of batchSize 4/);
    expect(() => new Loader(data, opts()).restore({ epoch: 1 })).toThrow(/as saved by position\(\)/);
  });

  it("pads to the batch's longest caption with padId, truncates to maxTokens and counts it", () => {
    const data = [
      { id: "a", captions: ["aa b"] },
      { id: "b", captions: ["a bb ccc dddd eeeee ffffff"] },
      { id: "c", captions: ["x"] },
    ];
    let calls = 0;
    const l = new Loader(data, opts({ batchSize: 3, maxTokens: 4, padId: 0, tokenize: (s) => (calls++, tokenize(s)) }));
    const b = l.next();
    const rows = b.items.map((it, r) => [it, [...b.tokens.subarray(r * 4, r * 4 + 4)], b.lengths[r]]);
    expect(b.shape).toEqual([3, 4]);
    expect(rows.sort((x, y) => (x[0] as number) - (y[0] as number))).toEqual([[0, [2, 1, 0, 0], 2], [1, [1, 2, 3, 4], 4], [2, [1, 0, 0, 0], 1]]);
    expect([b.truncated, l.truncated]).toEqual([1, 1]);
    const again = take(l, 3); // the caption cache: tokenised once, counted once
    expect([calls, l.truncated, again.map((x) => x.truncated)]).toEqual([3, 1, [1, 1, 1]]);
    const short = new Loader(data.slice(0, 1), opts({ padId: 0 })).next();
    expect([short.shape, [...short.tokens]]).toEqual([[1, 2], [2, 1]]);
  });

  it("rejects bad input with one clear error", () => {
    expect(() => new Loader([{ id: "x", captions: [] }], opts())).toThrow(/at least one caption for item "x" \(index 0\)/);
    expect(() => new Loader([], opts())).toThrow(/empty dataset/);
    expect(() => new Loader(items(3), opts({ batchSize: 0 }))).toThrow(/positive integer for batchSize, got 0/);
    expect(() => new Loader(items(3), opts({ dropLast: true }))).toThrow(/at least batchSize 4 units/);
    expect(() => new Loader([{ id: "x", captions: ["hi"] }], opts({ tokenize: () => [] })).next()).toThrow(/at least one token/);
  });
});
