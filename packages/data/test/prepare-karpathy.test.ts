// `prepare karpathy`: dataset_{coco,flickr8k}.json with filepath, restval → train, cocoid or
// the file name stem as id, raw captions cleaned, skips, and the input errors.
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { prepare } from "../src/prepare/prepare.js";
import { jpeg, listFiles, put, removeDir, tempDir } from "./prepare-fixtures.js";

let src: string;
let out: string;
beforeEach(async () => {
  src = await tempDir();
  out = join(src, "k.jsonl");
});
afterEach(() => removeDir(src));

const s = (raw: string) => ({ raw, tokens: raw.split(" "), imgid: 0, sentid: 0 });

describe("prepare karpathy", () => {
  it("converts dataset_coco.json with filepath and all four splits", async () => {
    const json = await put(join(src, "karpathy/dataset_coco.json"), {
      dataset: "coco",
      images: [
        { filepath: "val2014", filename: "COCO_val2014_000000391895.jpg", imgid: 0, split: "test", cocoid: 391895, sentences: [s("A man  riding a bike ."), s("  ")] },
        { filepath: "train2014", filename: "COCO_train2014_000000057870.jpg", imgid: 1, split: "restval", cocoid: 57870, sentences: [s("A restaurant .")] },
        { filepath: "train2014", filename: "COCO_train2014_000000000009.jpg", imgid: 2, split: "train", cocoid: 9, sentences: [s("Food .")] },
        { filepath: "val2014", filename: "COCO_val2014_000000000042.jpg", imgid: 3, split: "val", cocoid: 42, sentences: [s("Missing .")] },
        { filepath: "val2014", filename: "COCO_val2014_000000000043.jpg", imgid: 4, split: "val", cocoid: 43, sentences: [] },
        { filepath: "..", filename: "x.jpg", imgid: 5, split: "val", cocoid: 44, sentences: [s("Escape .")] },
      ],
    });
    for (const f of ["val2014/COCO_val2014_000000391895.jpg", "train2014/COCO_train2014_000000057870.jpg", "train2014/COCO_train2014_000000000009.jpg", "val2014/COCO_val2014_000000000043.jpg"])
      await jpeg(join(src, "coco", f));
    const { records, summary } = await prepare({ format: "karpathy", src: json, images: join(src, "coco"), out });
    expect(records).toEqual([
      { id: "391895", image: "coco/val2014/COCO_val2014_000000391895.jpg", captions: ["A man riding a bike ."], split: "test", source: "coco" },
      { id: "57870", image: "coco/train2014/COCO_train2014_000000057870.jpg", captions: ["A restaurant ."], split: "train", source: "coco" },
      { id: "9", image: "coco/train2014/COCO_train2014_000000000009.jpg", captions: ["Food ."], split: "train", source: "coco" },
    ]);
    expect(summary.skippedByReason).toEqual({ "missing image file": 1, "no captions": 1, "empty caption": 1, "bad file name": 1 });
    expect(summary.splits).toEqual({ train: { images: 2, captions: 2 }, val: { images: 0, captions: 0 }, test: { images: 1, captions: 1 } });
  });

  it("uses the file name stem as id without cocoid, and the JSON's folder as the default image folder", async () => {
    const json = await put(join(src, "dataset_flickr8k.json"), {
      dataset: "flickr8k",
      images: [{ filename: "1000268201_693b08cb0e.jpg", imgid: 0, split: "train", sentences: [s("A child .")] }],
    });
    await jpeg(join(src, "1000268201_693b08cb0e.jpg"));
    const { records } = await prepare({ format: "karpathy", src: json, out });
    expect(records).toEqual([{ id: "1000268201_693b08cb0e", image: "1000268201_693b08cb0e.jpg", captions: ["A child ."], split: "train", source: "flickr8k" }]);
  });

  const unusable: [string, string | Buffer | object, RegExp][] = [
    ["a JSON list", [], /expected a Karpathy split file .* got a JSON list/],
    ["an unknown dataset", { dataset: "imagenet", images: [] }, /got an object with keys dataset, images where dataset: /],
    ["an unknown split", { dataset: "coco", images: [{ filename: "a.jpg", split: "dev", sentences: [] }] }, /where images\.0\.split: /],
    ["an empty file", "", /got an empty file/],
    ["a binary file", Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00]), /got a binary file/],
  ];
  it.each(unusable)("fails on %s and writes nothing", async (_, content, message) => {
    const json = await put(join(src, "dataset_coco.json"), content);
    const before = await listFiles(src);
    await expect(prepare({ format: "karpathy", src: json, out })).rejects.toThrow(message);
    expect(await listFiles(src)).toEqual(before);
  });

  it("fails when --src is a folder", async () => {
    await expect(prepare({ format: "karpathy", src, out })).rejects.toThrow(/expected --src to be a dataset_\*\.json file/);
  });
});
