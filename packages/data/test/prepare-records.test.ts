// The unified JSON Lines format: round trip (property), every line validated with file:line in
// the error, duplicate ids, relative image paths, atomic writes, and reading 100k lines fast.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DatasetError, SOURCES, SPLITS, readDataset, resolveImage, writeDataset, type DatasetRecord } from "../src/prepare/records.js";
import { listFiles, removeDir, tempDir } from "./prepare-fixtures.js";

let dir: string;
beforeAll(async () => void (dir = await tempDir()));
afterAll(() => removeDir(dir));

const record = (i: number, over: Partial<DatasetRecord> = {}): DatasetRecord => ({
  id: String(i),
  image: `images/${i}.jpg`,
  captions: [`a caption number ${i}`, "another one"],
  split: SPLITS[i % 3]!,
  source: "coco",
  ...over,
});

const arbRecord = fc.record({
  id: fc.string({ minLength: 1 }),
  image: fc.string({ minLength: 1 }),
  captions: fc.array(fc.string({ minLength: 1 }), { minLength: 1, maxLength: 4 }),
  split: fc.constantFrom(...SPLITS),
  source: fc.constantFrom(...SOURCES),
});

describe("readDataset / writeDataset", () => {
  it("round-trips any valid records (unicode, quotes, newlines inside strings)", async () => {
    const file = join(dir, "prop.jsonl");
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(arbRecord, { minLength: 1, maxLength: 8, selector: (r) => r.id }), async (records) => {
        await writeDataset(file, records);
        expect(await readDataset(file)).toEqual(records);
      }),
      { numRuns: 40 },
    );
  });

  it("ignores blank lines and CRLF line endings", async () => {
    const file = join(dir, "crlf.jsonl");
    await writeFile(file, `${JSON.stringify(record(1))}\r\n\r\n${JSON.stringify(record(2))}\r\n`);
    expect((await readDataset(file)).map((r) => r.id)).toEqual(["1", "2"]);
  });

  const bad: [string, string, RegExp][] = [
    ["invalid JSON", `${JSON.stringify(record(1))}\n{"id": "2",`, /bad\.jsonl:2, got invalid JSON/],
    ["a missing field", JSON.stringify({ id: "1", image: "a.jpg", split: "train", source: "coco" }), /bad\.jsonl:1, got captions: /],
    ["an unknown split", JSON.stringify(record(1, { split: "dev" as never })), /bad\.jsonl:1, got split: /],
    ["no captions", JSON.stringify(record(1, { captions: [] })), /got captions: /],
    ["an extra key", JSON.stringify({ ...record(1), extra: 1 }), /bad\.jsonl:1/],
    ["a JSON list", "[1, 2]", /got record: /],
    ["a duplicate id", `${JSON.stringify(record(7))}\n${JSON.stringify(record(7))}\n`, /id "7" appears twice .* lines 1 and 2/],
    ["an empty file", "\n\n", /at least one record .* got an empty file/],
    ["a binary file", "\u0000\u0001\u0002", /got a binary file/],
  ];
  it.each(bad)("rejects %s naming file:line", async (_, text, message) => {
    const file = join(dir, "bad.jsonl");
    await writeFile(file, text);
    await expect(readDataset(file)).rejects.toThrow(DatasetError);
    await expect(readDataset(file)).rejects.toThrow(message);
  });

  it("names a missing file", async () => {
    await expect(readDataset(join(dir, "nope.jsonl"))).rejects.toThrow(/cannot read .*nope\.jsonl/);
  });

  it("does not clobber an existing file when the records are invalid, and leaves no temp file", async () => {
    const sub = join(dir, "atomic");
    const file = join(sub, "good.jsonl");
    await import("node:fs/promises").then((f) => f.mkdir(sub));
    await writeDataset(file, [record(1)]);
    const before = await readFile(file, "utf8");
    await expect(writeDataset(file, [record(2), record(2)])).rejects.toThrow(/appears twice/);
    await expect(writeDataset(file, [{ ...record(3), split: "nope" } as never])).rejects.toThrow(/record 0 .* not valid/);
    expect(await readFile(file, "utf8")).toBe(before);
    expect(await listFiles(sub)).toEqual(["good.jsonl"]);
  });

  it("reads 100k lines in well under two seconds", async () => {
    const file = join(dir, "big.jsonl");
    const lines = Array.from({ length: 100_000 }, (_, i) => JSON.stringify(record(i))).join("\n");
    await writeFile(file, lines);
    const t0 = performance.now();
    const records = await readDataset(file);
    const ms = performance.now() - t0;
    expect(records.length).toBe(100_000);
    console.log(`readDataset: 100k lines in ${ms.toFixed(0)} ms`);
    expect(ms).toBeLessThan(2000);
  });
});

describe("resolveImage", () => {
  it("resolves relative paths against the dataset file's folder and keeps absolute ones", () => {
    expect(resolveImage("/data/coco/coco.jsonl", { image: "train2017/1.jpg" })).toBe("/data/coco/train2017/1.jpg");
    expect(resolveImage("/data/coco/coco.jsonl", { image: "../flickr/a.jpg" })).toBe("/data/flickr/a.jpg");
    expect(resolveImage("/data/coco/coco.jsonl", { image: "/abs/a.jpg" })).toBe("/abs/a.jpg");
  });
});
