// preprocess: CLIP image preprocessing throughput (decode JPEG → Pillow-exact bicubic resize of
// the short side to 224 → centre crop → normalise, @llms-eye/data) — op `clip_preprocess`, shapes
// jpeg-500x375-224-main (one image after another on the main thread; sharp decodes off the
// event loop) and jpeg-500x375-224-pool (preprocessMany on a worker pool, one thread per core,
// started in setup so thread start-up is not timed). Inputs: 64 JPEGs (--quick 16, tiny 4) of
// COCO's typical 500x375, quality 90, noise over gradients, written once into
// <tmpdir>/llms-eye-bench-preprocess/ and reused. One run = every image through the pipeline;
// items = images, so the row reads images/s. Validation: the pool's pixel values equal the
// main thread's for every image, shape [3, 224, 224], finite.
import { existsSync, mkdirSync, realpathSync, renameSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CLIPImageProcessor, PreprocessPool, preprocessMany } from "@llms-eye/data";
import type { Family, OurCase, Preset } from "./bench.js";
import { ValidationError } from "./harness.js";

// sharp (to write the test JPEGs) through @llms-eye/data's own dependency: apps/bench does not
// list sharp. Once it does, this becomes `import sharp from "sharp"`.
type JpegWriter = (input: Uint8Array, o: { raw: { width: number; height: number; channels: 3 } }) => { jpeg(o: { quality: number }): { toFile(f: string): Promise<unknown> } };
const dataPackage = realpathSync(fileURLToPath(new URL("../node_modules/@llms-eye/data/package.json", import.meta.url)));
const sharp = createRequire(join(dirname(dataPackage), "package.json"))("sharp") as JpegWriter;

const CACHE = join(tmpdir(), "llms-eye-bench-preprocess");
const COUNT: Record<Preset, number> = { full: 64, quick: 16, tiny: 4 };
const [W, H] = [500, 375];

/** A photo-like test image: smooth colour gradients and a few blobs, plus noise (xorshift, seeded). */
function pixels(seed: number): Uint8Array {
  const out = new Uint8Array(W * H * 3);
  let s = (seed * 2654435761) >>> 0 || 1;
  const rnd = (): number => ((s ^= s << 13), (s ^= s >>> 17), (s ^= s << 5), (s >>> 0) / 2 ** 32);
  const blobs = Array.from({ length: 4 }, () => [rnd() * W, rnd() * H, 30 + rnd() * 90, rnd() * 255] as const);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      let v = 0;
      for (const [bx, by, r, c] of blobs) if ((x - bx) ** 2 + (y - by) ** 2 < r * r) v = c;
      const i = (y * W + x) * 3;
      out[i] = Math.min(255, (x / W) * 200 + v * 0.3 + rnd() * 40);
      out[i + 1] = Math.min(255, (y / H) * 200 + rnd() * 40);
      out[i + 2] = Math.min(255, ((x + y) / (W + H)) * 150 + v * 0.4 + rnd() * 40);
    }
  return out;
}

/** The first n images, written once (into a temporary folder renamed into place: a folder there is complete). */
async function images(n: number): Promise<string[]> {
  const dir = join(CACHE, `n${n}`);
  if (!existsSync(dir)) {
    const tmp = `${dir}.tmp-${process.pid}`;
    mkdirSync(tmp, { recursive: true });
    for (let i = 0; i < n; i++) await sharp(pixels(i), { raw: { width: W, height: H, channels: 3 } }).jpeg({ quality: 90 }).toFile(join(tmp, `${i}.jpg`));
    renameSync(tmp, dir);
  }
  return Array.from({ length: n }, (_, i) => join(dir, `${i}.jpg`));
}

function preprocessCase(preset: Preset, where: "main" | "pool"): OurCase {
  const n = COUNT[preset];
  const threads = where === "main" ? 0 : Math.max(1, Math.min(availableParallelism(), 8));
  return {
    op: "clip_preprocess",
    shape: `jpeg-${W}x${H}-224-${where}`,
    work: { items: n },
    note: where === "main" ? "main thread, sharp decode async" : `${threads} worker threads, prefetch ${4 * threads}`,
    async setup() {
      const files = await images(n);
      const pool = new PreprocessPool(undefined, { threads });
      const all = async (): Promise<Float32Array[]> => {
        const out: Float32Array[] = [];
        for await (const x of preprocessMany(files, undefined, { pool })) out.push(x);
        return out;
      };
      return {
        async validate() {
          const got = await all();
          const single = new CLIPImageProcessor();
          for (const [i, f] of files.entries()) {
            const want = await single.preprocess(f);
            const g = got[i];
            if (!g || g.length !== 3 * 224 * 224) throw new ValidationError(`clip_preprocess: expected [3, 224, 224] for ${f}, got ${g?.length ?? "nothing"} values`);
            const bad = g.findIndex((v, j) => v !== want[j] || !Number.isFinite(v));
            if (bad >= 0) throw new ValidationError(`clip_preprocess: ${f} value ${bad} is ${g[bad]}, the main thread's is ${want[bad]}`);
          }
        },
        async step() {
          await all();
        },
        dispose() {
          void pool.close();
        },
      };
    },
  };
}

export const family: Family = {
  name: "preprocess",
  cases: (preset) => [preprocessCase(preset, "main"), preprocessCase(preset, "pool")],
};
