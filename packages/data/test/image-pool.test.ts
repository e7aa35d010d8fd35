// pool.ts: the worker pool (from these TypeScript sources, under tsx) yields pixel values in
// input order, identical to the single-threaded path, with prefetch smaller and larger than the
// input; the first bad file ends the stream with an error naming it; stopping early is clean.
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { HF_PARITY } from "../../models/test/fixtures.js";
import { CLIPImageProcessor } from "../src/image/clip-processor.js";
import { ImageError } from "../src/image/decode.js";
import { PreprocessPool, preprocessMany } from "../src/image/pool.js";

const PRE = join(HF_PARITY, "preprocess");
const FILES = ["landscape_gradient.jpg", "portrait_shapes.png", "tiny_20x30.png", "square_noise.jpg"].map((f) => join(PRE, f));
// Eight inputs, in a shuffled order with repeats, so order mistakes show.
const INPUTS = [3, 0, 2, 2, 1, 3, 0, 1].map((i) => FILES[i]!);
const single = new CLIPImageProcessor();
const pool = new PreprocessPool(undefined, { threads: 2 });
afterAll(() => pool.close());

async function collect(it: AsyncIterable<Float32Array>): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe("preprocessMany", () => {
  it("yields in input order, equal to the single-threaded path, for any prefetch", async () => {
    const want = await Promise.all(INPUTS.map((f) => single.preprocess(f)));
    for (const prefetch of [1, 3, 16]) {
      const got = await collect(preprocessMany(INPUTS, undefined, { pool, prefetch }));
      expect(got.length).toBe(INPUTS.length);
      got.forEach((g, i) => expect(g.every((v, j) => v === want[i]![j]), `image ${i}, prefetch ${prefetch}`).toBe(true));
    }
    const local = await collect(preprocessMany(INPUTS.slice(0, 3), undefined, { threads: 0 }));
    local.forEach((g, i) => expect(Array.from(g)).toEqual(Array.from(want[i]!)));
  });

  it("takes an async iterable of paths and bytes", async () => {
    const { readFile } = await import("node:fs/promises");
    async function* inputs() {
      yield FILES[0]!;
      yield await readFile(FILES[1]!);
    }
    const got = await collect(preprocessMany(inputs(), undefined, { pool }));
    expect(Array.from(got[1]!)).toEqual(Array.from(await single.preprocess(FILES[1]!)));
  });

  it("ends at the first bad file with an ImageError naming it, after the images before it", async () => {
    const missing = join(PRE, "missing.jpg");
    const seen: number[] = [];
    const run = async () => {
      for await (const x of preprocessMany([FILES[0]!, FILES[1]!, missing, FILES[2]!], undefined, { pool, prefetch: 4 })) seen.push(x.length);
    };
    await expect(run()).rejects.toThrow(new ImageError(`preprocess: expected an image file at ${missing}, got no such file`));
    expect(seen).toEqual([150528, 150528]);
  });

  it("stops cleanly when the consumer breaks early, and its own pool closes", async () => {
    let n = 0;
    for await (const x of preprocessMany(INPUTS, undefined, { threads: 1, prefetch: 2 })) {
      expect(x.length).toBe(150528);
      if (++n === 2) break;
    }
    expect(n).toBe(2);
    expect(() => new PreprocessPool(undefined, { threads: -1 })).toThrow("preprocess: expected an integer ≥ 0 for threads, got -1");
  });
});
