// Inputs of the caption metrics, validated with zod: references as a COCO captions annotation
// file ({images, annotations}) or our unified dataset JSONL ({id, captions, split} per line),
// predictions as a COCO results list [{image_id, caption}]. Image ids are kept as strings (COCO's
// numbers and our string ids compare by their text); image order and reference order are the
// file's, as COCOEvalCap groups them.
import { readFile } from "node:fs/promises";
import { z } from "zod";

export class MetricsError extends Error {
  override name = "MetricsError";
}

/** References grouped per image, in file order. */
export interface CaptionRefs { imageIds: string[]; refs: Map<string, string[]> }

const Id = z.union([z.number().int(), z.string().min(1)]);
const CocoCaptions = z.object({
  images: z.array(z.object({ id: Id }).loose()),
  annotations: z.array(z.object({ image_id: Id, caption: z.string() }).loose()),
}).loose();
const CocoResults = z.array(z.object({ image_id: Id, caption: z.string() }).loose());
const DatasetRecord = z.object({ id: Id, captions: z.array(z.string()), split: z.string().optional() }).loose();

const kind = (v: unknown): string => (Array.isArray(v) ? "a JSON list" : v === null ? "null" : typeof v === "object" ? `an object with keys {${Object.keys(v as object).slice(0, 6).join(", ")}}` : `a JSON ${typeof v}`);
const firstIssue = (e: z.ZodError): string => {
  const i = e.issues[0]!;
  return `${i.message} at ${i.path.length ? i.path.join(".") : "top level"}`;
};
const some = (ids: string[]): string => `${ids.slice(0, 5).join(", ")}${ids.length > 5 ? `, … (${ids.length} in all)` : ""}`;

/** A COCO captions annotation object → references per image. */
export function parseCocoCaptions(json: unknown, source: string): CaptionRefs {
  const what = `a COCO captions object {images, annotations} in ${source}`;
  if (typeof json !== "object" || json === null || Array.isArray(json) || !("annotations" in json)) {
    throw new MetricsError(`score: expected ${what}, got ${kind(json)}${Array.isArray(json) ? " (is this a results file? pass it as --preds)" : ""}`);
  }
  const parsed = CocoCaptions.safeParse(json);
  if (!parsed.success) throw new MetricsError(`score: expected ${what}: ${firstIssue(parsed.error)}`);
  const refs = new Map<string, string[]>();
  const imageIds: string[] = [];
  for (const im of parsed.data.images) {
    const id = String(im.id);
    if (refs.has(id)) throw new MetricsError(`score: image id ${id} is listed twice in images of ${source}`);
    refs.set(id, []);
    imageIds.push(id);
  }
  const orphans: string[] = [];
  for (const a of parsed.data.annotations) {
    const list = refs.get(String(a.image_id));
    if (list) list.push(a.caption);
    else orphans.push(String(a.image_id));
  }
  if (orphans.length > 0) throw new MetricsError(`score: annotations of ${source} refer to images not in its images list: ${some(orphans)}`);
  return checkRefs({ imageIds, refs }, source);
}

/** Our unified dataset JSONL ({id, captions, split} per line) → references, optionally one split. */
export function parseDatasetJsonl(text: string, source: string, split?: string): CaptionRefs {
  const refs = new Map<string, string[]>();
  const imageIds: string[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    let json: unknown;
    try { json = JSON.parse(line); } catch { throw new MetricsError(`score: expected one JSON object per line in ${source}, line ${i + 1} is not JSON`); }
    const rec = DatasetRecord.safeParse(json);
    if (!rec.success) throw new MetricsError(`score: expected dataset records {id, captions, split} in ${source}, line ${i + 1}: ${firstIssue(rec.error)}`);
    if (split !== undefined && rec.data.split !== split) return;
    const id = String(rec.data.id);
    if (refs.has(id)) throw new MetricsError(`score: record id ${id} appears twice in ${source} (line ${i + 1})`);
    refs.set(id, rec.data.captions);
    imageIds.push(id);
  });
  if (imageIds.length === 0) throw new MetricsError(`score: no records${split !== undefined ? ` of split "${split}"` : ""} in ${source}`);
  return checkRefs({ imageIds, refs }, source);
}

function checkRefs(r: CaptionRefs, source: string): CaptionRefs {
  if (r.imageIds.length === 0) throw new MetricsError(`score: no images in ${source}`);
  const bare = r.imageIds.filter((id) => r.refs.get(id)!.length === 0);
  if (bare.length > 0) throw new MetricsError(`score: images without any reference caption in ${source}: ${some(bare)}; remove them or add captions`);
  const empty = r.imageIds.filter((id) => r.refs.get(id)!.some((c) => c.trim() === ""));
  if (empty.length > 0) throw new MetricsError(`score: empty reference captions for images ${some(empty)} in ${source}`);
  return r;
}

/** A COCO results list → the one caption per image, in file order. */
export function parseCocoResults(json: unknown, source: string): Map<string, string> {
  const what = `a COCO results list [{image_id, caption}] in ${source}`;
  if (!Array.isArray(json)) throw new MetricsError(`score: expected ${what}, got ${kind(json)}`);
  const parsed = CocoResults.safeParse(json);
  if (!parsed.success) throw new MetricsError(`score: expected ${what}: ${firstIssue(parsed.error)}`);
  const preds = new Map<string, string>();
  const dups: string[] = [];
  const empty: string[] = [];
  for (const p of parsed.data) {
    const id = String(p.image_id);
    if (preds.has(id)) dups.push(id);
    if (p.caption.trim() === "") empty.push(id);
    preds.set(id, p.caption);
  }
  if (dups.length > 0) throw new MetricsError(`score: more than one prediction for images ${some(dups)} in ${source}; keep one caption per image`);
  if (empty.length > 0) throw new MetricsError(`score: empty predicted captions for images ${some(empty)} in ${source}`);
  return preds;
}

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try { text = await readFile(path, "utf8"); } catch (e) { throw new MetricsError(`score: cannot read ${path}: ${(e as Error).message}`); }
  try { return JSON.parse(text); } catch (e) { throw new MetricsError(`score: ${path} is not JSON (${(e as Error).message})`); }
}

/** References from a COCO captions file or, by extension .jsonl or by content, a dataset JSONL. */
export async function readReferences(path: string, opts: { split?: string } = {}): Promise<CaptionRefs> {
  let text: string;
  try { text = await readFile(path, "utf8"); } catch (e) { throw new MetricsError(`score: cannot read ${path}: ${(e as Error).message}`); }
  const firstLine = text.trimStart().split("\n", 1)[0] ?? "";
  let looksJsonl = /\.jsonl$/i.test(path);
  if (!looksJsonl) { try { const o = JSON.parse(firstLine) as unknown; looksJsonl = typeof o === "object" && o !== null && "captions" in o; } catch { /* not one object per line */ } }
  if (looksJsonl) return parseDatasetJsonl(text, path, opts.split);
  if (opts.split !== undefined) throw new MetricsError(`score: --split applies to dataset JSONL references, but ${path} is not one`);
  let json: unknown;
  try { json = JSON.parse(text); } catch (e) { throw new MetricsError(`score: ${path} is neither JSON nor dataset JSONL (${(e as Error).message})`); }
  return parseCocoCaptions(json, path);
}

/** Predictions from a COCO results file. */
export async function readPredictions(path: string): Promise<Map<string, string>> {
  return parseCocoResults(await readJson(path), path);
}
