// The frozen-CLIP feature cache: features [K, D] per image for one key (model, layer, pooling,
// preprocessing, … any JSON) are computed once and kept on disk under
// <root>/<sha256 of the canonical key JSON, 16 hex>/: index.json {version, key, shape, dtype,
// shards: [{file, ids}]} and shard-00000.safetensors… (feature-shard.ts), each written
// atomically and followed by an atomic rewrite of the index, so a build killed between shards
// resumes with only the missing ids. A different key is a different folder (stale features are
// never reused); the stored key must equal the requested one. On open every shard's header is
// checked against the index: a broken shard is dropped with a warning and rebuilt, never served.
// get() reads only the requested rows with positional reads on handles kept open.
import { createHash } from "node:crypto";
import { type FileHandle, mkdir, open, readdir, readFile, unlink } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { type FeatureDType, FeatureCacheError, checkShard, readRows, writeShard } from "./feature-shard.js";
import { writeFilesAtomically } from "./prepare/atomic.js";

export { FeatureCacheError, type FeatureDType } from "./feature-shard.js";

/** What the features depend on; any further JSON fields take part in the identity too. */
export interface FeatureKey {
  model: string;
  layer: number | string;
  pooling: string;
  preprocessing: unknown;
  [field: string]: unknown;
}

export interface FeatureCacheOptions {
  /** Cache root (default featureCacheDir()); the key's folder is created inside it. */
  dir?: string;
  key: FeatureKey;
  /** [K, D]: tokens and width of one image's features. */
  shape: [number, number];
  /** Storage precision (default "f32"); get() always returns f32. */
  dtype?: FeatureDType;
  /** Where warnings go (default console.warn). */
  warn?: (message: string) => void;
}

export interface BuildOptions {
  /** Images per shard (default 1024); extract is called once per shard. */
  shardSize?: number;
  onProgress?: (p: { done: number; total: number; shard: string }) => void;
}

/** `$EYE_CACHE`, else ~/.cache/llms-eye/features. */
export function featureCacheDir(): string {
  return process.env.EYE_CACHE || join(homedir(), ".cache", "llms-eye", "features");
}

/** JSON with object keys sorted at every level; rejects what JSON would silently drop or alter. */
export function canonicalJson(value: unknown, at = "key"): string {
  if (value === null || typeof value === "string" || typeof value === "boolean") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new FeatureCacheError(`feature cache: expected a finite number at ${at}, got ${value}`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v, i) => canonicalJson(v, `${at}[${i}]`)).join(",")}]`;
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k], `${at}.${k}`)}`).join(",")}}`;
  }
  throw new FeatureCacheError(`feature cache: expected JSON values (null, boolean, number, string, array, plain object) at ${at}, got ${typeof value}`);
}

/** The key's folder name: SHA-256 of its canonical JSON, 16 hex. */
export function featureKeyHash(key: FeatureKey): string {
  return createHash("sha256").update(canonicalJson(key)).digest("hex").slice(0, 16);
}

const KeySchema = z.looseObject({ model: z.string().min(1), layer: z.union([z.number().int(), z.string().min(1)]), pooling: z.string().min(1), preprocessing: z.unknown().refine((v) => v !== undefined, "required") });
const IndexSchema = z.object({
  version: z.literal(1),
  key: z.unknown(),
  shape: z.tuple([z.number().int().positive(), z.number().int().positive()]),
  dtype: z.enum(["f32", "f16"]),
  shards: z.array(z.object({ file: z.string().regex(/^shard-\d{5,}\.safetensors$/), ids: z.array(z.string()) })),
});
type Index = z.infer<typeof IndexSchema>;
interface Shard {
  file: string;
  ids: string[];
  dataStart: number;
}

export class FeatureCache {
  private readonly rows = new Map<string, { shard: number; row: number }>();
  private readonly handles = new Map<string, FileHandle>();

  private constructor(
    readonly dir: string,
    readonly key: FeatureKey,
    readonly shape: [number, number],
    readonly dtype: FeatureDType,
    private readonly shards: Shard[],
  ) {
    shards.forEach((s, shard) => s.ids.forEach((id, row) => this.rows.set(id, { shard, row })));
  }

  static async open(opts: FeatureCacheOptions): Promise<FeatureCache> {
    const { key, shape, dtype = "f32", warn = (m: string) => console.warn(m) } = opts;
    const k = KeySchema.safeParse(key);
    if (!k.success) throw new FeatureCacheError(`feature cache: expected a key {model, layer, pooling, preprocessing, …}, got ${JSON.stringify(key)?.slice(0, 200)}: ${k.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => Number.isSafeInteger(d) && d > 0)) throw new FeatureCacheError(`feature cache: expected shape [K, D] of positive integers, got ${JSON.stringify(shape)}`);
    if (dtype !== "f32" && dtype !== "f16") throw new FeatureCacheError(`feature cache: expected dtype "f32" or "f16", got ${JSON.stringify(dtype)}`);
    const canonical = canonicalJson(key);
    const dir = join(opts.dir ?? featureCacheDir(), featureKeyHash(key));
    await mkdir(dir, { recursive: true });
    await removeDeadTemps(dir);
    const indexFile = join(dir, "index.json");
    let text: string | undefined;
    try {
      text = await readFile(indexFile, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    if (text === undefined) {
      const cache = new FeatureCache(dir, key, shape, dtype, []);
      await cache.writeIndex();
      return cache;
    }
    const index = parseIndex(text, indexFile);
    if (canonicalJson(index.key) !== canonical) {
      throw new FeatureCacheError(`feature cache: expected ${indexFile} to hold the key ${canonical}, got ${canonicalJson(index.key)}; the folder was edited or its hash collides: delete ${dir} to rebuild`);
    }
    if (index.shape.join() !== shape.join() || index.dtype !== dtype) {
      throw new FeatureCacheError(`feature cache: expected features [${shape.join(", ")}] ${dtype} for key ${canonical}, got [${index.shape.join(", ")}] ${index.dtype} in ${dir}; open it with that shape and dtype, or add the field that differs to the key`);
    }
    const shards: Shard[] = [];
    const seen = new Set<string>();
    let dropped = 0;
    for (const s of index.shards) {
      const file = join(dir, s.file);
      const local = new Set<string>();
      const dup = s.ids.find((id) => seen.has(id) || local.has(id) || !local.add(id));
      const check = dup !== undefined ? { problem: `id "${dup}" is stored twice` } : await checkShard(file, s.ids.length, shape[0], shape[1], dtype);
      if ("problem" in check) {
        warn(`feature cache: dropping ${file} (${s.ids.length} images) from ${indexFile}: ${check.problem}; its images will be recomputed by the next build`);
        await unlink(file).catch(() => undefined);
        dropped++;
        continue;
      }
      local.forEach((id) => seen.add(id));
      shards.push({ file: s.file, ids: s.ids, dataStart: check.dataStart });
    }
    const cache = new FeatureCache(dir, key, shape, dtype, shards);
    if (dropped) await cache.writeIndex();
    return cache;
  }

  /** Images with features stored. */
  get size(): number {
    return this.rows.size;
  }

  has(id: string): boolean {
    return this.rows.has(id);
  }

  /** The ids without stored features, in order, each once. */
  missing(ids: Iterable<string>): string[] {
    return [...new Set(ids)].filter((id) => !this.rows.has(id));
  }

  /** Computes and stores the features of every id not stored yet; `extract(ids)` returns [n, K, D]. */
  async build(ids: Iterable<string>, extract: (ids: string[]) => Promise<Float32Array>, opts: BuildOptions = {}): Promise<{ computed: number; shards: number }> {
    const { shardSize = 1024, onProgress } = opts;
    if (!Number.isSafeInteger(shardSize) || shardSize <= 0) throw new FeatureCacheError(`feature cache: expected a positive integer for shardSize, got ${shardSize}`);
    const todo = this.missing(ids);
    const bad = todo.find((id) => typeof id !== "string" || id === "");
    if (bad !== undefined) throw new FeatureCacheError(`feature cache: expected non-empty string ids, got ${JSON.stringify(bad)}`);
    const [K, D] = this.shape;
    let next = 1 + Math.max(-1, ...this.shards.map((s) => Number(/\d+/.exec(s.file)![0])));
    let done = 0;
    for (let start = 0; start < todo.length; start += shardSize) {
      const chunk = todo.slice(start, start + shardSize);
      const data = await extract(chunk);
      if (!(data instanceof Float32Array) || data.length !== chunk.length * K * D) {
        throw new FeatureCacheError(`feature cache: expected extract to return Float32Array(${chunk.length} × ${K} × ${D} = ${chunk.length * K * D}) for ${chunk.length} ids, got ${data?.constructor?.name ?? typeof data}(${(data as { length?: number })?.length})`);
      }
      const nonFinite = data.findIndex((v) => !Number.isFinite(v));
      if (nonFinite >= 0) throw new FeatureCacheError(`feature cache: expected finite features from extract, got ${data[nonFinite]} for id "${chunk[Math.floor(nonFinite / (K * D))]}" (element ${nonFinite % (K * D)})`);
      const file = `shard-${String(next++).padStart(5, "0")}.safetensors`;
      await writeShard(join(this.dir, file), data, [chunk.length, K, D], this.dtype);
      const check = await checkShard(join(this.dir, file), chunk.length, K, D, this.dtype);
      if ("problem" in check) throw new FeatureCacheError(`feature cache: expected the shard just written to read back, got ${check.problem}`);
      const shard = this.shards.push({ file, ids: chunk, dataStart: check.dataStart }) - 1;
      chunk.forEach((id, row) => this.rows.set(id, { shard, row }));
      await this.writeIndex();
      done += chunk.length;
      onProgress?.({ done, total: todo.length, shard: file });
    }
    return { computed: todo.length, shards: Math.ceil(todo.length / shardSize) };
  }

  /** Features of `ids` in order: Float32Array [n * K * D]. Throws naming the ids not stored. */
  async get(ids: readonly string[]): Promise<Float32Array> {
    const [K, D] = this.shape;
    const absent = ids.filter((id) => !this.rows.has(id));
    if (absent.length) {
      const list = absent.slice(0, 5).map((id) => JSON.stringify(id)).join(", ");
      throw new FeatureCacheError(`feature cache: expected stored features for every id in ${this.dir}, got none for ${absent.length} (${list}${absent.length > 5 ? ", …" : ""}); build them first`);
    }
    const perShard = new Map<number, { row: number; out: number }[]>();
    ids.forEach((id, out) => {
      const { shard, row } = this.rows.get(id)!;
      const list = perShard.get(shard) ?? [];
      list.push({ row, out });
      perShard.set(shard, list);
    });
    const out = new Float32Array(ids.length * K * D);
    for (const [shard, list] of perShard) {
      const s = this.shards[shard]!;
      list.sort((a, b) => a.row - b.row);
      const path = join(this.dir, s.file);
      let fh = this.handles.get(s.file);
      if (!fh) this.handles.set(s.file, (fh = await open(path, "r")));
      await readRows(fh, path, s.dataStart, K * D, this.dtype, list.map((l) => l.row), list.map((l) => l.out), out);
    }
    return out;
  }

  /** Closes the shard handles kept open by get(). */
  async close(): Promise<void> {
    const hs = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(hs.map((h) => h.close()));
  }

  private async writeIndex(): Promise<void> {
    const index: Index = { version: 1, key: JSON.parse(canonicalJson(this.key)) as unknown, shape: this.shape, dtype: this.dtype, shards: this.shards.map(({ file, ids }) => ({ file, ids })) };
    await writeFilesAtomically([{ path: join(this.dir, "index.json"), data: JSON.stringify(index) }]);
  }
}

function parseIndex(text: string, file: string): Index {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FeatureCacheError(`feature cache: expected JSON in ${file}, got a parse error (${(e as Error).message}); delete the folder to rebuild`);
  }
  const r = IndexSchema.safeParse(json);
  if (!r.success) throw new FeatureCacheError(`feature cache: expected an index {version: 1, key, shape, dtype, shards: [{file, ids}]} in ${file}, got ${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}; delete the folder to rebuild`);
  return r.data;
}

/** Removes temp files left by builds whose process is gone (a killed build). */
async function removeDeadTemps(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    const m = /^\..+\.(\d+)\.[a-z0-9]*\.tmp$/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = true; // our own temps may belong to a build running beside this open
    if (pid !== process.pid) {
      try {
        process.kill(pid, 0);
      } catch (e) {
        alive = (e as NodeJS.ErrnoException).code === "EPERM";
      }
    }
    if (!alive) await unlink(join(dir, name)).catch(() => undefined);
  }
}
