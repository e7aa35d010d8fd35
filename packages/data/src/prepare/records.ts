// The unified dataset format: JSON Lines, one image per line,
//   {"id", "image", "captions": [...], "split": "train|val|test", "source": "coco|flickr8k|flickr30k|shapes"}.
// `image` is relative to the JSONL file's directory (so a dataset folder can be moved) or
// absolute; `resolveImage` turns it into a path. `readDataset` validates every line and names
// file:line on error; `writeDataset` writes atomically (temporary file in the same folder, then rename).
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { z } from "zod";
import { writeFilesAtomically } from "./atomic.js";

export const SPLITS = ["train", "val", "test"] as const;
export const SOURCES = ["coco", "flickr8k", "flickr30k", "shapes"] as const;
export type Split = (typeof SPLITS)[number];
export type Source = (typeof SOURCES)[number];

export const DatasetRecordSchema = z.strictObject({
  id: z.string().min(1),
  image: z.string().min(1),
  captions: z.array(z.string().min(1)).min(1),
  split: z.enum(SPLITS),
  source: z.enum(SOURCES),
  /** Ground truth a source may add (shapes: the objects drawn); kept as written. */
  meta: z.record(z.string(), z.unknown()).optional(),
});
export type DatasetRecord = z.infer<typeof DatasetRecordSchema>;

/** A dataset file that is not valid unified JSON Lines, or records that cannot be written. */
export class DatasetError extends Error {
  override name = "DatasetError";
}

const KEYS = new Set(["id", "image", "captions", "split", "source", "meta"]);
const SPLIT_SET = new Set<string>(SPLITS);
const SOURCE_SET = new Set<string>(SOURCES);

/** The fast check run on every line; zod only explains a line that fails it. */
function isRecord(v: unknown): v is DatasetRecord {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const r = v as Record<string, unknown>;
  let n = 0;
  for (const k in r) if (!KEYS.has(k) || ++n > 6) return false;
  if (r.meta !== undefined && (typeof r.meta !== "object" || r.meta === null || Array.isArray(r.meta))) return false;
  if (typeof r.id !== "string" || r.id === "" || typeof r.image !== "string" || r.image === "") return false;
  if (typeof r.split !== "string" || !SPLIT_SET.has(r.split) || typeof r.source !== "string" || !SOURCE_SET.has(r.source)) return false;
  const c = r.captions;
  if (!Array.isArray(c) || c.length === 0) return false;
  for (const s of c) if (typeof s !== "string" || s === "") return false;
  return true;
}

const explain = (v: unknown): string => {
  const r = DatasetRecordSchema.safeParse(v);
  if (r.success) return "a valid record";
  return r.error.issues.map((i) => `${i.path.length ? i.path.join(".") : "record"}: ${i.message}`).join("; ");
};

/**
 * Reads and validates a unified JSON Lines dataset. Blank lines are ignored; any other bad line,
 * or an id seen twice, throws a DatasetError naming file:line. Image paths are returned as written;
 * use `resolveImage(file, record)` to open them.
 */
export async function readDataset(file: string): Promise<DatasetRecord[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new DatasetError(`readDataset: cannot read ${file}: ${(e as Error).message}; create it with \`pnpm eye prepare\``);
  }
  if (text.includes("\u0000")) throw new DatasetError(`readDataset: expected JSON Lines text in ${file}, got a binary file`);
  const records: DatasetRecord[] = [];
  const seen = new Map<string, number>();
  let start = 0;
  for (let line = 1; start < text.length; line++) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    const raw = text.slice(start, end).trim();
    start = end + 1;
    if (raw === "") continue;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      throw new DatasetError(`readDataset: expected one JSON object per line in ${file}:${line}, got invalid JSON (${(e as Error).message})`);
    }
    if (!isRecord(v)) throw new DatasetError(`readDataset: expected a record {id, image, captions, split, source} at ${file}:${line}, got ${explain(v)}`);
    const prev = seen.get(v.id);
    if (prev !== undefined) throw new DatasetError(`readDataset: id "${v.id}" appears twice in ${file}, at lines ${prev} and ${line}; ids must be unique`);
    seen.set(v.id, line);
    records.push(v);
  }
  if (records.length === 0) throw new DatasetError(`readDataset: expected at least one record in ${file}, got an empty file`);
  return records;
}

/** The path of a record's image: relative paths are resolved against the dataset file's directory. */
export const resolveImage = (datasetFile: string, record: Pick<DatasetRecord, "image">): string =>
  isAbsolute(record.image) ? record.image : resolve(dirname(datasetFile), record.image);

/** One JSON line per record, each validated first. */
export function formatDataset(records: readonly DatasetRecord[], file = "dataset"): string {
  const seen = new Set<string>();
  const lines = records.map((r, i) => {
    if (!isRecord(r)) throw new DatasetError(`writeDataset: record ${i} for ${file} is not valid: ${explain(r)}`);
    if (seen.has(r.id)) throw new DatasetError(`writeDataset: id "${r.id}" appears twice in the records for ${file}; ids must be unique`);
    seen.add(r.id);
    return JSON.stringify({ id: r.id, image: r.image, captions: r.captions, split: r.split, source: r.source, ...(r.meta ? { meta: r.meta } : {}) });
  });
  return lines.length ? lines.join("\n") + "\n" : "";
}

/** Writes records as unified JSON Lines, atomically: an existing file is replaced only once the new one is complete. */
export async function writeDataset(file: string, records: readonly DatasetRecord[]): Promise<void> {
  await writeFilesAtomically([{ path: file, data: formatDataset(records, file) }]);
}
