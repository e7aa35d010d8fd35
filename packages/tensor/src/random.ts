// Seeded host-side random numbers for initialisation and tests (mulberry32 + Box-Muller).
import type { Shape } from "./shape.js";
import { sizeOf } from "./shape.js";
import { type Tensor, tensor } from "./tensor.js";

export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` normal samples with mean 0 and standard deviation `std`. */
export function randnArray(n: number, seed = 0, std = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(r(), 1e-12);
    const v = r();
    const m = std * Math.sqrt(-2 * Math.log(u));
    out[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return out;
}

/** `n` uniform samples in [low, high). */
export function randArray(n: number, seed = 0, low = 0, high = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = low + (high - low) * r();
  return out;
}

export const randn = (shape: Shape, seed = 0, std = 1): Tensor => tensor(randnArray(sizeOf(shape), seed, std), shape);
export const rand = (shape: Shape, seed = 0, low = 0, high = 1): Tensor => tensor(randArray(sizeOf(shape), seed, low, high), shape);
