// The pretrained sizes end to end on real-shaped checkpoints with random weights (no download
// works here): a hub cache in Python's layout is made by hand, offline, holding distilgpt2 /
// gpt2 and openai/clip-vit-{base-patch16,large-patch14} as the models package writes them;
// `train` runs a step (feature extraction, caption + contrastive passes, AdamW, eval,
// checkpoint) and the checkpoint captions an image. mini always; base and large (minutes)
// with EYE_REAL_SIZES=all.
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { init } from "@llms-eye/tensor";
import { REAL_REPO_IDS, type RealModelName, cachedRandomCheckpoint } from "@llms-eye/models";
import { generateShapes } from "@llms-eye/data";
import { captionImages, readRunLogs, train } from "../src/index.js";

let root: string;
let hub: string;
let data: string;

/** models--ORG--NAME/{refs/main, snapshots/<rev>/{config.json, model.safetensors}} pointing at a random checkpoint. */
async function cacheModel(name: RealModelName): Promise<void> {
  const ckpt = await cachedRandomCheckpoint(name, join(root, "weights"));
  const repo = join(hub, `models--${REAL_REPO_IDS[name].replace("/", "--")}`);
  const rev = "0123456789abcdef0123456789abcdef01234567";
  await mkdir(join(repo, "refs"), { recursive: true });
  await mkdir(join(repo, "snapshots", rev), { recursive: true });
  await writeFile(join(repo, "refs", "main"), rev);
  for (const f of ["config.json", "model.safetensors"]) {
    const link = join(repo, "snapshots", rev, f);
    if (!existsSync(link)) await symlink(join(ckpt.dir, f), link); // gpt2 serves both base and large
  }
}

beforeAll(async () => {
  await init();
  root = await mkdtemp(join(tmpdir(), "eye-sizes-"));
  hub = join(root, "hub");
  process.env.EYE_CACHE = join(root, "features");
  data = join(root, "shapes");
  const s = await generateShapes({ out: data, n: 10, seed: 5, splits: { val: 0.2, test: 0.2 } });
  expect(s.splits.val).toBeGreaterThan(0);
}, 60_000);
afterAll(async () => rm(root, { recursive: true, force: true }));

const SIZES: [string, RealModelName[]][] = [
  ["mini", ["distilgpt2", "clip-vit-base-patch16"]],
  ["base", ["gpt2", "clip-vit-base-patch16"]],
  ["large", ["gpt2", "clip-vit-large-patch14"]],
];

describe.each(SIZES)("%s", (size, models) => {
  const run = size === "mini" || process.env.EYE_REAL_SIZES === "all";
  it.runIf(run)("trains a step and captions an image", async () => {
    for (const m of models) await cacheModel(m);
    const out = join(root, `run-${size}`);
    const r = await train(
      { size, data, out, steps: 1, batchSize: 2, evalEvery: 0, ckptEvery: 0, evalImages: 2, workers: 1 },
      { hub: { cacheDir: hub, offline: true } },
    );
    expect(r).toMatchObject({ step: 1, stopped: false });
    const { steps, evals } = await readRunLogs(out);
    expect(Number.isFinite(steps[0]!.loss)).toBe(true);
    expect(steps[0]!.lm).toBeGreaterThan(8); // random weights: about ln(50258) = 10.8
    expect(evals).toHaveLength(1);
    const [cap] = await captionImages(out, [join(data, "images", "shapes-00000.png")], { maxNewTokens: 4 });
    expect(typeof cap!.caption).toBe("string");
  }, 600_000);
});

describe("weights missing offline", () => {
  it("names the repo and the fix", async () => {
    await expect(
      train({ size: "base", data, out: join(root, "run-missing"), steps: 1 }, { hub: { cacheDir: join(root, "empty-hub"), offline: true } }),
    ).rejects.toThrow(/gpt2/);
  });
});
