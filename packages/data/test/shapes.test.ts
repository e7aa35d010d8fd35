// The shapes dataset: determinism, captions that name every object and agree with the geometry,
// split counts, image size and visible object colors, and clear errors for bad options.
import { afterAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import sharp from "sharp";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { captionScene, relation, RELATIONS } from "../src/shapes/captions.js";
import { assignSplits, generateShapes, objectCount, shapesLine, type ShapesLine } from "../src/shapes/generate.js";
import { isShapesDir, resolveSpec, ShapesError } from "../src/shapes/options.js";
import { centroid } from "../src/shapes/render.js";
import { COLORS, rngFor, sampleScene, type SceneObject } from "../src/shapes/scene.js";

const dirs: string[] = [];
const tmp = async () => {
  dirs.push(await mkdtemp(join(tmpdir(), "eye-shapes-")));
  return dirs.at(-1)!;
};
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
const readLines = async (dir: string): Promise<ShapesLine[]> =>
  (await readFile(join(dir, "shapes.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l) as ShapesLine);

/** Scenes drawn without rendering: (seed, index, side). */
const sceneArb = fc.record({ seed: fc.nat(), index: fc.nat({ max: 100_000 }), side: fc.integer({ min: 32, max: 128 }) });
const sceneOf = ({ seed, index, side }: { seed: number; index: number; side: number }) => sampleScene(seed, index, side, objectCount(index));

const OBJ = String.raw`(?:an?|the) (?:(?:small|large) )?(\w+) (circle|square|triangle)`;
const RELATION_RE = new RegExp(`${OBJ} (${RELATIONS.join("|")}) ${OBJ}`, "g");

describe("shapes scenes and captions", () => {
  it("places 1–3 distinct objects inside the image without overlapping boxes", () => {
    fc.assert(
      fc.property(sceneArb, (arb) => {
        const scene = sceneOf(arb);
        expect(scene.objects).toHaveLength(objectCount(arb.index));
        const names = new Set(scene.objects.map((o) => `${o.color} ${o.shape}`));
        expect(names.size).toBe(scene.objects.length);
        for (const [i, a] of scene.objects.entries()) {
          expect(a.cx - a.extent / 2).toBeGreaterThanOrEqual(1);
          expect(a.cy + a.extent / 2).toBeLessThanOrEqual(arb.side - 1);
          for (const b of scene.objects.slice(i + 1)) {
            const apart = Math.abs(a.cx - b.cx) * 2 >= a.extent + b.extent || Math.abs(a.cy - b.cy) * 2 >= a.extent + b.extent;
            expect(apart).toBe(true);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it("gives 5 distinct lowercase captions that name every object's color and shape", () => {
    fc.assert(
      fc.property(sceneArb, (arb) => {
        const scene = sceneOf(arb);
        const captions = captionScene(scene, rngFor(arb.seed, arb.index, 1));
        const line = shapesLine(scene, "x", "train", captions);
        expect(new Set(captions).size).toBe(5);
        for (const c of captions) {
          expect(c).toBe(c.toLowerCase());
          expect(c).not.toMatch(/[.\s]$/);
          for (const o of line.meta.objects) expect(c).toContain(`${o.color} ${o.shape}`);
        }
        expect(captions.some((c) => /\b(small|large)\b/.test(c))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("uses relation words that agree with the object centres (dominant axis)", () => {
    let checked = 0;
    fc.assert(
      fc.property(sceneArb, (arb) => {
        const scene = sceneOf(arb);
        const find = (color: string, shape: string): SceneObject => scene.objects.find((o) => o.color === color && o.shape === shape)!;
        for (const c of captionScene(scene, rngFor(arb.seed, arb.index, 1))) {
          for (const m of c.matchAll(RELATION_RE)) {
            const a = find(m[1]!, m[2]!);
            const b = find(m[4]!, m[5]!);
            const [dx, dy] = [b.cx - a.cx, b.cy - a.cy];
            const expected = { "to the left of": dx > 0 && Math.abs(dx) >= Math.abs(dy), "to the right of": dx < 0 && Math.abs(dx) >= Math.abs(dy), above: dy > 0 && Math.abs(dy) > Math.abs(dx), below: dy < 0 && Math.abs(dy) > Math.abs(dx) };
            expect(expected[m[3] as keyof typeof expected], `${c} at ${JSON.stringify(scene.objects)}`).toBe(true);
            expect(relation(a, b)).toBe(m[3]);
            checked++;
          }
          if (c.startsWith("from left to right: ")) {
            const order = [...c.matchAll(new RegExp(OBJ, "g"))].map((m) => find(m[1]!, m[2]!).cx);
            expect(order).toEqual([...order].sort((p, q) => p - q));
          }
        }
        if (scene.objects.length > 1) expect(captionScene(scene, rngFor(arb.seed, arb.index, 1)).some((c) => c.match(RELATION_RE))).toBe(true);
      }),
      { numRuns: 300 },
    );
    expect(checked).toBeGreaterThan(100);
  });

  it("splits every object count in the same proportions", () => {
    const spec = resolveSpec({ n: 600, seed: 5 });
    const splits = assignSplits(spec);
    const count = (s: string, k?: number) => splits.filter((x, i) => x === s && (k === undefined || objectCount(i) === k)).length;
    expect([count("train"), count("val"), count("test")]).toEqual([510, 30, 60]);
    for (const k of [1, 2, 3]) expect([count("train", k), count("val", k), count("test", k)]).toEqual([170, 10, 20]);
    expect(assignSplits(resolveSpec({ n: 600, seed: 6 }))).not.toEqual(splits);
  });
});

describe("generateShapes", () => {
  it("is deterministic: same seed, same JSONL and PNG bytes; another seed differs", async () => {
    const [a, b, c] = [await tmp(), await tmp(), await tmp()];
    const summary = await generateShapes({ out: a, n: 24, seed: 7 });
    await generateShapes({ out: b, n: 24, seed: 7, concurrency: 3 });
    await generateShapes({ out: c, n: 24, seed: 8 });
    expect(await readFile(join(a, "shapes.jsonl"), "utf8")).toBe(await readFile(join(b, "shapes.jsonl"), "utf8"));
    expect(await readFile(join(a, "shapes.jsonl"), "utf8")).not.toBe(await readFile(join(c, "shapes.jsonl"), "utf8"));
    const images = (await readdir(join(a, "images"))).sort();
    expect(images).toHaveLength(24);
    for (const f of images) expect((await readFile(join(a, "images", f))).equals(await readFile(join(b, "images", f)))).toBe(true);
    expect(summary.splits.train + summary.splits.val + summary.splits.test).toBe(24);
    const lines = await readLines(a);
    expect(lines.map((l) => l.split).filter((s) => s === "test")).toHaveLength(summary.splits.test);
    expect(await isShapesDir(a, { n: 24, seed: 7 })).toBe(true);
    expect(await isShapesDir(a, { n: 24, seed: 8 })).toBe(false);
  });

  it("writes images of the requested size whose objects show their colors", async () => {
    const out = await tmp();
    for (const size of [32, 48, 64]) {
      await generateShapes({ out, n: 9, seed: size, size, force: true });
      const lines = await readLines(out);
      expect(lines).toHaveLength(9);
      for (const [i, line] of lines.entries()) {
        expect(line.source).toBe("shapes");
        expect(line.captions).toHaveLength(5);
        const { data, info } = await sharp(join(out, line.image)).raw().toBuffer({ resolveWithObject: true });
        expect([info.width, info.height, info.channels]).toEqual([size, size, 3]);
        const scene = sampleScene(size, i, size, objectCount(i));
        expect(line.meta.objects).toEqual(scene.objects.map((o) => ({ shape: o.shape, color: o.color, size: o.size, x: o.cx / size, y: o.cy / size })));
        for (const o of scene.objects) {
          const [x, y] = centroid(o).map(Math.floor) as [number, number];
          const p = (y * size + x) * 3;
          const got = [data[p], data[p + 1], data[p + 2]];
          COLORS[o.color].forEach((v, ch) => expect(Math.abs(got[ch]! - v), `${line.id} ${o.color} ${o.shape} at ${x},${y}: ${got}`).toBeLessThanOrEqual(2));
        }
      }
      expect(await readdir(join(out, "images"))).toHaveLength(9); // another run's images are cleared
    }
  });

  it("rejects bad options with one clear error and writes nothing", async () => {
    const out = join(await tmp(), "never");
    const cases: [object, RegExp][] = [
      [{ n: 0 }, /expected a positive integer for n, got 0/],
      [{ n: -3 }, /expected a positive integer for n, got -3/],
      [{ n: 2.5 }, /expected a positive integer for n, got 2.5/],
      [{ size: 31 }, /expected an image side of at least 32 px for size, got 31/],
      [{ seed: -1 }, /expected an integer >= 0 for seed, got -1/],
      [{ splits: { val: 0.5, test: 0.5 } }, /val \+ test below 1/],
      [{ concurrency: 0 }, /expected a positive integer for concurrency, got 0/],
    ];
    for (const [options, message] of cases) {
      await expect(generateShapes({ out, ...options })).rejects.toThrow(message);
      await expect(generateShapes({ out, ...options })).rejects.toBeInstanceOf(ShapesError);
    }
    expect(existsSync(out)).toBe(false);
  });

  it("refuses a non-empty folder that is not the same shapes dataset unless forced", async () => {
    const foreign = await tmp();
    await writeFile(join(foreign, "notes.txt"), "mine");
    await expect(generateShapes({ out: foreign, n: 3 })).rejects.toThrow(/holds files that are not a shapes dataset.*--force/);
    expect(await readdir(foreign)).toEqual(["notes.txt"]);
    const out = await tmp();
    await generateShapes({ out, n: 3, seed: 1 });
    await generateShapes({ out, n: 3, seed: 1 }); // same options: allowed
    await expect(generateShapes({ out, n: 4, seed: 1 })).rejects.toThrow(/shapes dataset with other options \(n=3, seed=1/);
    await generateShapes({ out, n: 2, seed: 1, force: true });
    expect((await readLines(out)).length).toBe(2);
    const file = join(await tmp(), "file");
    await writeFile(file, "");
    await expect(generateShapes({ out: file, n: 1 })).rejects.toThrow(/expected a folder for out, got a file/);
  });
});
