// COCO captions: `annotations/captions_{train,val}2017.json` ({images: [{id, file_name}],
// annotations: [{image_id, caption}]}) with the `train2017/` and `val2017/` image folders.
// captions_train2017 → train, captions_val2017 → val (COCO publishes no test captions); either
// file may be absent, not both. Ids are the COCO image ids as strings.
import { join } from "node:path";
import { z } from "zod";
import type { Candidate, Parsed, Skip } from "./parsed.js";
import { PrepareError, cleanCaption, findFirst, isImageName, readJson, requireDir } from "./input.js";
import type { Split } from "./records.js";

export const CocoCaptionsSchema = z.object({
  images: z.array(z.object({ id: z.number().int(), file_name: z.string() })),
  annotations: z.array(z.object({ image_id: z.number().int(), caption: z.string(), id: z.number().int().optional() })),
});

const WHAT = "a COCO captions object {images: [{id, file_name}], annotations: [{image_id, caption}]}";

export interface CocoOptions {
  /** Folder where the download was unpacked (holds annotations/, train2017/, val2017/). */
  src: string;
  trainCaptions?: string;
  valCaptions?: string;
  trainImages?: string;
  valImages?: string;
}

async function parseSplit(file: string, images: string, split: Split, skipped: Skip[], seen: Set<string>): Promise<Candidate[]> {
  const data = await readJson(file, CocoCaptionsSchema, WHAT);
  const byId = new Map<number, Candidate>();
  data.images.forEach((im, i) => {
    const where = { entry: `image ${im.id} (${im.file_name})`, file, detail: `images[${i}]` };
    if (!isImageName(im.file_name)) return void skipped.push({ ...where, reason: "bad file name" });
    if (byId.has(im.id) || seen.has(String(im.id))) return void skipped.push({ ...where, reason: "duplicate entry" });
    seen.add(String(im.id));
    byId.set(im.id, { id: String(im.id), image: join(images, im.file_name), captions: [], split, entry: where.entry, file });
  });
  data.annotations.forEach((a, i) => {
    const entry = `annotation ${a.id ?? i} for image ${a.image_id}`;
    const c = byId.get(a.image_id);
    if (!c) return void skipped.push({ entry, reason: "annotation for an unknown image", file, detail: `annotations[${i}]` });
    const caption = cleanCaption(a.caption);
    if (caption) c.captions.push(caption);
    else skipped.push({ entry, reason: "empty caption", file, detail: `annotations[${i}]` });
  });
  const out: Candidate[] = [];
  for (const c of byId.values()) {
    if (c.captions.length) out.push(c);
    else skipped.push({ entry: c.entry, reason: "no captions", file });
  }
  return out;
}

export async function parseCoco(o: CocoOptions): Promise<Parsed> {
  const files = {
    train: o.trainCaptions ?? findFirst(o.src, ["annotations/captions_train2017.json", "captions_train2017.json"]),
    val: o.valCaptions ?? findFirst(o.src, ["annotations/captions_val2017.json", "captions_val2017.json"]),
  };
  if (!files.train && !files.val)
    throw new PrepareError(`prepare coco: expected annotations/captions_train2017.json or annotations/captions_val2017.json under ${o.src}, found neither; pass --captions-train/--captions-val <file>`);
  const skipped: Skip[] = [];
  const candidates: Candidate[] = [];
  const notes = ["COCO splits: captions_train2017 → train, captions_val2017 → val; COCO publishes no test captions (use `karpathy` for a test split)"];
  const inputs: string[] = [];
  const seen = new Set<string>();
  for (const split of ["train", "val"] as const) {
    const file = files[split];
    if (!file) {
      notes.push(`no ${split} captions file found: the ${split} split is empty`);
      continue;
    }
    const images = (split === "train" ? o.trainImages : o.valImages) ?? join(o.src, `${split}2017`);
    requireDir(images, `the COCO ${split}2017 image folder`, `--images-${split}`);
    candidates.push(...(await parseSplit(file, images, split, skipped, seen)));
    inputs.push(file);
    notes.push(`${split} images from ${images}`);
  }
  return { source: "coco", candidates, skipped, inputs, notes };
}
