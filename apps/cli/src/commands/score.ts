// `pnpm eye score --refs <coco-captions.json|dataset.jsonl> --preds <coco-results.json>`: the COCO
// caption metrics (BLEU-1..4, ROUGE-L, CIDEr-D with PTB tokenisation, as pycocoevalcap) as a
// table, or with --json an object keyed as pycocoevalcap names them; --per-image writes per-image
// scores keyed by image id (atomically).
import { defineCommand } from "citty";
import { rename, writeFile } from "node:fs/promises";
import { METRIC_NAMES, MetricsError, evaluateCaptions, readPredictions, readReferences } from "@llms-eye/data";
import { userPath } from "../paths.js";

export default defineCommand({
  meta: { name: "score", description: "Caption metrics (BLEU, ROUGE-L, CIDEr-D) of predictions against references, as pycocoevalcap" },
  args: {
    refs: { type: "string", description: "references: COCO captions annotation JSON, or a dataset JSONL ({id, captions, split} lines)", required: true },
    preds: { type: "string", description: "predictions: COCO results JSON [{image_id, caption}], one per image", required: true },
    split: { type: "string", description: "with a dataset JSONL: only records of this split (e.g. test)" },
    json: { type: "boolean", description: "print a JSON object {Bleu_1..Bleu_4, ROUGE_L, CIDEr}", default: false },
    "per-image": { type: "string", description: "write per-image scores to this JSON file, keyed by image id" },
  },
  async run({ args }) {
    try {
      const refs = await readReferences(userPath(args.refs), args.split !== undefined ? { split: args.split } : {});
      const preds = await readPredictions(userPath(args.preds));
      const t0 = performance.now();
      const res = evaluateCaptions(refs, preds);
      const seconds = (performance.now() - t0) / 1000;
      if (args["per-image"]) {
        const file = userPath(args["per-image"]);
        const tmp = `${file}.tmp-${process.pid}`;
        await writeFile(tmp, JSON.stringify(Object.fromEntries(res.perImage), null, 1) + "\n");
        await rename(tmp, file);
      }
      if (args.json) {
        console.log(JSON.stringify(res.scores, null, 2));
        return;
      }
      console.log(`${refs.imageIds.length} images, ${[...refs.refs.values()].reduce((n, r) => n + r.length, 0)} references, scored in ${seconds.toFixed(2)} s`);
      console.log(`${"metric".padEnd(8)}  ${"value".padStart(8)}  ${"x100".padStart(7)}`);
      for (const m of METRIC_NAMES) console.log(`${m.padEnd(8)}  ${res.scores[m].toFixed(4).padStart(8)}  ${(res.scores[m] * 100).toFixed(2).padStart(7)}`);
    } catch (e) {
      if (!(e instanceof MetricsError)) throw e;
      console.error(e.message);
      process.exitCode = 1;
    }
  },
});
