// Shapes dataset, options: validation of the generator options (zod) with one clear error per bad
// value, and the `shapes.json` record of the options a folder was generated with, so a later run
// (or `eye train`) can tell whether an existing folder is the same dataset.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";

export class ShapesError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bumped whenever the same options would produce different files. */
export const SHAPES_VERSION = 3; // 2: objects named left to right; 3: larger objects
export const SHAPES_JSONL = "shapes.jsonl";
export const SHAPES_JSON = "shapes.json";

const fraction = z.number({ error: "a number in [0, 1)" }).min(0, "a number in [0, 1)").lt(1, "a number in [0, 1)");

/** The options that define the dataset's content (recorded in shapes.json). */
export const shapesSpecSchema = z.object({
  n: z.number({ error: "a positive integer" }).int("a positive integer").min(1, "a positive integer").max(10_000_000, "at most 10000000 images"),
  seed: z.number({ error: "an integer" }).int("an integer").min(0, "an integer >= 0").max(Number.MAX_SAFE_INTEGER, "a safe integer"),
  size: z.number({ error: "an integer image side" }).int("an integer image side").min(32, "an image side of at least 32 px").max(1024, "an image side of at most 1024 px"),
  splits: z
    .object({ val: fraction, test: fraction }, { error: "an object {val, test} of fractions" })
    .refine((s) => s.val + s.test < 1, { error: "val + test below 1 (the rest is train)" }),
});
export type ShapesSpec = z.infer<typeof shapesSpecSchema>;

export interface ShapesOptions {
  /** output folder: images/<id>.png, shapes.jsonl, shapes.json */
  out: string;
  /** number of images (default 3000) */
  n?: number;
  seed?: number;
  /** image side in pixels (default 64, at least 32) */
  size?: number;
  /** fractions of images in val and test (default 0.05 and 0.1); the rest is train */
  splits?: { val: number; test: number };
  /** images rendered at once (default 8) */
  concurrency?: number;
  /** write into a non-empty folder that is not a shapes dataset of the same options */
  force?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export const DEFAULT_SPEC: ShapesSpec = { n: 3000, seed: 0, size: 64, splits: { val: 0.05, test: 0.1 } };

/** The dataset options with defaults filled in; throws ShapesError naming the first bad value. */
export function resolveSpec(options: Omit<ShapesOptions, "out">): ShapesSpec {
  const input = {
    n: options.n ?? DEFAULT_SPEC.n,
    seed: options.seed ?? DEFAULT_SPEC.seed,
    size: options.size ?? DEFAULT_SPEC.size,
    splits: options.splits ?? DEFAULT_SPEC.splits,
  };
  const parsed = shapesSpecSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const name = issue.path.join(".") || "splits";
  const got = issue.path.reduce<unknown>((v, k) => (v as Record<PropertyKey, unknown> | undefined)?.[k], input);
  throw new ShapesError(`shapes: expected ${issue.message} for ${name}, got ${JSON.stringify(got)}`);
}

const recordSchema = shapesSpecSchema.extend({ version: z.number().int().positive(), source: z.literal("shapes") });
export type ShapesRecord = z.infer<typeof recordSchema>;

export const specRecord = (spec: ShapesSpec): ShapesRecord => ({ source: "shapes", version: SHAPES_VERSION, ...spec });

/** The options recorded in `<dir>/shapes.json`, or undefined when there is none or it is not ours. */
export async function readShapesSpec(dir: string): Promise<ShapesRecord | undefined> {
  const path = join(dir, SHAPES_JSON);
  if (!existsSync(path)) return undefined;
  try {
    const parsed = recordSchema.safeParse(JSON.parse(await readFile(path, "utf8")));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined; // unreadable JSON: not a shapes folder
  }
}

export const sameSpec = (a: ShapesSpec, b: ShapesSpec): boolean =>
  ((a as Partial<ShapesRecord>).version ?? SHAPES_VERSION) === ((b as Partial<ShapesRecord>).version ?? SHAPES_VERSION) &&
  a.n === b.n && a.seed === b.seed && a.size === b.size && a.splits.val === b.splits.val && a.splits.test === b.splits.test;

/** Whether `dir` already holds the complete shapes dataset of these options (shapes.json matches, shapes.jsonl written). */
export async function isShapesDir(dir: string, options: Omit<ShapesOptions, "out"> = {}): Promise<boolean> {
  const found = await readShapesSpec(dir);
  return !!found && sameSpec(found, resolveSpec(options)) && existsSync(join(dir, SHAPES_JSONL));
}

export const describeSpec = (s: ShapesSpec): string => `n=${s.n}, seed=${s.seed}, size=${s.size}, val=${s.splits.val}, test=${s.splits.test}`;
