// Pillow's antialiased resize of 8-bit images (libImaging/Resample.c, Pillow 9.x), ported so
// that `Image.resize(size, BICUBIC)` with the default box and reducing_gap=None is reproduced
// bit for bit. Images are RGB, (H, W, 3) uint8, row-major.
//
// Two separable passes: horizontal (into a uint8 image holding only the rows the vertical pass
// reads), then vertical; a pass is skipped when that axis keeps its size. For output index i
// of an axis (n_in → n_out): scale = n_in / n_out, fs = max(scale, 1), support = filter support
// · fs, center = (i + 0.5) · scale, taps j in [trunc(center − support + 0.5) ∨ 0,
// trunc(center + support + 0.5) ∧ n_in), w_j = filter((j − center + 0.5) / fs) normalised to
// sum 1, then fixed point k_j = trunc(w_j · 2^22 ± 0.5); out = clip8((2^21 + Σ k_j · src_j) >> 22).
// A `window` computes only a rectangle of the resized image (e.g. the centre crop): each output
// pixel depends only on its own taps, so the rectangle equals the same crop of the full resize.
import type { RgbImage } from "./decode.js";

/** PIL.Image.Resampling values that go through ImagingResample (NEAREST = 0 does not). */
export const PIL_FILTERS = { 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming" } as const;
export type ResampleFilter = (typeof PIL_FILTERS)[keyof typeof PIL_FILTERS];

interface Filter {
  support: number;
  f: (x: number) => number;
}

const sinc = (x: number): number => {
  if (x === 0.0) return 1.0;
  x = x * Math.PI;
  return Math.sin(x) / x;
};

/** Pillow's filters, with its expression order (the weights must match to the last bit). */
const FILTERS: Record<ResampleFilter, Filter> = {
  box: { support: 0.5, f: (x) => (x > -0.5 && x <= 0.5 ? 1.0 : 0.0) },
  bilinear: { support: 1.0, f: (x) => ((x = Math.abs(x)) < 1.0 ? 1.0 - x : 0.0) },
  hamming: {
    support: 1.0,
    f: (x) => {
      x = Math.abs(x);
      if (x === 0.0) return 1.0;
      if (x >= 1.0) return 0.0;
      x = x * Math.PI;
      return (Math.sin(x) / x) * (0.54 + 0.46 * Math.cos(x));
    },
  },
  bicubic: {
    support: 2.0,
    f: (x) => {
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
      if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
      return 0.0;
    },
  },
  lanczos: { support: 3.0, f: (x) => (-3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0) },
};

const PRECISION_BITS = 32 - 8 - 2;
const HALF = 1 << (PRECISION_BITS - 1);
const ONE = 1 << PRECISION_BITS;
const MAX = 255 << PRECISION_BITS; // (1 << PRECISION_BITS << 8) - ONE: anything ≥ 256·ONE clips

/** Per-output taps of one axis: output i reads `count[i]` inputs from `first[i]` with weights `k[i·ksize …]`. */
export interface AxisCoeffs {
  ksize: number;
  first: Int32Array;
  count: Int32Array;
  /** Normalised float64 weights (Pillow's `prekk`). */
  w: Float64Array;
  /** The same in fixed point, PRECISION_BITS fractional bits (Pillow's `kk` of normalize_coeffs_8bpc). */
  k: Int32Array;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for outputs [from, from + n) of an n_in → n_out axis. */
export function axisCoeffs(inSize: number, outSize: number, filter: ResampleFilter, from = 0, n = outSize - from): AxisCoeffs {
  const { support: base, f } = FILTERS[filter];
  const scale = inSize / outSize;
  const fs = scale < 1.0 ? 1.0 : scale;
  const support = base * fs;
  const ksize = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(n);
  const count = new Int32Array(n);
  const w = new Float64Array(n * ksize);
  const k = new Int32Array(n * ksize);
  const ss = 1.0 / fs;
  for (let o = 0; o < n; o++) {
    const center = (from + o + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0.0;
    for (let x = 0; x < xmax; x++) {
      const v = f((x + xmin - center + 0.5) * ss);
      w[o * ksize + x] = v;
      ww += v;
    }
    for (let x = 0; x < xmax; x++) {
      const i = o * ksize + x;
      if (ww !== 0.0) w[i] = w[i]! / ww;
      k[i] = w[i]! < 0 ? Math.trunc(-0.5 + w[i]! * ONE) : Math.trunc(0.5 + w[i]! * ONE);
    }
    first[o] = xmin;
    count[o] = Math.max(xmax, 0);
  }
  return { ksize, first, count, w, k };
}

const clip8 = (v: number): number => (v >= MAX + ONE ? 255 : v <= 0 ? 0 : v >> PRECISION_BITS);

/** A rectangle of the resized image: columns [left, left + width), rows [top, top + height). */
export interface Window {
  left: number;
  top: number;
  width: number;
  height: number;
}

export class ResampleError extends Error {
  override name = "ResampleError";
}

/**
 * `src` resized to outWidth x outHeight as Pillow's Image.resize((outWidth, outHeight), filter)
 * does for an RGB image; with `win`, only that rectangle of the result (same pixels).
 */
export function resize(src: RgbImage, outWidth: number, outHeight: number, filter: ResampleFilter = "bicubic", win?: Window): RgbImage {
  const { width: W, height: H } = src;
  for (const [name, v] of [["width", outWidth], ["height", outHeight]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new ResampleError(`resize: expected a positive integer for the output ${name}, got ${v}`);
  }
  if (src.data.length !== W * H * 3) throw new ResampleError(`resize: expected ${W}x${H}x3 = ${W * H * 3} bytes of RGB, got ${src.data.length}`);
  const r = win ?? { left: 0, top: 0, width: outWidth, height: outHeight };
  const inside = [r.left, r.top, r.width, r.height].every(Number.isInteger) && r.left >= 0 && r.top >= 0 && r.width >= 1 && r.height >= 1;
  if (!inside || r.left + r.width > outWidth || r.top + r.height > outHeight) {
    throw new ResampleError(`resize: expected a window inside the ${outWidth}x${outHeight} output, got ${JSON.stringify(r)}`);
  }
  // Rows of the source the vertical pass reads (all of the window's rows when it is skipped).
  const vert = outHeight !== H ? axisCoeffs(H, outHeight, filter, r.top, r.height) : undefined;
  const y0 = vert ? vert.first[0]! : r.top;
  const y1 = vert ? vert.first[r.height - 1]! + vert.count[r.height - 1]! : r.top + r.height;
  let rows: RgbImage; // (y1 - y0, r.width, 3)
  if (outWidth !== W) rows = horizontal(src, y0, y1, axisCoeffs(W, outWidth, filter, r.left, r.width));
  else rows = cropRows(src, y0, y1, r.left, r.width);
  if (!vert) return rows;
  vert.first.forEach((v, i) => (vert.first[i] = v - y0));
  return vertical(rows, vert);
}

function cropRows(src: RgbImage, y0: number, y1: number, left: number, width: number): RgbImage {
  if (left === 0 && width === src.width) return { width, height: y1 - y0, data: src.data.slice(y0 * width * 3, y1 * width * 3) };
  const data = new Uint8Array((y1 - y0) * width * 3);
  for (let y = y0; y < y1; y++) data.set(src.data.subarray((y * src.width + left) * 3, (y * src.width + left + width) * 3), (y - y0) * width * 3);
  return { width, height: y1 - y0, data };
}

/** ImagingResampleHorizontal_8bpc over source rows [y0, y1). */
function horizontal(src: RgbImage, y0: number, y1: number, c: AxisCoeffs): RgbImage {
  const n = c.first.length;
  const { ksize, first, count, k } = c;
  const s = src.data;
  const out = new Uint8Array((y1 - y0) * n * 3);
  let o = 0;
  for (let y = y0; y < y1; y++) {
    const row = y * src.width * 3;
    for (let x = 0; x < n; x++) {
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      const kb = x * ksize;
      const m = count[x]!;
      let p = row + first[x]! * 3;
      for (let j = 0; j < m; j++, p += 3) {
        const kj = k[kb + j]!;
        s0 += s[p]! * kj;
        s1 += s[p + 1]! * kj;
        s2 += s[p + 2]! * kj;
      }
      out[o++] = clip8(s0);
      out[o++] = clip8(s1);
      out[o++] = clip8(s2);
    }
  }
  return { width: n, height: y1 - y0, data: out };
}

/**
 * ImagingResampleVertical_8bpc: output row y reads rows [first[y], first[y] + count[y]) of `src`.
 * Sums run over a whole output row, four taps at a time (exact: integers far below 2^53).
 */
function vertical(src: RgbImage, c: AxisCoeffs): RgbImage {
  const n = c.first.length;
  const { ksize, first, count, k } = c;
  const s = src.data;
  const stride = src.width * 3;
  const out = new Uint8Array(n * stride);
  const acc = new Float64Array(stride);
  for (let y = 0; y < n; y++) {
    acc.fill(HALF);
    const kb = y * ksize;
    const m = count[y]!;
    let j = 0;
    for (; j + 4 <= m; j += 4) {
      const k0 = k[kb + j]!, k1 = k[kb + j + 1]!, k2 = k[kb + j + 2]!, k3 = k[kb + j + 3]!;
      const r0 = (first[y]! + j) * stride, r1 = r0 + stride, r2 = r1 + stride, r3 = r2 + stride;
      for (let x = 0; x < stride; x++) acc[x]! += s[r0 + x]! * k0 + s[r1 + x]! * k1 + s[r2 + x]! * k2 + s[r3 + x]! * k3;
    }
    for (; j < m; j++) {
      const kj = k[kb + j]!;
      const r = (first[y]! + j) * stride;
      for (let x = 0; x < stride; x++) acc[x]! += s[r + x]! * kj;
    }
    const ob = y * stride;
    for (let x = 0; x < stride; x++) out[ob + x] = clip8(acc[x]!);
  }
  return { width: src.width, height: n, data: out };
}
