// `pnpm eye train --size <tiny|mini|base|large> [--data <jsonl|dir>] [--out <run-dir>] [flags]`:
// trains the eye model (train package). With --size tiny and no --data it generates the
// built-in shapes dataset in data/shapes first. Ctrl-C finishes the current step, writes a
// checkpoint and exits; `--resume` continues a run exactly where it stopped.
import { defineCommand } from "citty";
import { init } from "@llms-eye/tensor";
import { train } from "@llms-eye/train";
import { reportErrors } from "../errors.js";
import { userPath } from "../paths.js";
import { TRAIN_FLAGS, freshRunDir, latestRunDir, trainInput } from "../train/flags.js";
import { runTraining } from "../train/run.js";

export default defineCommand({
  meta: { name: "train", description: "Train the eye model (GPT-2 + CLIP) — `pnpm eye train --size tiny` trains on built-in shapes" },
  args: {
    size: { type: "string", description: "tiny | mini | base | large (resume: taken from the run)" },
    resume: { type: "boolean", description: "continue the run in --out (default runs/<size>) from its latest checkpoint" },
    ...TRAIN_FLAGS,
  },
  async run({ args }) {
    await reportErrors("train", async () => {
      const size = args.size ?? (args.resume ? "" : "tiny");
      const input = trainInput(args, size);
      if (args.resume) {
        input.out ??= latestRunDir(size || "tiny");
        await init();
        await runTraining((hooks) => train({ ...input, resume: true }, hooks));
        return;
      }
      const builtinShapes = size === "tiny" && input.data === undefined;
      if (builtinShapes) input.data = userPath("data/shapes");
      input.out ??= freshRunDir(size);
      await init();
      await runTraining((hooks) => train({ ...input, builtinShapes }, hooks));
    });
  },
});
