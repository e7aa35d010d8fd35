// `pnpm eye prepare <coco|flickr8k|flickr30k|karpathy> --src <download> --out <file.jsonl>`:
// convert a public caption dataset, as unpacked from its official download, to the unified JSON
// Lines; print the per-split summary and every skipped entry (also in <out>.summary.json).
// Flags point at individual files where the layout differs; a bad input exits 1 and writes nothing.
import { defineCommand } from "citty";
import { PREPARE_FORMATS, PrepareError, formatSummary, prepare, type PrepareFormat } from "@llms-eye/data";
import { userPath } from "../paths.js";

/** A progress line on stderr while image files are checked (only on a terminal, only for > 200 images). */
function progress(enabled: boolean): ((done: number, total: number) => void) | undefined {
  if (!enabled || !process.stderr.isTTY) return undefined;
  let last = 0;
  return (done, total) => {
    if (total <= 200 || (done < total && Date.now() - last < 100)) return;
    last = Date.now();
    const width = 30;
    const fill = Math.round((done / total) * width);
    process.stderr.write(`\rchecking images |${"█".repeat(fill)}${"░".repeat(width - fill)}| ${done}/${total}${done === total ? "\n" : ""}`);
  };
}

const path = (p: string | undefined) => (p === undefined || p === "" ? undefined : userPath(p));

export default defineCommand({
  meta: { name: "prepare", description: "Convert COCO / Flickr8k / Flickr30k / Karpathy-split captions to the unified JSON Lines dataset" },
  args: {
    format: { type: "positional", description: `source format: ${PREPARE_FORMATS.join(", ")}`, required: true },
    src: { type: "string", description: "folder where the download was unpacked (karpathy: the dataset_*.json file)", required: true },
    out: { type: "string", description: "JSON Lines file to write (a summary goes to <out>.summary.json)", required: true },
    images: { type: "string", description: "image folder (flickr8k, flickr30k, karpathy; default: the official folder name under --src)" },
    captions: { type: "string", description: "caption file: Flickr8k.token.txt, results_20130124.token or results.csv" },
    splits: { type: "string", description: "flickr8k: folder with Flickr_8k.{train,dev,test}Images.txt (default: the captions file's folder)" },
    "split-file": { type: "string", description: "flickr30k: Karpathy's dataset_flickr30k.json, to use its splits" },
    "captions-train": { type: "string", description: "coco: captions_train2017.json (default: --src/annotations/)" },
    "captions-val": { type: "string", description: "coco: captions_val2017.json (default: --src/annotations/)" },
    "images-train": { type: "string", description: "coco: train image folder (default: --src/train2017)" },
    "images-val": { type: "string", description: "coco: val image folder (default: --src/val2017)" },
    "check-images": { type: "boolean", description: "decode every image header (--no-check-images: only check that files exist)", default: true },
    concurrency: { type: "string", description: "image files checked at once", default: "8" },
    quiet: { type: "boolean", description: "no progress bar", default: false },
  },
  async run({ args }) {
    try {
      const format = String(args.format);
      if (!(PREPARE_FORMATS as readonly string[]).includes(format))
        throw new PrepareError(`prepare: expected a format among ${PREPARE_FORMATS.join(", ")}, got "${format}"`);
      if (!/^\d+$/.test(args.concurrency) || Number(args.concurrency) < 1)
        throw new PrepareError(`prepare: expected a positive integer for --concurrency, got ${JSON.stringify(args.concurrency)}`);
      const { summary } = await prepare({
        format: format as PrepareFormat,
        src: userPath(args.src),
        out: userPath(args.out),
        images: path(args.images),
        captions: path(args.captions),
        splits: path(args.splits),
        splitFile: path(args["split-file"]),
        trainCaptions: path(args["captions-train"]),
        valCaptions: path(args["captions-val"]),
        trainImages: path(args["images-train"]),
        valImages: path(args["images-val"]),
        checkImages: args["check-images"],
        concurrency: Number(args.concurrency),
        onProgress: progress(!args.quiet),
      });
      console.log(formatSummary(summary));
    } catch (e) {
      if (!(e instanceof PrepareError)) throw e;
      console.error(e.message);
      process.exitCode = 1;
    }
  },
});
