// Flickr30k: `results_20130124.token` (NAME.jpg#N<TAB>caption) or the Kaggle `results.csv`
// (`image_name| comment_number| comment`), and the image folder (`flickr30k-images`, or Kaggle's
// `flickr30k_images/flickr30k_images`). There is no official split. With a Karpathy file
// (`--split-file dataset_flickr30k.json`) its splits are used and images it lacks are skipped
// as "not in any split file"; without one, a deterministic seed-free rule: images sorted by file
// name, position i goes to val when i % 31 == 29, to test when i % 31 == 30, else train
// (≈ 3.2 % each: about 29,733 / 1,025 / 1,025 of the 31,783 images).
import { join } from "node:path";
import { fromGroups, type Parsed, type Skip } from "./parsed.js";
import { isResultsCsv, parseResultsCsv, parseTokenLines } from "./flickr-captions.js";
import { PrepareError, findFirst, readLines, requireDir, stem } from "./input.js";
import { karpathySplit, readKarpathy } from "./karpathy.js";
import type { Split } from "./records.js";

export interface Flickr30kOptions {
  /** Folder where the download was unpacked. */
  src: string;
  /** results_20130124.token or results.csv (default: found under src). */
  captions?: string;
  /** Image folder (default: src/flickr30k-images, src/flickr30k_images/flickr30k_images or src/flickr30k_images). */
  images?: string;
  /** Karpathy's dataset_flickr30k.json, to take its splits. */
  splitFile?: string;
}

const CAPTION_FILES = ["results_20130124.token", "results.csv", "flickr30k_images/results.csv", "flickr30k/results_20130124.token"];
const IMAGE_DIRS = ["flickr30k-images", "flickr30k_images/flickr30k_images", "flickr30k_images"];
export const SPLIT_RULE = "images sorted by file name; position i → val when i % 31 == 29, test when i % 31 == 30, else train";

/** The default Flickr30k split of each name (see the file header). */
export function ruleSplits(names: Iterable<string>): Map<string, Split> {
  const sorted = [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return new Map(sorted.map((n, i): [string, Split] => [n, i % 31 === 29 ? "val" : i % 31 === 30 ? "test" : "train"]));
}

export async function parseFlickr30k(o: Flickr30kOptions): Promise<Parsed> {
  const file = o.captions ?? findFirst(o.src, CAPTION_FILES);
  if (!file) throw new PrepareError(`prepare flickr30k: expected results_20130124.token or results.csv in ${o.src}, found neither; pass --captions <file>`);
  const images = o.images ?? findFirst(o.src, IMAGE_DIRS) ?? join(o.src, IMAGE_DIRS[0]!);
  requireDir(images, "the Flickr30k image folder", "--images");

  const what = "a Flickr30k captions file (results_20130124.token: NAME.jpg#N<TAB>caption, or results.csv: image_name| comment_number| comment)";
  const lines = await readLines(file, what);
  const { groups, skipped } = isResultsCsv(lines) ? parseResultsCsv(file, lines) : parseTokenLines(file, lines, what);

  const inputs = [file];
  let splits: Map<string, Split>;
  let note: string;
  if (o.splitFile) {
    const k = await readKarpathy(o.splitFile);
    inputs.push(o.splitFile);
    splits = new Map(k.images.map((im) => [im.filename, karpathySplit(im.split)]));
    note = `Flickr30k splits from ${o.splitFile} (restval → train)`;
  } else {
    splits = ruleSplits([...groups].filter(([, g]) => g.captions.length > 0).map(([n]) => n));
    note = `Flickr30k has no official split; used the fixed rule: ${SPLIT_RULE} (pass --split-file dataset_flickr30k.json for Karpathy's)`;
  }

  const extra: Skip[] = [];
  const candidates = fromGroups(groups, extra, (name, g) => {
    const split = splits.get(name);
    if (!split) return void extra.push({ entry: name, reason: "not in any split file", file: g.file, line: g.line, detail: `not in ${o.splitFile}` });
    return { id: stem(name), image: join(images, name), split };
  });
  return { source: "flickr30k", candidates, skipped: [...skipped, ...extra], inputs, notes: [note, `images from ${images}`] };
}
