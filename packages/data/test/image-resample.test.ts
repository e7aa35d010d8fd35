// resample.ts against two references on random small images (fast-check): a literal, unoptimised
// port of Pillow's algorithm as the hf-parity README states it (full image, no windows, plain
// loops) must agree bit for bit, windows included; the same filter in float64 without fixed
// point or rounding between the passes must agree within the rounding it skips (1.15 levels).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { RgbImage } from "../src/image/decode.js";
import { type ResampleFilter, ResampleError, axisCoeffs, resize } from "../src/image/resample.js";

const cubic = (x: number): number => {
  x = Math.abs(x);
  return x < 1 ? 1.5 * x ** 3 - 2.5 * x ** 2 + 1 : x < 2 ? -0.5 * x ** 3 + 2.5 * x ** 2 - 4 * x + 2 : 0;
};
const linear = (x: number): number => Math.max(0, 1 - Math.abs(x));
const KERNELS = { bicubic: [cubic, 2], bilinear: [linear, 1] } as const;

/** Taps of output i (README): [first, weights normalised to sum 1]. */
function taps(nIn: number, nOut: number, i: number, filter: "bicubic" | "bilinear"): [number, number[]] {
  const [f, base] = KERNELS[filter];
  const scale = nIn / nOut;
  const fs = Math.max(scale, 1);
  const support = base * fs;
  const center = (i + 0.5) * scale;
  const lo = Math.max(Math.trunc(center - support + 0.5), 0);
  const hi = Math.min(Math.trunc(center + support + 0.5), nIn);
  const w: number[] = [];
  for (let j = lo; j < hi; j++) w.push(f((j - center + 0.5) / fs));
  const sum = w.reduce((a, b) => a + b, 0);
  return [lo, w.map((v) => v / sum)];
}

/** One pass along an axis; `quant`: Pillow's fixed point and clip8, else float64 rounded at the end only when `round`. */
function pass(img: Float64Array, w: number, h: number, nOut: number, axis: "x" | "y", filter: "bicubic" | "bilinear", quant: boolean): Float64Array {
  const [ow, oh] = axis === "x" ? [nOut, h] : [w, nOut];
  const out = new Float64Array(ow * oh * 3);
  for (let y = 0; y < oh; y++)
    for (let x = 0; x < ow; x++) {
      const [lo, ws] = taps(axis === "x" ? w : h, nOut, axis === "x" ? x : y, filter);
      for (let c = 0; c < 3; c++) {
        let acc = quant ? 2 ** 21 : 0;
        ws.forEach((wt, t) => {
          const v = axis === "x" ? img[(y * w + lo + t) * 3 + c]! : img[((lo + t) * w + x) * 3 + c]!;
          acc += v * (quant ? Math.trunc(wt * 2 ** 22 + (wt < 0 ? -0.5 : 0.5)) : wt);
        });
        out[(y * ow + x) * 3 + c] = quant ? Math.min(255, Math.max(0, Math.floor(acc / 2 ** 22))) : acc;
      }
    }
  return out;
}

function reference(src: RgbImage, ow: number, oh: number, filter: "bicubic" | "bilinear", quant: boolean): Float64Array {
  let img: Float64Array = Float64Array.from(src.data);
  if (ow !== src.width) img = pass(img, src.width, src.height, ow, "x", filter, quant).map((v) => Math.min(255, Math.max(0, v)));
  if (oh !== src.height) img = pass(img, ow, src.height, oh, "y", filter, quant);
  return img;
}

const image = fc
  .record({ width: fc.integer({ min: 1, max: 24 }), height: fc.integer({ min: 1, max: 24 }), seed: fc.integer() })
  .chain(({ width, height }) => fc.uint8Array({ minLength: width * height * 3, maxLength: width * height * 3 }).map((data) => ({ width, height, data })));
const filters = fc.constantFrom<"bicubic" | "bilinear">("bicubic", "bilinear");

describe("resize", () => {
  it("equals a literal port of Pillow's 8-bit resample bit for bit, windows included", () => {
    fc.assert(
      fc.property(image, fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), filters, fc.nat(), fc.nat(), (src, ow, oh, filter, a, b) => {
        const want = reference(src, ow, oh, filter, true);
        expect(Array.from(resize(src, ow, oh, filter).data)).toEqual(Array.from(want));
        const win = { left: a % ow, top: b % oh, width: 1 + ((a >> 3) % (ow - (a % ow))), height: 1 + ((b >> 3) % (oh - (b % oh))) };
        const part = resize(src, ow, oh, filter, win);
        expect([part.width, part.height]).toEqual([win.width, win.height]);
        for (let y = 0; y < win.height; y++)
          for (let x = 0; x < win.width * 3; x++) expect(part.data[y * win.width * 3 + x]).toBe(want[((win.top + y) * ow + win.left) * 3 + x]);
      }),
      { numRuns: 150 },
    );
  });

  it("is within 1.15 uint8 levels of the same filter in float64 (no fixed point; clamped, not rounded, between passes)", () => {
    fc.assert(
      fc.property(image, fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), filters, (src, ow, oh, filter) => {
        // Rounding the horizontal pass to uint8 moves a value by ≤ 0.5, which the vertical taps
        // (|weights| summing to ≤ 1.25 for bicubic) carry on, then the final rounding (0.5): ≤ 1.125.
        const exact = reference(src, ow, oh, filter, false).map((v) => Math.min(255, Math.max(0, v)));
        const got = resize(src, ow, oh, filter).data;
        let worst = 0;
        for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - exact[i]!));
        expect(worst).toBeLessThanOrEqual(1.15);
      }),
      { numRuns: 300 },
    );
  });

  it("keeps the image when the size does not change, and resizes 1-pixel images", () => {
    const src = { width: 3, height: 2, data: Uint8Array.from({ length: 18 }, (_, i) => i * 13) };
    expect(resize(src, 3, 2).data).toEqual(src.data);
    const dot = resize({ width: 1, height: 1, data: Uint8Array.of(10, 200, 255) }, 5, 4);
    expect(Array.from(dot.data)).toEqual(Array.from({ length: 20 }, () => [10, 200, 255]).flat());
  });

  it("weights of each output sum to one, in fixed point within rounding", () => {
    for (const [nIn, nOut, f] of [[375, 224, "bicubic"], [20, 224, "bicubic"], [7, 3, "lanczos"], [9, 4, "box"], [9, 13, "hamming"]] as [number, number, ResampleFilter][]) {
      const c = axisCoeffs(nIn, nOut, f);
      for (let i = 0; i < nOut; i++) {
        const k = Array.from(c.k.subarray(i * c.ksize, i * c.ksize + c.count[i]!));
        expect(Math.abs(k.reduce((a, b) => a + b, 0) - 2 ** 22)).toBeLessThanOrEqual(c.count[i]!);
      }
    }
  });

  it("names bad sizes and windows", () => {
    const src = { width: 2, height: 2, data: new Uint8Array(12) };
    expect(() => resize(src, 0, 3)).toThrow(new ResampleError("resize: expected a positive integer for the output width, got 0"));
    expect(() => resize(src, 4, 4, "bicubic", { left: 2, top: 0, width: 3, height: 1 })).toThrow(
      'resize: expected a window inside the 4x4 output, got {"left":2,"top":0,"width":3,"height":1}',
    );
    expect(() => resize({ width: 2, height: 2, data: new Uint8Array(5) }, 1, 1)).toThrow("resize: expected 2x2x3 = 12 bytes of RGB, got 5");
  });
});
