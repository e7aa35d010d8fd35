// Scorer rules beyond the fixture (closest-length ties, verbatim BLEU, ROUGE's separate maxima,
// numpy's pairwise mean), input validation with one clear error each, and retrieval Recall@K
// against a brute-force float64 ranking (ties count as misses).
import fc from "fast-check";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bleu, bleuStats } from "../src/metrics/bleu.js";
import { evaluateCaptions } from "../src/metrics/coco-eval.js";
import { MetricsError, parseCocoCaptions, parseCocoResults, readReferences } from "../src/metrics/coco-format.js";
import { npMean } from "../src/metrics/np-sum.js";
import { retrievalRecall } from "../src/metrics/retrieval.js";
import { rougeL } from "../src/metrics/rouge.js";

describe("BLEU / ROUGE-L / mean", () => {
  it("takes the shorter reference on a closest-length tie, and a verbatim candidate scores 1 - O(1e-9)", () => {
    expect(bleuStats("a b c d", ["a b c", "a b c d e"]).reflen).toBe(3);
    const b = bleu(["a man on a horse"], [["a man on a horse"]]);
    expect(b.perImage[0]![3]).toBeLessThan(1);
    expect(b.perImage[0]![3]).toBeGreaterThan(1 - 1e-8);
  });
  it("ROUGE-L takes max precision and max recall separately", () => {
    // P from ref 1 (lcs 2 / 2), R from ref 2 (lcs 1 / 1)
    const b2 = 1.2 ** 2;
    expect(rougeL("a b", ["a b c d", "a"])).toBeCloseTo(((1 + b2) * 1 * 1) / (1 + b2 * 1), 15);
  });
  it("npMean equals the exact mean up to rounding, for any length", () => {
    fc.assert(fc.property(fc.array(fc.double({ min: 0, max: 10, noNaN: true }), { minLength: 1, maxLength: 600 }), (a) => {
      const exact = a.reduce((s, x) => s + x, 0) / a.length;
      expect(Math.abs(npMean(a) - exact)).toBeLessThanOrEqual(1e-12);
    }));
  });
});

describe("COCO formats", () => {
  const refs = parseCocoCaptions({ images: [{ id: 1 }, { id: 2 }], annotations: [{ image_id: 1, id: 9, caption: "a dog" }, { image_id: 2, id: 8, caption: "a cat" }] }, "refs.json");
  const err = (f: () => unknown, re: RegExp): void => {
    expect(f).toThrow(MetricsError);
    expect(f).toThrow(re);
  };
  it("names each kind of bad input", () => {
    err(() => parseCocoCaptions([{ image_id: 1, caption: "x" }], "r.json"), /expected a COCO captions object \{images, annotations\} in r\.json, got a JSON list/);
    err(() => parseCocoResults({ images: [] }, "p.json"), /expected a COCO results list .* in p\.json, got an object/);
    err(() => parseCocoResults([{ image_id: 1, caption: "a" }, { image_id: 1, caption: "b" }], "p.json"), /more than one prediction for images 1/);
    err(() => parseCocoResults([{ image_id: 1, caption: "  " }], "p.json"), /empty predicted captions for images 1/);
    err(() => parseCocoCaptions({ images: [{ id: 1 }], annotations: [] }, "r.json"), /images without any reference caption .*: 1/);
    err(() => evaluateCaptions(refs, new Map([["1", "a dog"], ["2", "x"], ["3", "y"]])), /predictions for images not in the references: 3/);
    err(() => evaluateCaptions(refs, new Map([["1", "a dog"]])), /1 of 2 reference images have no prediction: 2/);
  });
  it("reads a dataset JSONL as references, optionally one split", async () => {
    const dir = mkdtempSync(join(tmpdir(), "eye-metrics-"));
    const file = join(dir, "data.jsonl");
    writeFileSync(file, ['{"id":"a","captions":["x y"],"split":"test"}', '{"id":"b","captions":["z"],"split":"train"}'].join("\n"));
    expect((await readReferences(file)).imageIds).toEqual(["a", "b"]);
    expect((await readReferences(file, { split: "test" })).imageIds).toEqual(["a"]);
    await expect(readReferences(file, { split: "val" })).rejects.toThrow(/no records of split "val"/);
  });
});

/** Brute force (float64, same summation for equal inputs): rank = other candidates scoring >= the target (ties are misses). */
function bruteRecall(img: number[][], txt: number[][], t2i: number[], k: number): { i2t: number; t2i: number } {
  const norm = (v: number[]): number[] => { const n = Math.hypot(...v); return v.map((x) => (n > 0 ? x / n : 0)); };
  const I = img.map(norm), T = txt.map(norm);
  const sim = (i: number, t: number): number => I[i]!.reduce((s, x, e) => s + x * T[t]![e]!, 0);
  let hitI = 0, hitT = 0;
  I.forEach((_, i) => {
    const best = Math.max(...T.map((_, t) => (t2i[t] === i ? sim(i, t) : -Infinity)));
    if (T.filter((_, t) => t2i[t] !== i && sim(i, t) >= best).length < k) hitI++;
  });
  T.forEach((_, t) => { if (I.filter((_, i) => i !== t2i[t] && sim(i, t) >= sim(t2i[t]!, t)).length < k) hitT++; });
  return { i2t: hitI / I.length, t2i: hitT / T.length };
}

describe("retrievalRecall", () => {
  it("matches a brute-force ranking (±1 entries, E a power of 4: exact arithmetic, many ties)", () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 40 }), fc.constantFrom(1, 4, 16), fc.integer({ min: 1, max: 3 }), fc.integer(), (nI, E, per, seed) => {
      let s = seed >>> 0;
      const r = (): number => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return (s >>> 16) % 2 === 0 ? -1 : 1; };
      const img = Array.from({ length: nI }, () => Array.from({ length: E }, r));
      const t2i = Array.from({ length: nI * per }, (_, t) => t % nI);
      const txt = t2i.map(() => Array.from({ length: E }, r));
      const got = retrievalRecall(Float32Array.from(img.flat()), Float32Array.from(txt.flat()), Int32Array.from(t2i), [1, 5]);
      for (const k of [1, 5]) {
        const want = bruteRecall(img, txt, t2i, k);
        expect(got.i2t[k]).toBeCloseTo(want.i2t, 12);
        expect(got.t2i[k]).toBeCloseTo(want.t2i, 12);
      }
    }), { numRuns: 40 });
  });
  it("rejects mismatched sizes", () => {
    expect(() => retrievalRecall(new Float32Array(6), new Float32Array(5), Int32Array.from([0, 1]))).toThrow(/expected textEmb of nT × E floats/);
  });
});
