// `pnpm eye retrain --from <run-dir|checkpoint> --data <jsonl|dir> [--lr …] [flags]`: continues
// training a trained model on another dataset (weights from --from; a fresh optimizer, schedule
// and data order), into a new run directory. The recommended path: Flickr8k with a high rate,
// then Flickr30k, then COCO.
import { defineCommand } from "citty";
import { init } from "@llms-eye/tensor";
import { runSize, train } from "@llms-eye/train";
import { reportErrors } from "../errors.js";
import { userPath } from "../paths.js";
import { TRAIN_FLAGS, UsageError, freshRunDir, trainInput } from "../train/flags.js";
import { runTraining } from "../train/run.js";

export default defineCommand({
  meta: { name: "retrain", description: "Continue training a trained eye model on another dataset" },
  args: {
    from: { type: "string", description: "run directory or checkpoint to start from", required: true },
    ...TRAIN_FLAGS,
  },
  async run({ args }) {
    await reportErrors("retrain", async () => {
      if (typeof args.data !== "string") throw new UsageError("expected --data <jsonl|dir>, the dataset to continue on; prepare one with `pnpm eye prepare flickr8k --src <dir> --out data/flickr8k.jsonl`");
      await init();
      const from = userPath(args.from);
      const size = await runSize(from); // the size comes from the checkpoint
      const input = trainInput(args, size);
      input.out ??= freshRunDir(`${size}-retrain`);
      await runTraining((hooks) => train({ ...input, from }, hooks));
    });
  },
});
