// Images → what the eye model's forward takes. With the vision tower frozen (the default) the
// pooled penultimate-layer features are computed once per image and kept in the data package's
// feature cache, keyed by (vision weights, layer, pooling, preprocessing); each image's cache id
// is its absolute path + size + mtime, so an edited image is recomputed. With vision layers
// training, pixels are preprocessed per batch on the worker pool instead (one batch ahead).
import { createHash } from "node:crypto";
import { stat } from "node:fs/promises";
import { type Tensor, tensor, tidy } from "@llms-eye/tensor";
import type { EyeModel } from "@llms-eye/models";
import { FeatureCache, PreprocessPool, parseClipImageConfig, featureCacheDir, type ClipImageConfig } from "@llms-eye/data";
import type { Dataset } from "./dataset.js";

export interface ImageInputs {
  /** Features (B, K, Dv) — or pixels (B, 3, S, S) when `live` — of dataset rows. Caller disposes. */
  get(indices: readonly number[]): Promise<Tensor>;
  /** True when get() returns pixels for a vision tower on the tape. */
  readonly live: boolean;
  /** Computes (and caches) the features of these rows now; a no-op for live pixels. */
  prepare(indices: readonly number[]): Promise<void>;
  close(): Promise<void>;
}

export interface FeatureOptions {
  workers?: number;
  /** Images per extraction batch (default 32). */
  batch?: number;
  cacheDir?: string;
  onProgress?: (done: number, total: number) => void;
}

/** sha256 of the vision tower's weights (16 hex): the model part of the cache key. */
export async function visionFingerprint(model: EyeModel): Promise<string> {
  const h = createHash("sha256");
  for (const [name, p] of model.vision_model.namedParameters()) {
    h.update(name);
    const data = (await p.value.toArray()) as Float32Array;
    h.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return h.digest("hex").slice(0, 16);
}

/** Pixels (n, 3, S, S) of image files, through the pool. */
export async function pixelsOf(pool: PreprocessPool, files: readonly string[], S: number): Promise<Tensor> {
  const out = new Float32Array(files.length * 3 * S * S);
  const all = await Promise.all(files.map((f) => pool.run(f)));
  all.forEach((px, i) => out.set(px, i * 3 * S * S));
  return tensor(out, [files.length, 3, S, S]);
}

/** The image inputs of `dataset` for `model`: cached features, or live pixels when vision trains. */
export async function imageInputs(model: EyeModel, dataset: Dataset, preprocessor: Record<string, unknown>, opts: FeatureOptions = {}): Promise<ImageInputs> {
  const config: ClipImageConfig = parseClipImageConfig(preprocessor, "the model's preprocessor_config.json");
  const S = model._cfg.vision.imageSize;
  const pool = new PreprocessPool(config, opts.workers === undefined ? {} : { threads: opts.workers });
  if (model.visionTrains) {
    return { live: true, get: (idx) => pixelsOf(pool, idx.map((i) => dataset.image(i)), S), prepare: async () => {}, close: () => pool.close() };
  }
  const [K, Dv] = [model.K, model._cfg.vision.hiddenSize];
  const cache = await FeatureCache.open({
    ...(opts.cacheDir ? { dir: opts.cacheDir } : { dir: featureCacheDir() }),
    key: { model: `${model._cfg.size}:${model._cfg.visionRepo}:${await visionFingerprint(model)}`, layer: -2, pooling: `avg${model._cfg.poolFactor}`, preprocessing: config },
    shape: [K, Dv],
    dtype: "f32",
  });
  const ids = new Map<number, string>();
  const idOf = async (i: number): Promise<string> => {
    let id = ids.get(i);
    if (id === undefined) {
      const file = dataset.image(i);
      const s = await stat(file).catch(() => null);
      if (!s) throw new Error(`features: expected image ${file} of record "${dataset.records[i]!.id}" in ${dataset.file}, got no such file; re-run \`pnpm eye prepare\``);
      id = `${file}:${s.size}:${Math.floor(s.mtimeMs)}`;
      ids.set(i, id);
    }
    return id;
  };
  const byId = new Map<string, number>();
  const per = opts.batch ?? 32;
  const progress = { done: 0, total: 0 };
  // one shard's features, `per` images at a time through the tower; the next chunk's images decode while this one runs
  const extract = async (shardIds: string[]): Promise<Float32Array> => {
    const out = new Float32Array(shardIds.length * K * Dv);
    const files = shardIds.map((id) => dataset.image(byId.get(id)!));
    let next = pixelsOf(pool, files.slice(0, per), S);
    for (let at = 0; at < files.length; at += per) {
      const px = await next;
      if (at + per < files.length) next = pixelsOf(pool, files.slice(at + per, at + 2 * per), S);
      const f = tidy(() => model.imageFeatures(px).value);
      px.dispose();
      try {
        out.set((await f.toArray()) as Float32Array, at * K * Dv);
      } finally {
        f.dispose();
      }
      progress.done += Math.min(per, files.length - at);
      opts.onProgress?.(progress.done, progress.total);
    }
    return out;
  };
  const ensure = async (indices: readonly number[]): Promise<string[]> => {
    const list = await Promise.all(indices.map(idOf));
    list.forEach((id, j) => byId.set(id, indices[j]!));
    const missing = cache.missing(list);
    if (missing.length === 0) return list;
    Object.assign(progress, { done: 0, total: missing.length });
    await cache.build(missing, extract, { shardSize: 1024 });
    return list;
  };
  return {
    live: false,
    async get(indices) {
      const list = await ensure(indices);
      return tensor(await cache.get(list), [indices.length, K, Dv]);
    },
    async prepare(indices) {
      await ensure(indices);
    },
    close: async () => {
      cache.close();
      await pool.close();
    },
  };
}
