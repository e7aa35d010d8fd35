// Image checks (existence, decodable JPEG/PNG/WebP header, bounded concurrency, progress) and the
// printed summary (per split table, first 20 skips, pointer to the summary file).
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkImages } from "../src/prepare/images.js";
import type { Skip } from "../src/prepare/parsed.js";
import { buildSummary, formatSummary } from "../src/prepare/summary.js";
import { corrupt, jpeg, png, put, removeDir, tempDir } from "./prepare-fixtures.js";

let dir: string;
beforeAll(async () => void (dir = await tempDir()));
afterAll(() => removeDir(dir));

describe("checkImages", () => {
  it("accepts JPEG, PNG and WebP; names missing, corrupt and unsupported files", async () => {
    const webp = await put(join(dir, "c.webp"), await sharp({ create: { width: 2, height: 2, channels: 3, background: "#fff" } }).webp().toBuffer());
    const tiff = await put(join(dir, "d.jpg"), await sharp({ create: { width: 2, height: 2, channels: 3, background: "#fff" } }).tiff().toBuffer());
    const files = [await jpeg(join(dir, "a.jpg")), await png(join(dir, "b.png")), webp, tiff, await corrupt(join(dir, "e.jpg")), join(dir, "missing.jpg"), dir];
    const r = await checkImages(files);
    expect(r.slice(0, 3)).toEqual([undefined, undefined, undefined]);
    expect(r[3]).toEqual({ reason: "unreadable image", detail: "format tiff; expected JPEG, PNG or WebP" });
    expect(r[4]).toMatchObject({ reason: "unreadable image" });
    expect(r[5]).toEqual({ reason: "missing image file" });
    expect(r[6]).toMatchObject({ reason: "missing image file", detail: "a folder, not a file" });
    expect(await checkImages(files, { decode: false })).toEqual([undefined, undefined, undefined, undefined, undefined, { reason: "missing image file" }, r[6]]);
  });

  it("reports progress once per file, whatever the concurrency", async () => {
    const files = await Promise.all(Array.from({ length: 25 }, (_, i) => jpeg(join(dir, `p${i}.jpg`))));
    for (const concurrency of [1, 3, 64]) {
      const seen: number[] = [];
      const r = await checkImages(files, { concurrency, onProgress: (done, total) => (expect(total).toBe(25), seen.push(done)) });
      expect(r.every((x) => x === undefined)).toBe(true);
      expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    }
    expect(await checkImages([])).toEqual([]);
  });
});

describe("formatSummary", () => {
  it("prints the split table, the first 20 skips and where the rest are", () => {
    const skipped: Skip[] = Array.from({ length: 23 }, (_, i) => ({ entry: `img${i}.jpg`, reason: i < 3 ? "bad file name" : "missing image file", file: "/d/t.txt", line: i + 1 }));
    const s = buildSummary(
      { format: "flickr8k", source: "flickr8k", out: "/d/f.jsonl", inputs: ["/d/t.txt"], notes: ["a note"], imagesDecoded: false },
      [
        { id: "1", image: "a.jpg", captions: ["x", "y"], split: "train", source: "flickr8k" },
        { id: "2", image: "b.jpg", captions: ["z"], split: "test", source: "flickr8k" },
      ],
      skipped,
    );
    expect(s.splits).toEqual({ train: { images: 1, captions: 2 }, val: { images: 0, captions: 0 }, test: { images: 1, captions: 1 } });
    expect(s.skippedByReason).toEqual({ "missing image file": 20, "bad file name": 3 });
    const text = formatSummary(s);
    expect(text).toContain("  split    images captions\n");
    expect(text).toContain("  total         2        3\n");
    expect(text).toContain("note: a note");
    expect(text).toContain("--no-check-images");
    expect(text).toContain("skipped 23: 20 missing image file, 3 bad file name");
    expect(text).toContain("  bad file name: img0.jpg (/d/t.txt:1)");
    expect(text).toContain("img19.jpg");
    expect(text).not.toContain("img20.jpg");
    expect(text.split("\n").at(-1)).toBe("  … and 3 more, see /d/f.jsonl.summary.json");
  });
});
