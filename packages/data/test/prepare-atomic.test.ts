// Atomic output of `prepare`: a failing run (bad input, no usable image, a failing write) leaves
// no output and no temporary file, and never clobbers an existing good output and summary.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { writeFilesAtomically } from "../src/prepare/atomic.js";
import { PrepareError } from "../src/prepare/input.js";
import { prepare, type PrepareOptions } from "../src/prepare/prepare.js";
import { jpeg, listFiles, put, removeDir, tempDir } from "./prepare-fixtures.js";

let src: string;
let opts: PrepareOptions;
beforeEach(async () => {
  src = await tempDir();
  opts = { format: "karpathy", src: join(src, "dataset_flickr8k.json"), out: join(src, "out/k.jsonl") };
  await put(opts.src, { dataset: "flickr8k", images: [{ filename: "a.jpg", split: "train", sentences: [{ raw: "A cat ." }] }] });
  await jpeg(join(src, "a.jpg"));
});
afterEach(() => removeDir(src));

const snapshot = async () => Promise.all([readFile(opts.out, "utf8"), readFile(`${opts.out}.summary.json`, "utf8")]);

describe("prepare writes atomically", () => {
  it("a failing run leaves no output and no temp file", async () => {
    await put(opts.src, "[]");
    await expect(prepare(opts)).rejects.toThrow(PrepareError);
    expect(await listFiles(src)).toEqual(["a.jpg", "dataset_flickr8k.json"]);
  });

  it("an existing good output survives a run with bad input", async () => {
    await prepare(opts);
    const before = await snapshot();
    await put(opts.src, Buffer.from([0, 1, 2]));
    await expect(prepare(opts)).rejects.toThrow(/got a binary file/);
    expect(await snapshot()).toEqual(before);
    expect(await listFiles(join(src, "out"))).toEqual(["k.jsonl", "k.jsonl.summary.json"]);
  });

  it("no usable image is an error naming the reasons, not an empty dataset", async () => {
    await prepare(opts);
    const before = await snapshot();
    const err = await prepare({ ...opts, images: join(src, "elsewhere") }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PrepareError);
    expect((err as Error).message).toMatch(/no usable image .* \(skipped 1: 1 missing image file\); check --src\/--images\n {2}missing image file: a\.jpg/);
    expect(await snapshot()).toEqual(before);
  });

  it("a folder where the output or summary should go fails before anything is written", async () => {
    await put(join(src, "out/k.jsonl.summary.json/x"), "");
    await expect(prepare(opts)).rejects.toThrow(/expected --out to name a file .* is a folder/);
    expect(await listFiles(join(src, "out"))).toEqual(["k.jsonl.summary.json/x"]);
  });

  it("rejects an option the format does not read, and an unknown format", async () => {
    await expect(prepare({ ...opts, splitFile: "x.json" })).rejects.toThrow(/--split-file does not apply to karpathy \(it is for flickr30k\); remove it/);
    await expect(prepare({ ...opts, format: "imagenet" as never })).rejects.toThrow(/expected a format among coco, flickr8k, flickr30k, karpathy, got "imagenet"/);
    expect(await listFiles(src)).toEqual(["a.jpg", "dataset_flickr8k.json"]);
  });

  it("writeFilesAtomically removes its temp files when a later write fails", async () => {
    const dir = join(src, "w");
    await put(join(dir, "a.txt"), "old");
    await expect(
      writeFilesAtomically([
        { path: join(dir, "a.txt"), data: "new" },
        { path: join(dir, "missing-folder/b.txt"), data: "x" },
      ]),
    ).rejects.toThrow(/ENOENT/);
    expect(await listFiles(dir)).toEqual(["a.txt"]);
    expect(await readFile(join(dir, "a.txt"), "utf8")).toBe("old");
  });
});
