// Shapes dataset, writer: `generateShapes` renders n captioned scenes into <out>/images/<id>.png
// and lists them in <out>/shapes.jsonl (unified record format, with the ground truth in `meta`),
// next to <out>/shapes.json (the options). Order of writes: shapes.json, images, then the JSONL
// via a temporary file and a rename, so an interrupted run never leaves a JSONL pointing at
// missing or stale images. Output is byte-for-byte the same for the same options.
import { existsSync, statSync } from "node:fs";
import { mkdir, readdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { captionScene } from "./captions.js";
import { describeSpec, readShapesSpec, resolveSpec, sameSpec, ShapesError, SHAPES_JSON, SHAPES_JSONL, SHAPES_VERSION, specRecord, type ShapesOptions, type ShapesSpec } from "./options.js";
import { renderScene } from "./render.js";
import { backgroundName, hash32, rngFor, sampleScene, type BackgroundName, type Color, type Scene, type Shape, type Size } from "./scene.js";

export type Split = "train" | "val" | "test";

/** One line of shapes.jsonl. `x`, `y`: the object's box centre as a fraction of the image side (y down). */
export interface ShapesLine {
  id: string;
  image: string;
  captions: string[];
  split: Split;
  source: "shapes";
  meta: { objects: { shape: Shape; color: Color; size: Size; x: number; y: number }[]; background: BackgroundName };
}

export interface ShapesSummary {
  out: string;
  jsonl: string;
  spec: ShapesSpec;
  splits: Record<Split, number>;
  /** images per object count, per split */
  objects: Record<Split, Record<1 | 2 | 3, number>>;
  seconds: number;
  imagesPerSecond: number;
}

/** Object count of image i: 1, 2, 3 in turn, so a third of the images show a single object. */
export const objectCount = (i: number): 1 | 2 | 3 => ((i % 3) + 1) as 1 | 2 | 3;

/**
 * The split of every image. Within each object count, images are ordered by a seeded hash and the
 * first round(len*test) go to test, the next round(len*val) to val, so every split has the same
 * mix of 1-, 2- and 3-object images.
 */
export function assignSplits(spec: ShapesSpec): Split[] {
  const splits: Split[] = new Array<Split>(spec.n).fill("train");
  for (const k of [1, 2, 3]) {
    const stratum: { i: number; h: number }[] = [];
    for (let i = k - 1; i < spec.n; i += 3) stratum.push({ i, h: hash32(spec.seed, Math.floor(spec.seed / 2 ** 32), i, 3) >>> 0 });
    stratum.sort((a, b) => a.h - b.h || a.i - b.i);
    const nTest = Math.round(stratum.length * spec.splits.test);
    const nVal = Math.round(stratum.length * spec.splits.val);
    stratum.forEach(({ i }, rank) => {
      if (rank < nTest) splits[i] = "test";
      else if (rank < nTest + nVal) splits[i] = "val";
    });
  }
  return splits;
}

export const imageId = (i: number, n: number): string => `shapes-${String(i).padStart(Math.max(5, String(n - 1).length), "0")}`;

export function shapesLine(scene: Scene, id: string, split: Split, captions: string[]): ShapesLine {
  const objects = scene.objects.map((o) => ({ shape: o.shape, color: o.color, size: o.size, x: o.cx / scene.side, y: o.cy / scene.side }));
  return { id, image: `images/${id}.png`, captions, split, source: "shapes", meta: { objects, background: backgroundName(scene.background) } };
}

/**
 * Refuses a non-empty `out` that is not a shapes dataset of the same options, unless forced.
 * Returns true when `out` holds a shapes dataset of other options (its images are to be cleared).
 */
async function checkOut(out: string, spec: ShapesSpec, force: boolean): Promise<boolean> {
  if (!existsSync(out)) return false;
  if (!statSync(out).isDirectory()) throw new ShapesError(`shapes: expected a folder for out, got a file: ${out}; choose another --out`);
  if ((await readdir(out)).length === 0) return false;
  const found = await readShapesSpec(out);
  if (found && sameSpec(found, spec)) return false;
  if (force || (found && found.version < SHAPES_VERSION)) return !!found; // an older rendering of ours is simply replaced
  const what = found ? `a shapes dataset with other options (${describeSpec(found)})` : "files that are not a shapes dataset";
  throw new ShapesError(`shapes: ${out} already holds ${what}; asked for ${describeSpec(spec)}. Choose another --out or pass --force (force: true) to write into it`);
}

async function writeAtomically(path: string, data: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, data, "utf8");
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Renders the shapes dataset into `options.out`; see ShapesOptions for the defaults. */
export async function generateShapes(options: ShapesOptions): Promise<ShapesSummary> {
  const started = performance.now();
  const spec = resolveSpec(options);
  const concurrency = options.concurrency ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new ShapesError(`shapes: expected a positive integer for concurrency, got ${concurrency}`);
  const { out } = options;
  const stale = await checkOut(out, spec, options.force ?? false);

  await rm(join(out, SHAPES_JSONL), { force: true }); // its images are about to be replaced
  if (stale) await rm(join(out, "images"), { recursive: true, force: true }); // another dataset's images
  await mkdir(join(out, "images"), { recursive: true });
  await writeAtomically(join(out, SHAPES_JSON), `${JSON.stringify(specRecord(spec), null, 2)}\n`);

  const splits = assignSplits(spec);
  const lines: string[] = new Array<string>(spec.n);
  let next = 0;
  let done = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < spec.n && !failed) {
      const i = next++;
      const id = imageId(i, spec.n);
      const scene = sampleScene(spec.seed, i, spec.size, objectCount(i));
      const captions = captionScene(scene, rngFor(spec.seed, i, 1));
      try {
        await writeFile(join(out, "images", `${id}.png`), await renderScene(scene));
      } catch (e) {
        failed = true;
        throw new ShapesError(`shapes: could not write image ${id} into ${join(out, "images")}: ${(e as Error).message}`);
      }
      lines[i] = JSON.stringify(shapesLine(scene, id, splits[i]!, captions));
      options.onProgress?.(++done, spec.n);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, spec.n) }, worker));

  const jsonl = join(out, SHAPES_JSONL);
  await writeAtomically(jsonl, `${lines.join("\n")}\n`);

  const summary: ShapesSummary = {
    out,
    jsonl,
    spec,
    splits: { train: 0, val: 0, test: 0 },
    objects: { train: { 1: 0, 2: 0, 3: 0 }, val: { 1: 0, 2: 0, 3: 0 }, test: { 1: 0, 2: 0, 3: 0 } },
    seconds: 0,
    imagesPerSecond: 0,
  };
  splits.forEach((s, i) => {
    summary.splits[s]++;
    summary.objects[s][objectCount(i)]++;
  });
  summary.seconds = (performance.now() - started) / 1000;
  summary.imagesPerSecond = spec.n / summary.seconds;
  return summary;
}
