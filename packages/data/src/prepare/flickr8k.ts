// Flickr8k: `Flickr8k.token.txt` (NAME.jpg#N<TAB>caption, 5 per image) with the official splits
// `Flickr_8k.{train,dev,test}Images.txt` (dev → val) and the image folder (the official archive's
// folder is spelled `Flicker8k_Dataset`). An image in no split file, or in several, is skipped;
// a split-file image without captions is skipped as "no captions".
import { dirname, join } from "node:path";
import { fromGroups, type Parsed, type Skip } from "./parsed.js";
import { parseTokenLines } from "./flickr-captions.js";
import { PrepareError, findFirst, readLines, requireDir, stem } from "./input.js";
import type { Split } from "./records.js";

export interface Flickr8kOptions {
  /** Folder where the download was unpacked. */
  src: string;
  /** Flickr8k.token.txt (default: found under src or src/Flickr8k_text). */
  captions?: string;
  /** Folder holding Flickr_8k.{train,dev,test}Images.txt (default: the captions file's folder). */
  splits?: string;
  /** Image folder (default: src/Flicker8k_Dataset, src/Flickr8k_Dataset or src/Images). */
  images?: string;
}

const TEXT_DIRS = ["", "Flickr8k_text"];
const IMAGE_DIRS = ["Flicker8k_Dataset", "Flickr8k_Dataset", "Images"];
const SPLIT_FILES: [Split, string][] = [
  ["train", "Flickr_8k.trainImages.txt"],
  ["val", "Flickr_8k.devImages.txt"],
  ["test", "Flickr_8k.testImages.txt"],
];

export async function parseFlickr8k(o: Flickr8kOptions): Promise<Parsed> {
  const tokenFile = o.captions ?? findFirst(o.src, TEXT_DIRS.map((d) => join(d, "Flickr8k.token.txt")));
  if (!tokenFile) throw new PrepareError(`prepare flickr8k: expected Flickr8k.token.txt in ${o.src} or ${join(o.src, "Flickr8k_text")}, found none; pass --captions <file>`);
  const images = o.images ?? findFirst(o.src, IMAGE_DIRS) ?? join(o.src, IMAGE_DIRS[0]!);
  requireDir(images, "the Flickr8k image folder", "--images");
  const splitDir = o.splits ?? dirname(tokenFile);

  const { groups, skipped } = parseTokenLines(tokenFile, await readLines(tokenFile, "a Flickr8k token file"), "a Flickr8k token file");
  const splitOf = new Map<string, { split: Split; file: string; line: number }[]>();
  const inputs = [tokenFile];
  for (const [split, name] of SPLIT_FILES) {
    const file = join(splitDir, name);
    const lines = await readLines(file, `the Flickr8k ${split} split (one image file name per line)`);
    inputs.push(file);
    lines.forEach((l, i) => {
      const img = l.trim();
      if (img === "") return;
      const list = splitOf.get(img) ?? [];
      if (!list.some((s) => s.split === split)) list.push({ split, file, line: i + 1 });
      splitOf.set(img, list);
    });
  }

  const extra: Skip[] = [];
  const candidates = fromGroups(groups, extra, (name, g) => {
    const s = splitOf.get(name);
    if (!s) return void extra.push({ entry: name, reason: "not in any split file", file: g.file, line: g.line });
    if (s.length > 1)
      return void extra.push({ entry: name, reason: "in several split files", file: g.file, line: g.line, detail: s.map((x) => `${x.split} (${x.file}:${x.line})`).join(", ") });
    return { id: stem(name), image: join(images, name), split: s[0]!.split };
  });
  for (const [name, s] of splitOf)
    if (!groups.has(name)) for (const x of s) extra.push({ entry: name, reason: "no captions", file: x.file, line: x.line, detail: `not in ${tokenFile}` });

  return {
    source: "flickr8k",
    candidates,
    skipped: [...skipped, ...extra],
    inputs,
    notes: ["Flickr8k splits from Flickr_8k.{train,dev,test}Images.txt (dev → val)", `images from ${images}`],
  };
}
