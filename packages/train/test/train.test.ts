// The training loop end to end on a small shapes dataset: an interrupted + resumed run equals an
// uninterrupted one (losses and final weights, bit for bit); runs and checkpoints are never
// overwritten; damaged or mismatched checkpoints give one clear error; eval, caption and the
// report work from a run directory, and the report renders in headless Chromium when present.
import { execFileSync } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { init } from "@llms-eye/tensor";
import { generateShapes } from "@llms-eye/data";
import { captionImages, evalRun, readLatest, readRunLogs, resolveTrainOptions, singleObjectGrounding, train, writeReport } from "../src/index.js";

let root: string;
let data: string;
const small = { size: "tiny", batchSize: 8, steps: 6, evalEvery: 0, ckptEvery: 3, evalImages: 8, workers: 1, warmup: 2 };

beforeAll(async () => {
  await init();
  root = await mkdtemp(join(tmpdir(), "eye-train-"));
  process.env.EYE_CACHE = join(root, "cache");
  data = join(root, "shapes");
  await generateShapes({ out: data, n: 60, seed: 3 });
}, 60_000);
afterAll(async () => rm(root, { recursive: true, force: true }));

describe("options", () => {
  it("names the bad flag and the fix", () => {
    expect(() => resolveTrainOptions({ size: "huge" })).toThrow(/expected --size one of tiny, mini, base, large, got "huge"/);
    expect(() => resolveTrainOptions({ size: "mini" })).toThrow(/expected --data <jsonl\|dir> for --size mini.*eye prepare/);
    expect(() => resolveTrainOptions({ size: "tiny", batchSize: 0 })).toThrow(/--batch-size/);
    expect(() => resolveTrainOptions({ size: "tiny", batchSize: 8, accum: 3 })).toThrow(/divisible by --accum/);
    expect(resolveTrainOptions({ size: "tiny" })).toMatchObject({ data: "data/shapes", out: "runs/tiny", batchSize: expect.any(Number) });
  });
});

describe("shapes grounding check", () => {
  it("counts single-object captions naming the right color + shape and nothing else", () => {
    const one = (color: string, shape: string) => ({ objects: [{ color, shape, size: "small", x: 0.5, y: 0.5 }] });
    const metas = [one("red", "circle"), one("blue", "square"), one("green", "triangle"), { objects: [] }, undefined, one("red", "circle")];
    const caps = ["a small red circle", "a blue square and a red circle", "a green square", "a red circle", "a red circle", "there is a red circle in the image"];
    expect(singleObjectGrounding(metas, caps)).toEqual({ images: 4, correct: 2 });
    expect(singleObjectGrounding([undefined], ["x"])).toBeNull();
  });
});

describe("train and resume", () => {
  it("an interrupted run resumed from its checkpoint equals an uninterrupted one", async () => {
    const a = await train({ ...small, data, out: join(root, "a") });
    expect(a).toMatchObject({ step: 6, stopped: false });
    const abort = new AbortController();
    const b1 = await train({ ...small, data, out: join(root, "b") }, { signal: abort.signal, onStep: (r) => r.step === 4 && abort.abort() });
    expect(b1).toMatchObject({ step: 4, stopped: true });
    expect(await readLatest(join(root, "b"))).toMatch(/step-0000004$/);
    const b2 = await train({ size: "tiny", resume: true, out: join(root, "b") });
    expect(b2).toMatchObject({ step: 6, stopped: false });
    const [la, lb] = [await readRunLogs(join(root, "a")), await readRunLogs(join(root, "b"))];
    expect(lb.steps.map((s) => s.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(lb.steps.map((s) => [s.loss, s.lm, s.infoNCE, s.lr])).toEqual(la.steps.map((s) => [s.loss, s.lm, s.infoNCE, s.lr]));
    expect(la.steps[5]!.loss).toBeLessThan(la.steps[0]!.loss);
    const weights = (run: string) => readFile(join(root, run, "checkpoints", "step-0000006", "model.safetensors"));
    expect((await weights("b")).equals(await weights("a"))).toBe(true);
    expect(la.evals.map((e) => e.step)).toEqual([6]);
  }, 240_000);

  it("retrains a finished run's weights on other data with a fresh optimizer", async () => {
    const r = await train({ ...small, steps: 2, ckptEvery: 0, data, out: join(root, "retrain"), from: join(root, "a") });
    expect(r).toMatchObject({ step: 2, stopped: false });
    const [fresh, again] = [await readRunLogs(join(root, "a")), await readRunLogs(join(root, "retrain"))];
    expect(again.steps[0]!.loss).toBeLessThan(fresh.steps[0]!.loss); // it starts from the trained weights
    await expect(train({ ...small, size: "mini", data, out: join(root, "retrain-mini"), from: join(root, "a") })).rejects.toThrow(/expected a mini checkpoint, got a tiny one/);
  }, 120_000);

  it("trains unfrozen vision layers from pixels decoded on the worker pool", async () => {
    const r = await train({ ...small, steps: 2, ckptEvery: 0, unfreezeVision: 1, data, out: join(root, "live") });
    expect(r).toMatchObject({ step: 2, stopped: false });
    const { steps } = await readRunLogs(join(root, "live"));
    expect(steps.map((s) => Number.isFinite(s.loss))).toEqual([true, true]);
    expect(steps.every((s) => s.dataWait >= 0)).toBe(true);
  }, 120_000);

  it("stops with the fix when the loss diverges, before the update", async () => {
    await expect(train({ ...small, steps: 5, ckptEvery: 0, lr: 1e38, projectorLr: 1e38, data, out: join(root, "diverge") })).rejects.toThrow(
      /^train: the loss became (NaN|-?Infinity) \(gradient norm .*\) at step \d; lower --lr \(now 1e\+38\)/,
    );
  }, 60_000);

  it("never overwrites a run, and refuses a checkpoint of another size or a damaged one", async () => {
    await expect(train({ ...small, data, out: join(root, "a") })).rejects.toThrow(/already holds a run.*--resume --out/);
    await expect(train({ size: "mini", resume: true, out: join(root, "a") })).rejects.toThrow(/expected --size tiny to resume/);
    await cp(join(root, "a"), join(root, "c"), { recursive: true });
    await writeFile(join(root, "c", "checkpoints", "step-0000006", "state.json"), "{ broken");
    await expect(train({ size: "tiny", resume: true, out: join(root, "c") })).rejects.toThrow(/damaged/);
    await writeFile(join(root, "c", "checkpoints", "step-0000006", "model.safetensors"), "x");
    await expect(captionImages(join(root, "c"), [join(data, "images", "shapes-00000.png")])).rejects.toThrow(/model\.safetensors/);
    await expect(train({ size: "tiny", resume: true, out: join(root, "none") })).rejects.toThrow(/expected .*latest\.json.*eye train/);
    // the good run is untouched
    expect(existsSync(join(root, "a", "checkpoints", "step-0000006", "state.json"))).toBe(true);
  }, 60_000);
});

describe("eval, caption, report", () => {
  it("scores a split, writes COCO results, captions files", async () => {
    const r = await evalRun(join(root, "a"), data, { split: "test", limit: 6, clip: "none" });
    const preds = JSON.parse(await readFile(r.predictionsFile, "utf8")) as { image_id: string; caption: string }[];
    expect(preds).toHaveLength(6);
    expect(preds.every((p) => typeof p.image_id === "string" && typeof p.caption === "string")).toBe(true);
    for (const v of Object.values(r.summary.metrics)) expect(Number.isFinite(v)).toBe(true);
    expect(r.summary.retrieval.t2i[10]).toBe(1); // 6 images: every one is within the top 10
    for (const k of [1, 5, 10] as const) expect(r.summary.retrieval.i2t[k]).toBeGreaterThanOrEqual(0);
    const caps = await captionImages(join(root, "a"), [join(data, "images", "shapes-00000.png"), join(data, "images", "shapes-00001.png")], { beam: 2 });
    expect(caps.map((c) => c.image)).toEqual([join(data, "images", "shapes-00000.png"), join(data, "images", "shapes-00001.png")]);
    await expect(captionImages(join(root, "a"), [join(root, "nope.png")])).rejects.toThrow(/nope\.png/);
  }, 120_000);

  const chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
  it.skipIf(!chromium)("writes a report whose charts and images render in headless Chromium", async () => {
    const file = await writeReport(join(root, "a"));
    const dom = execFileSync(chromium!, ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000", "--dump-dom", `file://${file}`], {
      encoding: "utf8",
      timeout: 60_000,
      stdio: ["ignore", "pipe", "ignore"],
    });
    expect(dom).toMatch(/data-charts="4"/);
    expect(dom).toMatch(/data-painted-charts="4"/);
    const m = /data-images-loaded="(\d+)" data-images="(\d+)"/.exec(dom);
    expect(m).not.toBeNull();
    expect(Number(m![2])).toBeGreaterThan(0);
    expect(m![1]).toBe(m![2]);
  }, 90_000);
});
