// `eye train`'s progress on a pipe (CI logs, `| tee`): one plain line every 10 steps with the
// figures and an ETA from the pace of the last 50 steps.
import type { StepRecord } from "@llms-eye/train";
import { describe, expect, it } from "vitest";
import { formatEta, progress } from "../src/train/progress.js";

const record = (step: number): StepRecord => ({
  step, epoch: step / 100, loss: 2.5, lm: 1.5, infoNCE: 1, lr: 1e-3, projectorLr: 1e-3, gradNorm: 1,
  tokensPerSec: 200, imagesPerSec: 16, seconds: 0.5, dataWait: 0, elapsed: step / 2,
});

describe("plain progress lines", () => {
  it("every 10 steps, with the figures and an ETA from the recent pace", () => {
    const lines: string[] = [];
    const stream = { isTTY: false, write: (s: string) => (lines.push(s), true) } as unknown as NodeJS.WriteStream;
    let t = 0;
    const p = progress(stream, () => t);
    for (let step = 1; step <= 200; step++) {
      t += step <= 100 ? 5000 : 500; // slow first 100 steps (5 s each), then 0.5 s a step
      p.step(record(step), 200);
    }
    expect(lines).toHaveLength(21); // step 1, 10, 20, …, 200
    expect(lines[0]).toBe("step 1/200 epoch 0.01 loss 2.5000 lm 1.5000 nce 1.0000 lr 1.00e-3 200 tok/s\n");
    expect(lines[1]).toMatch(/^step 10\/200 .* ETA 15m50s\n$/); // 9 steps in 45 s: 190 steps at 5 s
    expect(lines[15]).toMatch(/^step 150\/200 .* ETA 25s\n$/); // 50 steps at 0.5 s: 50 left
    expect(lines[20]).toBe("step 200/200 epoch 2.00 loss 2.5000 lm 1.5000 nce 1.0000 lr 1.00e-3 200 tok/s\n");
  });

  it("formats seconds, minutes and hours", () => {
    expect([formatEta(0), formatEta(44.6), formatEta(65), formatEta(3599), formatEta(3725), formatEta(-3)]).toEqual(["0s", "45s", "1m05s", "59m59s", "1h02m", "0s"]);
  });
});
