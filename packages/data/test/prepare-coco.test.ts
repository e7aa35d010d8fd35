// `prepare coco`: the standard download layout, captions cleaned, train/val splits, relative
// image paths, the summary file, and every skip reason and input error COCO can produce.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PrepareError } from "../src/prepare/input.js";
import { prepare } from "../src/prepare/prepare.js";
import { readDataset, resolveImage } from "../src/prepare/records.js";
import type { PrepareSummary } from "../src/prepare/summary.js";
import { corrupt, jpeg, listFiles, png, put, removeDir, tempDir } from "./prepare-fixtures.js";

let src: string;
let out: string;
beforeEach(async () => {
  src = await tempDir();
  out = join(src, "out", "coco.jsonl");
});
afterEach(() => removeDir(src));

const captions = (images: { id: number; file_name: string }[], annotations: { image_id: number; caption: string; id?: number }[]) => ({
  info: {},
  licenses: [],
  images: images.map((im) => ({ ...im, height: 4, width: 4 })),
  annotations,
});

async function standard() {
  await put(
    join(src, "annotations/captions_train2017.json"),
    captions(
      [
        { id: 9, file_name: "000000000009.jpg" },
        { id: 25, file_name: "000000000025.jpg" },
        { id: 30, file_name: "000000000030.jpg" }, // missing file
        { id: 34, file_name: "000000000034.jpg" }, // corrupt
        { id: 36, file_name: "000000000036.jpg" }, // no annotations
      ],
      [
        { id: 1, image_id: 9, caption: "  A plate\twith   food.\n" },
        { id: 2, image_id: 9, caption: "Some food." },
        { id: 3, image_id: 25, caption: "A giraffe." },
        { id: 4, image_id: 30, caption: "Lost." },
        { id: 5, image_id: 34, caption: "Broken." },
        { id: 6, image_id: 77, caption: "Nobody's image." },
        { id: 7, image_id: 25, caption: "   " },
      ],
    ),
  );
  await put(join(src, "annotations/captions_val2017.json"), captions([{ id: 139, file_name: "000000000139.png" }], [{ image_id: 139, caption: "A room." }]));
  await jpeg(join(src, "train2017/000000000009.jpg"));
  await jpeg(join(src, "train2017/000000000025.jpg"));
  await corrupt(join(src, "train2017/000000000034.jpg"));
  await jpeg(join(src, "train2017/000000000036.jpg"));
  await png(join(src, "val2017/000000000139.png"));
}

describe("prepare coco", () => {
  it("converts the standard layout, with every skip reported", async () => {
    await standard();
    const { records, summary, summaryFile } = await prepare({ format: "coco", src, out });
    expect(records).toEqual([
      { id: "9", image: "../train2017/000000000009.jpg", captions: ["A plate with food.", "Some food."], split: "train", source: "coco" },
      { id: "25", image: "../train2017/000000000025.jpg", captions: ["A giraffe."], split: "train", source: "coco" },
      { id: "139", image: "../val2017/000000000139.png", captions: ["A room."], split: "val", source: "coco" },
    ]);
    expect(await readDataset(out)).toEqual(records);
    expect(resolveImage(out, records[0]!)).toBe(join(src, "train2017/000000000009.jpg"));
    expect(summary.splits).toEqual({ train: { images: 2, captions: 3 }, val: { images: 1, captions: 1 }, test: { images: 0, captions: 0 } });
    expect(summary.skippedByReason).toEqual({
      "missing image file": 1,
      "unreadable image": 1,
      "no captions": 1,
      "empty caption": 1,
      "annotation for an unknown image": 1,
    });
    expect(summary.skipped.find((s) => s.reason === "annotation for an unknown image")).toMatchObject({ entry: "annotation 6 for image 77", file: join(src, "annotations/captions_train2017.json") });
    expect(summary.notes.join("\n")).toMatch(/no test captions/);
    const onDisk = JSON.parse(await readFile(summaryFile, "utf8")) as PrepareSummary;
    expect(onDisk.skipped.length).toBe(5);
    expect(await listFiles(join(src, "out"))).toEqual(["coco.jsonl", "coco.jsonl.summary.json"]);
  });

  it("with --no-check-images only checks existence", async () => {
    await standard();
    const { summary } = await prepare({ format: "coco", src, out, checkImages: false });
    expect(summary.skippedByReason["unreadable image"]).toBeUndefined();
    expect(summary.total.images).toBe(4);
  });

  it("takes individual files and folders, and a val-only download", async () => {
    await put(join(src, "x/caps.json"), captions([{ id: 1, file_name: "a.jpg" }], [{ image_id: 1, caption: "x" }]));
    await jpeg(join(src, "pics/a.jpg"));
    const { summary } = await prepare({ format: "coco", src, out, valCaptions: join(src, "x/caps.json"), valImages: join(src, "pics") });
    expect(summary.splits.val.images).toBe(1);
    expect(summary.notes.join("\n")).toMatch(/no train captions file found/);
  });

  it("reports bad file names and duplicate image ids", async () => {
    await put(
      join(src, "annotations/captions_val2017.json"),
      captions(
        [
          { id: 1, file_name: "a.jpg" },
          { id: 1, file_name: "b.jpg" },
          { id: 2, file_name: "../escape.jpg" },
        ],
        [{ image_id: 1, caption: "x" }],
      ),
    );
    await jpeg(join(src, "val2017/a.jpg"));
    const { summary } = await prepare({ format: "coco", src, out });
    expect(summary.skippedByReason).toEqual({ "bad file name": 1, "duplicate entry": 1 });
  });

  const unusable: [string, string | Buffer | object, RegExp][] = [
    ["a JSON list", [{ images: [] }], /expected a COCO captions object .* in .*captions_val2017\.json, got a JSON list/],
    ["an empty file", "", /captions_val2017\.json, got an empty file/],
    ["a binary file", Buffer.from([0xff, 0xd8, 0xff, 0x00, 0x10]), /captions_val2017\.json, got a binary file/],
    ["text that is not JSON", "images,annotations\n", /got text that is not JSON/],
    ["an object without annotations", { images: [] }, /got an object with keys images where annotations: /],
    ["a wrong field type", { images: [{ id: "1", file_name: "a.jpg" }], annotations: [] }, /where images\.0\.id: /],
  ];
  it.each(unusable)("fails on %s with one clear error and writes nothing", async (_, content, message) => {
    await put(join(src, "annotations/captions_val2017.json"), content);
    await jpeg(join(src, "val2017/a.jpg"));
    const before = await listFiles(src);
    const err = await prepare({ format: "coco", src, out }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PrepareError);
    expect((err as Error).message).toMatch(message);
    expect(await listFiles(src)).toEqual(before);
  });

  it("fails when no captions file or image folder is found", async () => {
    await expect(prepare({ format: "coco", src, out })).rejects.toThrow(/found neither; pass --captions-train/);
    await put(join(src, "annotations/captions_train2017.json"), captions([], []));
    await expect(prepare({ format: "coco", src, out })).rejects.toThrow(/COCO train2017 image folder .* does not exist; pass --images-train/);
  });
});
