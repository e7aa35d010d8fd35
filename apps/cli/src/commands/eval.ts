// `pnpm eye eval --ckpt <run|checkpoint> --data <jsonl|dir> [--split test] [--json]`: captions
// the split, prints BLEU-1..4, ROUGE-L, CIDEr-D, retrieval Recall@1/5/10 both ways (the model's
// own embeddings) and CLIPScore when a CLIP with a text tower is available; writes the
// predictions in COCO results format (default <checkpoint>/predictions-<split>.json).
import { defineCommand } from "citty";
import { init } from "@llms-eye/tensor";
import { evalRun } from "@llms-eye/train";
import { reportErrors } from "../errors.js";
import { userPath } from "../paths.js";
import { UsageError } from "../train/flags.js";
import { DECODE_FLAGS, decodeFlags } from "./caption.js";

export default defineCommand({
  meta: { name: "eval", description: "Caption a dataset split with a trained eye model and score it" },
  args: {
    ckpt: { type: "string", description: "run directory or checkpoint", required: true },
    data: { type: "string", description: "dataset: unified JSONL file or a directory holding one", required: true },
    split: { type: "string", description: "train | val | test (default test)", default: "test" },
    limit: { type: "string", description: "only the first N images of the split" },
    predictions: { type: "string", description: "where to write the predictions (COCO results JSON)" },
    clip: { type: "string", description: "CLIP repo or dir with a text tower for CLIPScore (default: the model's vision repo; none = skip)" },
    json: { type: "boolean", description: "print the scores as JSON (pycocoevalcap names)" },
    ...DECODE_FLAGS,
  },
  async run({ args }) {
    await reportErrors("eval", async () => {
      const split = args.split;
      if (split !== "train" && split !== "val" && split !== "test") throw new UsageError(`expected --split train, val or test, got ${JSON.stringify(split)}`);
      const limit = args.limit === undefined ? undefined : Number(args.limit);
      if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) throw new UsageError(`expected a positive integer for --limit, got ${JSON.stringify(args.limit)}`);
      await init();
      const r = await evalRun(userPath(args.ckpt), userPath(args.data), {
        split, ...decodeFlags(args), ...(limit ? { limit } : {}), ...(args.predictions ? { predictions: userPath(args.predictions) } : {}),
        ...(args.clip ? { clip: args.clip } : {}), log: (m) => process.stderr.write(`${m}\n`),
      });
      const m = r.summary.metrics;
      const scores = {
        ...m,
        ...(r.clipScore ? { CLIPScore: r.clipScore.clipScore, ...(r.clipScore.refClipScore !== undefined ? { RefCLIPScore: r.clipScore.refClipScore } : {}) } : {}),
        "R@1_i2t": r.summary.retrieval.i2t[1], "R@5_i2t": r.summary.retrieval.i2t[5], "R@10_i2t": r.summary.retrieval.i2t[10],
        "R@1_t2i": r.summary.retrieval.t2i[1], "R@5_t2i": r.summary.retrieval.t2i[5], "R@10_t2i": r.summary.retrieval.t2i[10],
      };
      if (args.json) {
        process.stdout.write(`${JSON.stringify({ ...scores, images: r.summary.images, emptyCaptions: r.empty, ...(r.summary.singleObject ? { singleObject: r.summary.singleObject } : {}), predictions: r.predictionsFile }, null, 2)}\n`);
        return;
      }
      process.stdout.write(`${r.summary.images} images of split ${split} (${r.checkpoint})\n`);
      for (const [k, v] of Object.entries(scores)) process.stdout.write(`  ${k.padEnd(12)} ${v.toFixed(4)}\n`);
      const so = r.summary.singleObject;
      if (so) process.stdout.write(`  single-object images whose caption names their color and shape: ${so.correct} of ${so.images}\n`);
      if (r.empty > 0) process.stdout.write(`  ${r.empty} empty captions (scored as empty)\n`);
      process.stdout.write(`predictions: ${r.predictionsFile}\n`);
    });
  },
});
