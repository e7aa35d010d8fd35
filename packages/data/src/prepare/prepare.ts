// `prepare({format, src, out})`: converts a public caption dataset download to the unified JSON
// Lines (records.ts). Parses the source (coco.ts, flickr8k.ts, flickr30k.ts, karpathy.ts), skips
// duplicate ids, checks every image file (images.ts), then writes `<out>` and `<out>.summary.json`
// atomically. Image paths are written relative to the output file's folder. Unusable input, or
// no usable image at all, throws a PrepareError and writes nothing.
import { existsSync, statSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { writeFilesAtomically } from "./atomic.js";
import { parseCoco } from "./coco.js";
import { parseFlickr30k } from "./flickr30k.js";
import { parseFlickr8k } from "./flickr8k.js";
import { checkImages } from "./images.js";
import { PrepareError } from "./input.js";
import { parseKarpathy } from "./karpathy.js";
import type { Candidate, Parsed, Skip } from "./parsed.js";
import { formatDataset, type DatasetRecord } from "./records.js";
import { buildSummary, countReasons, formatSkip, summaryPath, type PrepareSummary } from "./summary.js";

export const PREPARE_FORMATS = ["coco", "flickr8k", "flickr30k", "karpathy"] as const;
export type PrepareFormat = (typeof PREPARE_FORMATS)[number];

export interface PrepareOptions {
  format: PrepareFormat;
  /** The unpacked download folder (karpathy: the dataset_*.json file). */
  src: string;
  /** The JSON Lines file to write; `<out>.summary.json` is written beside it. */
  out: string;
  /** Image folder (flickr8k, flickr30k, karpathy). */
  images?: string;
  /** Caption file (flickr8k: Flickr8k.token.txt; flickr30k: results_20130124.token or results.csv). */
  captions?: string;
  /** flickr8k: folder with Flickr_8k.{train,dev,test}Images.txt. */
  splits?: string;
  /** flickr30k: Karpathy's dataset_flickr30k.json for its splits. */
  splitFile?: string;
  /** coco: individual files and folders instead of the standard layout under src. */
  trainCaptions?: string;
  valCaptions?: string;
  trainImages?: string;
  valImages?: string;
  /** Decode each image header with sharp (default true); existence is always checked. */
  checkImages?: boolean;
  /** Image checks at once (default 8). */
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface PrepareResult {
  records: DatasetRecord[];
  summary: PrepareSummary;
  summaryFile: string;
}

/** The per-format options, with their CLI flags: an option given to a format that does not read it is an error. */
const FORMAT_OPTIONS: [keyof PrepareOptions, string, readonly PrepareFormat[]][] = [
  ["images", "--images", ["flickr8k", "flickr30k", "karpathy"]],
  ["captions", "--captions", ["flickr8k", "flickr30k"]],
  ["splits", "--splits", ["flickr8k"]],
  ["splitFile", "--split-file", ["flickr30k"]],
  ["trainCaptions", "--captions-train", ["coco"]],
  ["valCaptions", "--captions-val", ["coco"]],
  ["trainImages", "--images-train", ["coco"]],
  ["valImages", "--images-val", ["coco"]],
];

function parse(o: PrepareOptions): Promise<Parsed> {
  switch (o.format) {
    case "coco":
      return parseCoco(o);
    case "flickr8k":
      return parseFlickr8k(o);
    case "flickr30k":
      return parseFlickr30k(o);
    case "karpathy":
      return parseKarpathy(o);
  }
}

/** The image path as written: relative to the output folder, with `/` separators (absolute only where no relative path exists). */
export function imagePathFor(out: string, image: string): string {
  const rel = relative(dirname(resolve(out)), image);
  return isAbsolute(rel) ? image : rel.split(sep).join("/");
}

export async function prepare(o: PrepareOptions): Promise<PrepareResult> {
  if (!(PREPARE_FORMATS as readonly string[]).includes(o.format))
    throw new PrepareError(`prepare: expected a format among ${PREPARE_FORMATS.join(", ")}, got "${o.format}"`);
  for (const [key, flag, formats] of FORMAT_OPTIONS)
    if (o[key] !== undefined && !formats.includes(o.format))
      throw new PrepareError(`prepare ${o.format}: ${flag} does not apply to ${o.format} (it is for ${formats.join(", ")}); remove it`);
  if (!existsSync(o.src)) throw new PrepareError(`prepare ${o.format}: expected --src to exist, got ${o.src} which does not; pass the folder where the download was unpacked${o.format === "karpathy" ? " (karpathy: the dataset_*.json file)" : ""}`);
  if (o.format === "karpathy" ? statSync(o.src).isDirectory() : !statSync(o.src).isDirectory())
    throw new PrepareError(`prepare ${o.format}: expected --src to be ${o.format === "karpathy" ? "a dataset_*.json file" : "a folder"}, got ${o.src}`);
  for (const f of [o.out, summaryPath(o.out)])
    if (existsSync(f) && statSync(f).isDirectory()) throw new PrepareError(`prepare: expected --out to name a file (e.g. ${join(o.out, "dataset.jsonl")}), but ${f} is a folder`);

  const parsed = await parse(o);
  const skipped: Skip[] = [...parsed.skipped];
  const ids = new Set<string>();
  const unique: Candidate[] = [];
  for (const c of parsed.candidates) {
    if (ids.has(c.id)) skipped.push({ entry: c.entry, reason: "duplicate entry", file: c.file, line: c.line, detail: `id ${c.id} seen before` });
    else ids.add(c.id), unique.push(c);
  }

  const decode = o.checkImages ?? true;
  const problems = await checkImages(
    unique.map((c) => c.image),
    { decode, concurrency: o.concurrency, onProgress: o.onProgress },
  );
  const records: DatasetRecord[] = [];
  unique.forEach((c, i) => {
    const p = problems[i];
    if (p) skipped.push({ entry: c.entry, reason: p.reason, file: c.image, detail: p.detail ?? (c.line !== undefined ? `${c.file}:${c.line}` : c.file) });
    else records.push({ id: c.id, image: imagePathFor(o.out, c.image), captions: c.captions, split: c.split, source: parsed.source });
  });

  if (records.length === 0) {
    const by = Object.entries(countReasons(skipped)).map(([r, n]) => `${n} ${r}`).join(", ");
    const first = skipped.slice(0, 5).map((s) => `\n  ${formatSkip(s)}`).join("");
    throw new PrepareError(`prepare ${o.format}: no usable image in ${parsed.inputs.join(", ")} (skipped ${skipped.length}: ${by || "nothing to read"}); check --src/--images${first}`);
  }
  const summary = buildSummary({ format: o.format, source: parsed.source, out: o.out, inputs: parsed.inputs, notes: parsed.notes, imagesDecoded: decode }, records, skipped);
  const summaryFile = summaryPath(o.out);
  await mkdir(dirname(resolve(o.out)), { recursive: true });
  await writeFilesAtomically([
    { path: o.out, data: formatDataset(records, o.out) },
    { path: summaryFile, data: JSON.stringify(summary, null, 1) + "\n" },
  ]);
  return { records, summary, summaryFile };
}
