// Feature cache: build → reopen → get without extracting again; a changed key recomputes; an
// interrupted build resumes with only the missing ids; broken shards and edited indexes are
// detected; f16 storage round-trips within half precision.
import { mkdtemp, readFile, rm, stat, truncate, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { readSafetensors } from "@llms-eye/models";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type FeatureCacheOptions, FeatureCache, featureCacheDir, featureKeyHash } from "../src/feature-cache.js";
import { f16Bits, fromF16, toF16 } from "../src/feature-shard.js";

const K = 3;
const D = 5;
/** The features of an image: a function of its id, so any run can check what get() returns. */
function feature(id: string): Float32Array {
  const n = Number(id.slice(3));
  return Float32Array.from({ length: K * D }, (_, j) => Math.sin(n * 13.1 + j) * (1 + n));
}
function extractor() {
  const calls: string[][] = [];
  const extract = async (ids: string[]): Promise<Float32Array> => {
    calls.push(ids);
    const out = new Float32Array(ids.length * K * D);
    ids.forEach((id, i) => out.set(feature(id), i * K * D));
    return out;
  };
  return { calls, extract };
}
const ids = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `img${from + i}`);
const expected = (list: string[]) => {
  const out = new Float32Array(list.length * K * D);
  list.forEach((id, i) => out.set(feature(id), i * K * D));
  return out;
};

/** get(), then close the handles it opened. */
async function readAll(cache: FeatureCache, list: string[]): Promise<Float32Array> {
  try {
    return await cache.get(list);
  } finally {
    await cache.close();
  }
}

let root: string;
const key = { model: "openai/clip-vit-base-patch32", layer: -2, pooling: "patch", preprocessing: { size: 224, resample: "bicubic" } };
const open = (o: Partial<FeatureCacheOptions> = {}, warnings: string[] = []) => FeatureCache.open({ dir: root, key, shape: [K, D], warn: (m) => warnings.push(m), ...o });

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "eye-features-"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("FeatureCache", () => {
  it("builds once, then a reopened cache serves identical rows without calling extract", async () => {
    const a = extractor();
    const cache = await open();
    const r = await cache.build([...ids(7), "img3"], a.extract, { shardSize: 3 });
    expect([r, a.calls.map((c) => c.length)]).toEqual([{ computed: 7, shards: 3 }, [3, 3, 1]]);
    await cache.close();
    const b = extractor();
    const again = await open();
    expect([again.size, again.has("img6"), again.has("img7"), again.missing(ids(9))]).toEqual([7, true, false, ["img7", "img8"]]);
    expect(await again.build(ids(7), b.extract)).toEqual({ computed: 0, shards: 0 });
    const want = ["img5", "img0", "img6", "img5", "img2", "img3", "img4"];
    expect(await again.get(want)).toEqual(expected(want));
    expect(b.calls).toEqual([]);
    await expect(again.get(["img1", "nope"])).rejects.toThrow(/got none for 1 \("nope"\); build them first/);
    await again.close();
  });

  it("a changed layer, pooling or preprocessing is another folder and calls extract again", async () => {
    const first = extractor();
    await (await open()).build(ids(4), first.extract);
    const reordered = { preprocessing: { resample: "bicubic", size: 224 }, pooling: "patch", layer: -2, model: key.model };
    expect(featureKeyHash(reordered)).toBe(featureKeyHash(key));
    expect((await open({ key: reordered })).missing(ids(4))).toEqual([]);
    for (const changed of [{ ...key, layer: -1 }, { ...key, pooling: "cls" }, { ...key, preprocessing: { size: 336, resample: "bicubic" } }, { ...key, extra: 1 }]) {
      const x = extractor();
      const c = await open({ key: changed });
      expect(c.dir).not.toBe(join(root, featureKeyHash(key)));
      await c.build(ids(4), x.extract);
      expect(x.calls).toEqual([ids(4)]);
    }
  });

  it("an interrupted build resumes with only the missing ids", async () => {
    let n = 0;
    const failing = async (list: string[]) => {
      if (++n === 3) throw new Error("killed");
      return expected(list);
    };
    await expect((await open()).build(ids(10), failing, { shardSize: 2 })).rejects.toThrow("killed");
    const resumed = await open();
    expect(resumed.missing(ids(10))).toEqual(ids(6, 4));
    const rest = extractor();
    const progress: number[] = [];
    await resumed.build(ids(10), rest.extract, { shardSize: 4, onProgress: (p) => progress.push(p.done) });
    expect([rest.calls, progress]).toEqual([[ids(4, 4), ids(2, 8)], [4, 6]]);
    expect(await readAll(await open(), ids(10))).toEqual(expected(ids(10)));
  });

  it("drops a truncated or missing shard with a warning, never serves it, and rebuilds it", async () => {
    await (await open()).build(ids(6), extractor().extract, { shardSize: 2 });
    const dir = join(root, featureKeyHash(key));
    const shard1 = join(dir, "shard-00001.safetensors");
    await truncate(shard1, (await stat(shard1)).size - 8); // a crash inside the data section
    await unlink(join(dir, "shard-00002.safetensors"));
    const warnings: string[] = [];
    const c = await open({}, warnings);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/dropping .*shard-00001\.safetensors \(2 images\).*data section/);
    expect(warnings[1]).toMatch(/dropping .*shard-00002\.safetensors \(2 images\).*ENOENT/);
    expect(c.missing(ids(6))).toEqual(ids(4, 2));
    await expect(c.get(["img2"])).rejects.toThrow(/got none for 1/);
    const x = extractor();
    await c.build(ids(6), x.extract, { shardSize: 4 });
    expect(x.calls).toEqual([ids(4, 2)]);
    const w2: string[] = [];
    expect(await readAll(await open({}, w2), ids(6))).toEqual(expected(ids(6)));
    expect(w2).toEqual([]);
  });

  it("refuses an index whose key or shape does not match, and bad extract output", async () => {
    const c = await open();
    await c.build(ids(2), extractor().extract);
    const indexFile = join(c.dir, "index.json");
    const index = JSON.parse(await readFile(indexFile, "utf8")) as { key: { layer: number } };
    await expect(open({ shape: [K, D + 1] })).rejects.toThrow(/expected features \[3, 6\] f32 .*got \[3, 5\] f32/);
    await expect(open({ dtype: "f16" })).rejects.toThrow(/got \[3, 5\] f32/);
    index.key.layer = 5;
    await writeFile(indexFile, JSON.stringify(index));
    await expect(open()).rejects.toThrow(/to hold the key .*"layer":-2.*got .*"layer":5.*delete/);
    await writeFile(indexFile, "{");
    await expect(open()).rejects.toThrow(/expected JSON in .*index\.json/);
    await expect(open({ key: { ...key, model: "" } })).rejects.toThrow(/model/);
    await expect(open({ key: { ...key, layer: Number.NaN } })).rejects.toThrow(/layer/);
    const fresh = await open({ key: { ...key, layer: 0 } });
    await expect(fresh.build(ids(3), async () => new Float32Array(7))).rejects.toThrow(/Float32Array\(3 × 3 × 5 = 45\) for 3 ids, got Float32Array\(7\)/);
    await expect(fresh.build(ids(1), async () => new Float32Array(K * D).fill(Number.NaN))).rejects.toThrow(/finite features .*"img0"/);
    expect(fresh.size).toBe(0);
  });

  it("stores f16 shards readable by the models package and returns f32 within half precision", async () => {
    const c = await open({ dtype: "f16" });
    await c.build(ids(5), extractor().extract, { shardSize: 3 });
    const got = await readAll(await open({ dtype: "f16" }), ids(5));
    const want = expected(ids(5));
    want.forEach((v, i) => expect(Math.abs(got[i]! - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11 + 2 ** -25));
    const t = (await readSafetensors(join(c.dir, "shard-00000.safetensors"))).get("features")!;
    expect([t.dtype, t.shape, [...t.data]]).toEqual(["F16", [3, K, D], [...got.subarray(0, 3 * K * D)]]);
  });

  it("converts f32 to f16 with round to nearest even", () => {
    const all = new Uint16Array(65536).map((_, h) => h);
    const back = fromF16(all);
    const wrong = [...all].filter((h) => !Number.isNaN(back[h]) && f16Bits(back[h]!) !== h);
    expect(wrong).toEqual([]);
    expect([f16Bits(65504), f16Bits(65520), f16Bits(1 + 2 ** -11), f16Bits(1 + 3 * 2 ** -11), f16Bits(2 ** -25), f16Bits(3 * 2 ** -26)]).toEqual([0x7bff, 0x7c00, 0x3c00, 0x3c02, 0, 1]);
    fc.assert(
      fc.property(fc.float({ min: -60000, max: 60000, noNaN: true }), (x) => {
        const y = fromF16(toF16(Float32Array.of(x)))[0]!;
        return Math.abs(y - x) <= Math.max(Math.abs(x) * 2 ** -11, 2 ** -25);
      }),
    );
  });

  it("defaults to $EYE_CACHE, else ~/.cache/llms-eye/features", () => {
    const saved = process.env.EYE_CACHE;
    process.env.EYE_CACHE = "/x/y";
    expect(featureCacheDir()).toBe("/x/y");
    delete process.env.EYE_CACHE;
    expect(featureCacheDir()).toMatch(/\.cache\/llms-eye\/features$/);
    if (saved !== undefined) process.env.EYE_CACHE = saved;
  });
});
