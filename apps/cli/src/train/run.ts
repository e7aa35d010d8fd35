// Runs a training function with the CLI's hooks: the progress display, messages on stderr, and
// Ctrl-C → abort (the step finishes, a checkpoint is written); a second Ctrl-C exits at once.
import type { TrainHooks, TrainResult } from "@llms-eye/train";
import { progress } from "./progress.js";

export async function runTraining(start: (hooks: TrainHooks) => Promise<TrainResult>): Promise<TrainResult> {
  const p = progress();
  const abort = new AbortController();
  const onSigint = () => {
    if (abort.signal.aborted) process.exit(130);
    p.log("stopping after this step (Ctrl-C again to quit without a checkpoint) …");
    abort.abort();
  };
  process.on("SIGINT", onSigint);
  try {
    const r = await start({ log: (m) => p.log(m), onStep: (s, t) => p.step(s, t), onFeatures: (d, t) => p.features(d, t), signal: abort.signal });
    p.stop();
    process.stderr.write(`${r.stopped ? "stopped" : "done"}: step ${r.step}/${r.totalSteps} in ${(r.seconds / 60).toFixed(1)} min; checkpoint ${r.checkpoint}; report ${r.runDir}/report.html\n`);
    if (r.stopped) process.exitCode = 130;
    return r;
  } finally {
    p.stop();
    process.off("SIGINT", onSigint);
  }
}
