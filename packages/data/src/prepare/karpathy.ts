// Karpathy splits: `dataset_{coco,flickr8k,flickr30k}.json`,
//   {"images": [{"filepath"?, "filename", "imgid", "split", "sentences": [{"raw", "tokens"}], "cocoid"?}], "dataset"}.
// Captions are the `raw` sentences; `restval` counts as train; the image path is
// images dir + (filepath ? filepath/ : "") + filename; the id is cocoid, else the file name stem.
import { dirname, join } from "node:path";
import { z } from "zod";
import type { Candidate, Parsed, Skip } from "./parsed.js";
import { cleanCaption, isImageName, readJson, stem } from "./input.js";
import type { Split } from "./records.js";

export const KarpathySchema = z.object({
  dataset: z.enum(["coco", "flickr8k", "flickr30k"]),
  images: z.array(
    z.object({
      filepath: z.string().optional(),
      filename: z.string(),
      split: z.enum(["train", "restval", "val", "test"]),
      sentences: z.array(z.object({ raw: z.string() })),
      cocoid: z.number().int().optional(),
    }),
  ),
});
export type KarpathyFile = z.infer<typeof KarpathySchema>;

export const KARPATHY_WHAT = 'a Karpathy split file {"dataset": "coco"|"flickr8k"|"flickr30k", "images": [{filename, split, sentences: [{raw}]}]}';

export const readKarpathy = (file: string): Promise<KarpathyFile> => readJson(file, KarpathySchema, KARPATHY_WHAT);

/** Karpathy's split name in ours. */
export const karpathySplit = (s: KarpathyFile["images"][number]["split"]): Split => (s === "restval" ? "train" : s);

export interface KarpathyOptions {
  /** The dataset_*.json file. */
  src: string;
  /** Image folder; for COCO the folder holding train2014/ and val2014/ (default: the JSON file's folder). */
  images?: string;
}

export async function parseKarpathy(o: KarpathyOptions): Promise<Parsed> {
  const data = await readKarpathy(o.src);
  const images = o.images ?? dirname(o.src);
  const skipped: Skip[] = [];
  const candidates: Candidate[] = [];
  data.images.forEach((im, i) => {
    const entry = im.filepath ? `${im.filepath}/${im.filename}` : im.filename;
    const where = { entry, file: o.src, detail: `images[${i}]` };
    if (!isImageName(im.filename) || (im.filepath ?? "").split("/").includes("..")) return void skipped.push({ ...where, reason: "bad file name" });
    const captions: string[] = [];
    im.sentences.forEach((s, j) => {
      const c = cleanCaption(s.raw);
      if (c) captions.push(c);
      else skipped.push({ ...where, entry: `${entry} sentence ${j}`, reason: "empty caption" });
    });
    if (captions.length === 0) return void skipped.push({ ...where, reason: "no captions" });
    const id = im.cocoid !== undefined ? String(im.cocoid) : stem(im.filename);
    candidates.push({ id, image: join(images, im.filepath ?? "", im.filename), captions, split: karpathySplit(im.split), entry, file: o.src });
  });
  return {
    source: data.dataset,
    candidates,
    skipped,
    inputs: [o.src],
    notes: [`Karpathy ${data.dataset} splits (restval → train)`, `images from ${images}`],
  };
}
