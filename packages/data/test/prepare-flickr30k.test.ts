// `prepare flickr30k`: results_20130124.token and the Kaggle results.csv (leading spaces, a
// caption containing "|", the known malformed row), the seed-free default split rule, Karpathy
// splits through --split-file, and the input errors.
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ruleSplits } from "../src/prepare/flickr30k.js";
import { prepare } from "../src/prepare/prepare.js";
import { jpeg, listFiles, put, removeDir, tempDir } from "./prepare-fixtures.js";

let src: string;
let out: string;
beforeEach(async () => {
  src = await tempDir();
  out = join(src, "f30k.jsonl");
});
afterEach(() => removeDir(src));

const CSV = [
  "image_name| comment_number| comment",
  "1000092795.jpg| 0| Two young guys with shaggy hair look at their hands while hanging out in the yard .",
  "1000092795.jpg| 1|  Two young , White males are outside near many bushes .",
  "10002456.jpg| 0| Several men in hard hats | one with a pipe .",
  "2199200615.jpg| 4 A dog runs across the grass .",
  "2199200615.jpg| x| Not a number .",
  "2199200615.jpg| 0| A dog runs .",
].join("\n");

async function images(...names: string[]) {
  for (const n of names) await jpeg(join(src, "flickr30k_images/flickr30k_images", n));
}

describe("prepare flickr30k", () => {
  it("reads the Kaggle results.csv layout with its quirks", async () => {
    await put(join(src, "flickr30k_images/results.csv"), CSV);
    await images("1000092795.jpg", "10002456.jpg", "2199200615.jpg");
    const { records, summary } = await prepare({ format: "flickr30k", src, out });
    expect(records.map((r) => [r.id, r.captions])).toEqual([
      ["1000092795", ["Two young guys with shaggy hair look at their hands while hanging out in the yard .", "Two young , White males are outside near many bushes ."]],
      ["10002456", ["Several men in hard hats | one with a pipe ."]],
      ["2199200615", ["A dog runs ."]],
    ]);
    expect(records[0]!.image).toBe("flickr30k_images/flickr30k_images/1000092795.jpg");
    expect(summary.skipped.map((s) => [s.reason, s.line])).toEqual([
      ["malformed row", 5],
      ["malformed row", 6],
    ]);
    expect(summary.notes[0]).toMatch(/no official split; .*i % 31 == 29/);
  });

  it("reads results_20130124.token and takes Karpathy splits from --split-file", async () => {
    await put(join(src, "results_20130124.token"), "1.jpg#0\tOne .\n2.jpg#0\tTwo .\n3.jpg#0\tThree .\n4.jpg#0\tFour .\n");
    await put(join(src, "dataset_flickr30k.json"), {
      dataset: "flickr30k",
      images: [
        { filename: "1.jpg", split: "restval", sentences: [] },
        { filename: "2.jpg", split: "val", sentences: [] },
        { filename: "3.jpg", split: "test", sentences: [] },
      ],
    });
    for (const n of ["1.jpg", "2.jpg", "3.jpg", "4.jpg"]) await jpeg(join(src, "flickr30k-images", n));
    const { records, summary } = await prepare({ format: "flickr30k", src, out, splitFile: join(src, "dataset_flickr30k.json") });
    expect(records.map((r) => [r.id, r.split])).toEqual([
      ["1", "train"],
      ["2", "val"],
      ["3", "test"],
    ]);
    expect(summary.skipped).toMatchObject([{ entry: "4.jpg", reason: "not in any split file", line: 4 }]);
  });

  it("default split rule: deterministic, independent of input order, about 1/31 each to val and test", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.stringMatching(/^[0-9]{1,8}\.jpg$/), { maxLength: 200 }), (names) => {
        const a = ruleSplits(names);
        const b = ruleSplits([...names].reverse());
        expect([...a].sort()).toEqual([...b].sort());
        const count = (s: string) => [...a.values()].filter((x) => x === s).length;
        expect(count("val")).toBe(Math.floor((names.length + 1) / 31));
        expect(count("test")).toBe(Math.floor(names.length / 31));
      }),
    );
    const full = ruleSplits(Array.from({ length: 31783 }, (_, i) => `${1000000 + i}.jpg`));
    expect([...full.values()].filter((s) => s === "test").length).toBe(1025);
  });

  const unusable: [string, string, string | Buffer, RegExp][] = [
    ["an empty results.csv", "results.csv", "", /results\.csv, got an empty file/],
    ["a token file without tabs", "results_20130124.token", "1.jpg#0 One .\n", /expected a Flickr30k captions file .* in .*results_20130124\.token, got a file without tabs/],
    ["a binary file", "results.csv", Buffer.from([0x1f, 0x8b, 0x08, 0x00]), /got a binary file/],
  ];
  it.each(unusable)("fails on %s and writes nothing", async (_, name, content, message) => {
    await put(join(src, name), content);
    await images("1.jpg");
    const before = await listFiles(src);
    await expect(prepare({ format: "flickr30k", src, out })).rejects.toThrow(message);
    expect(await listFiles(src)).toEqual(before);
  });

  it("fails when no captions file is found or the split file is not Karpathy's", async () => {
    await images("1.jpg");
    await expect(prepare({ format: "flickr30k", src, out })).rejects.toThrow(/expected results_20130124\.token or results\.csv in .*found neither; pass --captions/);
    await put(join(src, "results.csv"), CSV);
    await put(join(src, "split.json"), [{ filename: "1.jpg" }]);
    await expect(prepare({ format: "flickr30k", src, out, splitFile: join(src, "split.json") })).rejects.toThrow(/expected a Karpathy split file .* in .*split\.json, got a JSON list/);
  });
});
