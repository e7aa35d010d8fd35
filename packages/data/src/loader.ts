// The training loader: seeded shuffling, epochs and batching of images with their tokenised
// captions. A unit of an epoch is an image with one caption picked at random for that epoch
// (captions: "random", the default) or every (image, caption) pair (captions: "all"). Epoch e's
// order and caption picks are pure functions of (seed, e) (loader-order.ts), so the position
// {seed, epoch, index} saved with a checkpoint resumes the exact same batches; it carries a
// fingerprint of the item ids, caption counts and options and is refused on any mismatch.
// Token ids are computed lazily, once per caption, and padded to the batch's longest caption
// (capped at maxTokens: longer captions are cut and counted in `truncated`, never dropped).
import { createHash } from "node:crypto";
import { z } from "zod";
import { captionChoice, epochPermutation } from "./loader-order.js";

/** What the loader needs of a dataset record (the unified DatasetRecord fits). */
export interface LoaderItem {
  id: string;
  captions: readonly string[];
}

export interface LoaderOptions {
  batchSize: number;
  seed: number;
  /** "random": one caption per image per epoch (default); "all": every (image, caption) pair. */
  captions?: "random" | "all";
  tokenize: (caption: string) => number[];
  padId: number;
  /** Longest token row; longer captions are truncated and counted. */
  maxTokens?: number;
  /** Drop an epoch's last incomplete batch (default false: it is served smaller). */
  dropLast?: boolean;
}

/** Where the loader stands: JSON-serialisable, saved with a checkpoint. */
export interface LoaderPosition {
  seed: number;
  epoch: number;
  /** Units of the epoch already served (a multiple of batchSize). */
  index: number;
  /** Units per epoch and batch size of the loader that saved it (for the error message). */
  units: number;
  batchSize: number;
  /** SHA-256 (16 hex) of item ids, caption counts and options. */
  fingerprint: string;
}

export interface Batch {
  epoch: number;
  /** Batch number within the epoch. */
  step: number;
  /** Indices into the dataset, one per row. */
  items: number[];
  /** Which caption of items[b] row b holds. */
  captionIndex: number[];
  captions: string[];
  /** [B, T] row-major token ids, padded with padId after lengths[b]. */
  tokens: Int32Array;
  shape: [number, number];
  lengths: number[];
  /** Rows of this batch whose caption was cut to maxTokens. */
  truncated: number;
}

export class LoaderError extends Error {
  override name = "LoaderError";
}

const PositionSchema = z.object({
  seed: z.number().int(),
  epoch: z.number().int().nonnegative(),
  index: z.number().int().nonnegative(),
  units: z.number().int().positive(),
  batchSize: z.number().int().positive(),
  fingerprint: z.string().regex(/^[0-9a-f]{16}$/),
});

const isPositiveInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v > 0;

export class Loader {
  readonly stepsPerEpoch: number;
  /** Units (images, or image-caption pairs in "all" mode) per epoch, before dropLast. */
  readonly units: number;
  readonly fingerprint: string;
  /** Distinct captions cut to maxTokens so far (each counted once, when first tokenised). */
  truncated = 0;
  private readonly mode: "random" | "all";
  /** offsets[i]: global index of item i's first caption; offsets[n]: caption count. */
  private readonly offsets: Int32Array;
  private readonly tokenCache = new Map<number, { ids: Int32Array; cut: boolean }>();
  private epoch = 0;
  private index = 0;
  private order: { epoch: number; perm: Int32Array } | undefined;

  constructor(private readonly items: readonly LoaderItem[], private readonly opts: LoaderOptions) {
    const { batchSize, seed, maxTokens, padId } = opts;
    this.mode = opts.captions ?? "random";
    if (!isPositiveInt(batchSize)) throw new LoaderError(`loader: expected a positive integer for batchSize, got ${batchSize}`);
    if (!Number.isSafeInteger(seed)) throw new LoaderError(`loader: expected an integer for seed, got ${seed}`);
    if (!Number.isInteger(padId)) throw new LoaderError(`loader: expected an integer for padId, got ${padId}`);
    if (maxTokens !== undefined && !isPositiveInt(maxTokens)) throw new LoaderError(`loader: expected a positive integer for maxTokens, got ${maxTokens}`);
    if (this.mode !== "random" && this.mode !== "all") throw new LoaderError(`loader: expected captions "random" or "all", got ${JSON.stringify(this.mode)}`);
    if (items.length === 0) throw new LoaderError(`loader: expected at least one item, got an empty dataset`);
    this.offsets = new Int32Array(items.length + 1);
    items.forEach((item, i) => {
      if (item.captions.length === 0) throw new LoaderError(`loader: expected at least one caption for item "${item.id}" (index ${i}), got none; remove it from the dataset or add captions`);
      this.offsets[i + 1] = this.offsets[i]! + item.captions.length;
    });
    this.units = this.mode === "all" ? this.offsets[items.length]! : items.length;
    this.stepsPerEpoch = opts.dropLast ? Math.floor(this.units / batchSize) : Math.ceil(this.units / batchSize);
    if (this.stepsPerEpoch === 0) {
      throw new LoaderError(`loader: expected at least batchSize ${batchSize} units per epoch with dropLast, got ${this.units}; lower batchSize or set dropLast false`);
    }
    const h = createHash("sha256");
    h.update(JSON.stringify({ batchSize, captions: this.mode, dropLast: !!opts.dropLast, maxTokens: maxTokens ?? null, padId, n: items.length }));
    for (const item of items) h.update(`\n${item.captions.length}\t${item.id}`);
    this.fingerprint = h.digest("hex").slice(0, 16);
  }

  /** The next batch; advances the position, moving to the next epoch after the last batch. */
  next(): Batch {
    const { batchSize } = this.opts;
    const start = this.index;
    const end = Math.min(start + batchSize, this.units);
    const perm = this.permutation(this.epoch);
    const batch: Omit<Batch, "tokens" | "shape" | "truncated"> = { epoch: this.epoch, step: start / batchSize, items: [], captionIndex: [], captions: [], lengths: [] };
    const rows: Int32Array[] = [];
    let truncated = 0;
    for (let u = start; u < end; u++) {
      const [item, cap] = this.unit(perm[u]!);
      const { ids, cut } = this.tokens(item, cap);
      batch.items.push(item);
      batch.captionIndex.push(cap);
      batch.captions.push(this.items[item]!.captions[cap]!);
      batch.lengths.push(ids.length);
      rows.push(ids);
      if (cut) truncated++;
    }
    const T = Math.max(...batch.lengths);
    const tokens = new Int32Array(rows.length * T).fill(this.opts.padId);
    rows.forEach((r, b) => tokens.set(r, b * T));
    this.index = end;
    if (this.index >= this.stepsPerEpoch * batchSize || this.index >= this.units) {
      this.epoch++;
      this.index = 0;
    }
    return { ...batch, tokens, shape: [rows.length, T], truncated };
  }

  position(): LoaderPosition {
    return { seed: this.opts.seed, epoch: this.epoch, index: this.index, units: this.units, batchSize: this.opts.batchSize, fingerprint: this.fingerprint };
  }

  /** Continues from a saved position (e.g. parsed from a checkpoint's JSON). */
  restore(pos: unknown): void {
    const parsed = PositionSchema.safeParse(pos);
    if (!parsed.success) {
      throw new LoaderError(`loader: expected a position {seed, epoch, index, units, batchSize, fingerprint} as saved by position(), got ${JSON.stringify(pos)?.slice(0, 120)}: ${parsed.error.issues[0]?.message}`);
    }
    const p = parsed.data;
    if (p.seed !== this.opts.seed) throw new LoaderError(`loader: expected a position saved with seed ${this.opts.seed}, got seed ${p.seed}; construct the Loader with seed ${p.seed} to resume that run`);
    if (p.fingerprint !== this.fingerprint) {
      throw new LoaderError(
        `loader: expected a position saved for this dataset and options (fingerprint ${this.fingerprint}: ${this.units} units, batch ${this.opts.batchSize}), ` +
          `got fingerprint ${p.fingerprint} (${p.units} units, batch ${p.batchSize}); resume with the same dataset file, captions mode, batchSize, maxTokens, padId and dropLast`,
      );
    }
    if (p.index % this.opts.batchSize !== 0 || p.index >= this.stepsPerEpoch * this.opts.batchSize) {
      throw new LoaderError(`loader: expected position index a multiple of batchSize ${this.opts.batchSize} below ${this.stepsPerEpoch * this.opts.batchSize}, got ${p.index}`);
    }
    this.epoch = p.epoch;
    this.index = p.index;
  }

  /** Token ids of caption `cap` of item `item`, truncated to maxTokens (cached). */
  private tokens(item: number, cap: number): { ids: Int32Array; cut: boolean } {
    const key = this.offsets[item]! + cap;
    const hit = this.tokenCache.get(key);
    if (hit) return hit;
    const text = this.items[item]!.captions[cap]!;
    const raw = this.opts.tokenize(text);
    if (raw.length === 0) throw new LoaderError(`loader: expected caption ${cap} of item "${this.items[item]!.id}" to tokenise to at least one token, got none (${JSON.stringify(text)})`);
    const max = this.opts.maxTokens ?? Infinity;
    const cut = raw.length > max;
    if (cut) this.truncated++;
    const entry = { ids: Int32Array.from(cut ? raw.slice(0, max) : raw), cut };
    this.tokenCache.set(key, entry);
    return entry;
  }

  /** Unit → (item, caption) in the current epoch. */
  private unit(u: number): [number, number] {
    if (this.mode === "random") {
      const count = this.items[u]!.captions.length;
      return [u, captionChoice(this.opts.seed, this.epoch, u, count)];
    }
    let lo = 0; // last item whose first caption is ≤ u
    let hi = this.items.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.offsets[mid]! <= u) lo = mid;
      else hi = mid - 1;
    }
    return [lo, u - this.offsets[lo]!];
  }

  private permutation(epoch: number): Int32Array {
    if (this.order?.epoch !== epoch) this.order = { epoch, perm: epochPermutation(this.opts.seed, epoch, this.units) };
    return this.order.perm;
  }
}
