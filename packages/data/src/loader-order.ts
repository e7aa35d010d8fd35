// The loader's randomness, as pure functions of (seed, epoch[, item]) so that a saved position
// {seed, epoch, index} is enough to continue the exact data order: epoch e's permutation is a
// Fisher–Yates shuffle driven by xoroshiro128+ (pure-rand) whose full 128-bit state is the
// SHA-256 of ("order", seed, e); the caption picked for an item in an epoch comes from a
// generator seeded by ("caption", seed, e, item). Nothing here holds state.
import { createHash } from "node:crypto";
import { uniformInt } from "pure-rand/distribution/uniformInt";
import { xoroshiro128plusFromState } from "pure-rand/generator/xoroshiro128plus";
import type { RandomGenerator } from "pure-rand/types/RandomGenerator";

/** A generator whose whole state is derived from the parts (stable across runs and platforms). */
export function seededRng(...parts: (string | number)[]): RandomGenerator {
  const digest = createHash("sha256").update(JSON.stringify(parts)).digest();
  const words = [0, 4, 8, 12].map((o) => digest.readInt32LE(o));
  if (!words.some((w) => w !== 0)) words[0] = 1; // the all-zero state is a fixed point
  return xoroshiro128plusFromState(words);
}

/** The order of `n` units in epoch `epoch`: a permutation of 0..n-1. */
export function epochPermutation(seed: number, epoch: number, n: number): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const rng = seededRng("order", seed, epoch);
  for (let i = n - 1; i > 0; i--) {
    const j = uniformInt(rng, 0, i);
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

/** Which of an item's `count` captions it shows in epoch `epoch` ("random" caption mode). */
export function captionChoice(seed: number, epoch: number, item: number, count: number): number {
  return count <= 1 ? 0 : uniformInt(seededRng("caption", seed, epoch, item), 0, count - 1);
}
