// Which dataset a run reads: `--data` as a unified JSONL file or a directory holding one; for
// the tiny size with no --data, the built-in shapes dataset, generated on first use.
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { type DatasetRecord, SHAPES_JSONL, generateShapes, isShapesDir, readDataset, resolveImage } from "@llms-eye/data";

export class DataError extends Error {
  override name = "DataError";
}

export interface Dataset {
  file: string;
  records: DatasetRecord[];
  /** Absolute image path of record i. */
  image(i: number): string;
  /** Indices of the records of a split. */
  split(name: "train" | "val" | "test"): number[];
}

const isFile = (p: string) => stat(p).then((s) => s.isFile(), () => false);
const isDir = (p: string) => stat(p).then((s) => s.isDirectory(), () => false);

/** The JSONL file `data` names: itself, or the one .jsonl inside a directory. */
export async function datasetFile(data: string): Promise<string> {
  if (await isFile(data)) return data;
  if (!(await isDir(data))) {
    throw new DataError(`data: expected a dataset (.jsonl file or directory) at ${data}, got no such path; make one with \`pnpm eye prepare …\` or \`pnpm eye shapes --out ${data}\``);
  }
  if (await isFile(join(data, SHAPES_JSONL))) return join(data, SHAPES_JSONL);
  const jsonl = (await readdir(data)).filter((n) => n.endsWith(".jsonl"));
  if (jsonl.length !== 1) {
    throw new DataError(`data: expected exactly one .jsonl dataset in ${data}, got ${jsonl.length ? jsonl.join(", ") : "none"}; pass the file itself with --data`);
  }
  return join(data, jsonl[0]!);
}

/**
 * The dataset of a run. With `builtinShapes` (tiny's default data dir) a missing or foreign
 * directory is (re)generated first, printing what it does through `log`.
 */
export async function openDataset(data: string, { builtinShapes = false, log = (_: string) => {} } = {}): Promise<Dataset> {
  if (builtinShapes && !(await isShapesDir(data))) {
    log(`generating the shapes dataset in ${data} …`);
    const s = await generateShapes({ out: data });
    log(`shapes: ${s.spec.n} images (${s.splits.train} train, ${s.splits.val} val, ${s.splits.test} test) in ${s.seconds.toFixed(1)} s`);
  }
  const file = await datasetFile(data);
  const records = await readDataset(file);
  return {
    file,
    records,
    image: (i) => resolveImage(file, records[i]!),
    split: (name) => records.flatMap((r, i) => (r.split === name ? [i] : [])),
  };
}
