// `pnpm eye report <run-dir>`: (re)writes <run>/report.html from the run's logs — loss curves,
// evaluation metrics over time and sample captions, self-contained and offline.
import { defineCommand } from "citty";
import { writeReport } from "@llms-eye/train";
import { reportErrors } from "../errors.js";
import { userPath } from "../paths.js";

export default defineCommand({
  meta: { name: "report", description: "Write <run>/report.html (loss curves, metrics, samples)" },
  args: { run: { type: "positional", description: "run directory", required: true } },
  async run({ args }) {
    await reportErrors("report", async () => {
      const file = await writeReport(userPath(args.run));
      process.stdout.write(`${file}\n`);
    });
  },
});
