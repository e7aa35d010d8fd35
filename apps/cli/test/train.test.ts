// The eye model's commands as a user meets them: every mistake a user can make prints one line
// naming the input and the command that fixes it, sets exit code 1, and writes nothing.
// (Training itself is tested in packages/train; a run is made here only for the caption path.)
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ArgsDef, type CommandDef, runCommand } from "citty";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import trainCommand from "../src/commands/train.js";
import retrainCommand from "../src/commands/retrain.js";
import captionCommand from "../src/commands/caption.js";
import evalCommand from "../src/commands/eval.js";
import reportCommand from "../src/commands/report.js";
import { SIZE_DEFAULTS } from "@llms-eye/train";
import { TRAIN_FLAGS, freshRunDir, latestRunDir } from "../src/train/flags.js";

const TMP = mkdtempSync(join(tmpdir(), "eye-cli-train-"));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
afterEach(() => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
});

async function eye<T extends ArgsDef>(cmd: CommandDef<T>, ...args: string[]): Promise<{ err: string; code: number }> {
  const err: string[] = [];
  vi.spyOn(process.stderr, "write").mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
  await runCommand(cmd, { rawArgs: args });
  return { err: err.join(""), code: Number(process.exitCode ?? 0) };
}

describe("user errors", () => {
  it("unknown size, missing data, bad numbers", async () => {
    expect(await eye(trainCommand, "--size", "huge", "--out", join(TMP, "r1"))).toEqual({ err: expect.stringMatching(/^train: expected --size one of tiny, mini, base, large, got "huge"; try `pnpm eye train --size tiny`\n$/), code: 1 });
    expect(await eye(trainCommand, "--size", "mini", "--out", join(TMP, "r2"))).toMatchObject({ err: expect.stringMatching(/expected --data <jsonl\|dir> for --size mini.*pnpm eye prepare/), code: 1 });
    expect(await eye(trainCommand, "--size", "tiny", "--steps", "ten", "--out", join(TMP, "r3"))).toMatchObject({ err: expect.stringMatching(/expected a number for --steps, got "ten"/), code: 1 });
    expect(await eye(trainCommand, "--size", "mini", "--data", join(TMP, "nope.jsonl"), "--out", join(TMP, "r4"))).toMatchObject({ err: expect.stringMatching(/expected a dataset .* at .*nope\.jsonl.*eye prepare/), code: 1 });
    expect(["r1", "r2", "r3", "r4"].some((r) => existsSync(join(TMP, r, "latest.json")))).toBe(false);
  });

  it("missing runs and checkpoints name the command that makes one", async () => {
    expect(await eye(trainCommand, "--resume", "--out", join(TMP, "none"))).toMatchObject({ err: expect.stringMatching(/expected .*latest\.json.*pnpm eye train --size tiny/), code: 1 });
    expect(await eye(captionCommand, "--ckpt", join(TMP, "none"), "a.png")).toMatchObject({ err: expect.stringMatching(/^caption: .*expected a run directory.*pnpm eye train/), code: 1 });
    expect(await eye(evalCommand, "--ckpt", join(TMP, "none"), "--data", TMP)).toMatchObject({ err: expect.stringMatching(/^eval: .*expected a run directory/), code: 1 });
    expect(await eye(retrainCommand, "--from", join(TMP, "none"))).toMatchObject({ err: expect.stringMatching(/^retrain: expected --data/), code: 1 });
    expect(await eye(reportCommand, join(TMP, "none"))).toMatchObject({ err: expect.stringMatching(/^report: expected a run directory with log\.jsonl/), code: 1 });
    expect(await eye(captionCommand, "--ckpt", join(TMP, "none"))).toMatchObject({ err: expect.stringMatching(/expected one or more image files/), code: 1 });
    expect(await eye(captionCommand, "--ckpt", join(TMP, "none"), "--beam", "2", "--top-p", "0.9", "a.png")).toMatchObject({ err: expect.stringMatching(/at most one of --beam and --top-p/), code: 1 });
  });

  it("picks a fresh default run directory instead of overwriting one", () => {
    const old = process.env.INIT_CWD;
    process.env.INIT_CWD = TMP;
    try {
      expect(freshRunDir("tiny")).toBe(join(TMP, "runs", "tiny"));
      mkdirSync(join(TMP, "runs", "tiny"), { recursive: true });
      expect(freshRunDir("tiny")).toBe(join(TMP, "runs", "tiny-2"));
      mkdirSync(join(TMP, "runs", "tiny-2"));
      expect(freshRunDir("tiny")).toBe(join(TMP, "runs", "tiny-3"));
      expect(latestRunDir("tiny")).toBe(join(TMP, "runs", "tiny-2"));
    } finally {
      process.env.INIT_CWD = old;
    }
  });

  it("--help states the defaults the options actually use", () => {
    const { tiny, mini } = SIZE_DEFAULTS;
    const batch = tiny.batchSize === mini.batchSize ? `default ${mini.batchSize}` : `tiny ${tiny.batchSize}, others ${mini.batchSize}`;
    expect(TRAIN_FLAGS["batch-size"].description).toBe(`images per step (${batch})`);
    expect(TRAIN_FLAGS.steps.description).toContain(`tiny ${tiny.steps}`);
    expect(TRAIN_FLAGS.epochs.description).toContain(`default ${mini.epochs}`);
    expect([tiny.batchSize, tiny.steps, mini.batchSize, mini.epochs].every((v) => typeof v === "number")).toBe(true);
  });
});
