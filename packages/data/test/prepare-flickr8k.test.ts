// `prepare flickr8k`: the official text files and `Flicker8k_Dataset` folder, dev → val, the
// known `x.jpg.1` bad names, images in no split file, malformed rows and the input errors.
import { mkdir, rename } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { prepare } from "../src/prepare/prepare.js";
import { listFiles, jpeg, put, removeDir, tempDir } from "./prepare-fixtures.js";

let src: string;
let out: string;
beforeEach(async () => {
  src = await tempDir();
  out = join(src, "flickr8k.jsonl");
});
afterEach(() => removeDir(src));
const mkdirp = async (d: string) => (await mkdir(d, { recursive: true }), d);

const TOKENS = [
  "1000268201_693b08cb0e.jpg#0\tA child in a pink dress is climbing up a set of stairs in an entry way .",
  "1000268201_693b08cb0e.jpg#1\t  A girl   going into a wooden building . ",
  "1001773457_577c3a7d70.jpg#0\tA black dog and a spotted dog are fighting",
  "2258277193_586949ec62.jpg.1#0\tThe bad name from the real file .",
  "2258277193_586949ec62.jpg.1#1\tIts second caption .",
  "1002674143_1b742ab4b8.jpg#0\tA little girl covered in paint .",
  "1003163366_44323f5815.jpg#0\tA man lays on a bench .",
  "this line has no tab",
  "1007129816_e794419615.jpg\tno caption number",
  "1012212859_01547e3f17.jpg#0\t   ",
].join("\r\n");

async function layout(tokens = TOKENS) {
  await put(join(src, "Flickr8k.token.txt"), tokens + "\r\n");
  await put(join(src, "Flickr_8k.trainImages.txt"), "1000268201_693b08cb0e.jpg\n1002674143_1b742ab4b8.jpg\n1012212859_01547e3f17.jpg\n");
  await put(join(src, "Flickr_8k.devImages.txt"), "1001773457_577c3a7d70.jpg\n1002674143_1b742ab4b8.jpg\n");
  await put(join(src, "Flickr_8k.testImages.txt"), "1009434119_febe49276a.jpg\n");
  for (const n of ["1000268201_693b08cb0e", "1001773457_577c3a7d70", "1002674143_1b742ab4b8", "1003163366_44323f5815"]) await jpeg(join(src, "Flicker8k_Dataset", `${n}.jpg`));
}

describe("prepare flickr8k", () => {
  it("converts the official layout and reports every skip", async () => {
    await layout();
    const { records, summary } = await prepare({ format: "flickr8k", src, out });
    expect(records).toEqual([
      {
        id: "1000268201_693b08cb0e",
        image: "Flicker8k_Dataset/1000268201_693b08cb0e.jpg",
        captions: ["A child in a pink dress is climbing up a set of stairs in an entry way .", "A girl going into a wooden building ."],
        split: "train",
        source: "flickr8k",
      },
      { id: "1001773457_577c3a7d70", image: "Flicker8k_Dataset/1001773457_577c3a7d70.jpg", captions: ["A black dog and a spotted dog are fighting"], split: "val", source: "flickr8k" },
    ]);
    const reasons = Object.fromEntries(summary.skipped.map((s) => [s.reason === "malformed row" ? `${s.reason} ${s.line}` : s.reason, s]));
    expect(reasons["bad file name"]).toMatchObject({ entry: "2258277193_586949ec62.jpg.1", line: 4, detail: expect.stringMatching(/^2 captions/) });
    expect(reasons["in several split files"]).toMatchObject({ entry: "1002674143_1b742ab4b8.jpg" });
    expect(reasons["not in any split file"]).toMatchObject({ entry: "1003163366_44323f5815.jpg", line: 7 });
    expect(reasons["malformed row 8"]).toMatchObject({ entry: "this line has no tab" });
    expect(reasons["malformed row 9"]).toMatchObject({ detail: expect.stringMatching(/NAME\.jpg#N/) });
    expect(reasons["empty caption"]).toMatchObject({ line: 10 });
    // 1012212859: only an empty caption; 1009434119: in the test split but in no token line.
    expect(summary.skipped.filter((s) => s.reason === "no captions").map((s) => s.entry)).toEqual(["1012212859_01547e3f17.jpg", "1009434119_febe49276a.jpg"]);
    expect(summary.skipped.length).toBe(8);
  });

  it("reports missing image files", async () => {
    await layout("1009434119_febe49276a.jpg#0\tA dog .\n1000268201_693b08cb0e.jpg#0\tA girl .");
    const { summary } = await prepare({ format: "flickr8k", src, out });
    expect(summary.skipped.map((s) => [s.reason, s.entry])).toContainEqual(["missing image file", "1009434119_febe49276a.jpg"]);
  });

  it("finds the files in Flickr8k_text/ and Flickr8k_Dataset/, or where the flags point", async () => {
    await layout();
    const sub = join(src, "unpacked");
    for (const f of ["Flickr8k.token.txt", "Flickr_8k.trainImages.txt", "Flickr_8k.devImages.txt", "Flickr_8k.testImages.txt"])
      await rename(join(src, f), join(await mkdirp(join(sub, "Flickr8k_text")), f));
    await rename(join(src, "Flicker8k_Dataset"), join(sub, "Flickr8k_Dataset"));
    expect((await prepare({ format: "flickr8k", src: sub, out })).summary.total.images).toBe(2);
    const flags = { captions: join(sub, "Flickr8k_text/Flickr8k.token.txt"), splits: join(sub, "Flickr8k_text"), images: join(sub, "Flickr8k_Dataset") };
    expect((await prepare({ format: "flickr8k", src, out, ...flags })).summary.total.images).toBe(2);
  });

  const unusable: [string, string | Buffer, RegExp][] = [
    ["an empty token file", "", /Flickr8k\.token\.txt, got an empty file/],
    ["a token file without tabs", "1000268201_693b08cb0e.jpg#0 A child .\n", /expected a Flickr8k token file \(lines NAME\.jpg#N<TAB>caption\) in .*Flickr8k\.token\.txt, got a file without tabs/],
    ["a binary token file", Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x00, 0x00]), /got a binary file/],
    ["a token file that is not UTF-8", Buffer.from([0x61, 0x09, 0xff, 0xfe, 0x62]), /not UTF-8 text/],
  ];
  it.each(unusable)("fails on %s and writes nothing", async (_, tokens, message) => {
    await layout();
    await put(join(src, "Flickr8k.token.txt"), tokens);
    const before = await listFiles(src);
    await expect(prepare({ format: "flickr8k", src, out })).rejects.toThrow(message);
    expect(await listFiles(src)).toEqual(before);
  });

  it("fails when a split file or the image folder is missing", async () => {
    await layout();
    await put(join(src, "Flickr_8k.devImages.txt"), "");
    await expect(prepare({ format: "flickr8k", src, out })).rejects.toThrow(/Flickr8k val split .* in .*Flickr_8k\.devImages\.txt, got an empty file/);
    await expect(prepare({ format: "flickr8k", src, out, images: join(src, "nope") })).rejects.toThrow(/Flickr8k image folder at .*nope, but it does not exist; pass --images/);
  });
});
