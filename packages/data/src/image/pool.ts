// CLIP image preprocessing on worker threads (piscina), as an ordered stream with prefetch:
// `preprocessMany(files, config)` keeps up to `prefetch` images decoding and resizing ahead of
// the consumer and yields their pixel values in input order, so a training loop that pulls a
// batch finds it ready (the GPU never waits on JPEG decoding). `threads: 0` runs the same work
// on the calling thread (sharp still decodes off the event loop): the single-threaded path.
// sharp is imported here, on the main thread, before any worker loads it (sharp's docs on
// worker threads: keep the native library loaded for the life of the process).
import { availableParallelism } from "node:os";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Piscina } from "piscina";
import { type ClipImageConfig, CLIP_IMAGE_DEFAULTS, CLIPImageProcessor } from "./clip-processor.js";
import { ImageError } from "./decode.js";
import type { PreprocessTask } from "./worker.js";

export interface PoolOptions {
  /** Worker threads (default: the machine's cores, at most 8); 0 = on the calling thread. */
  threads?: number;
  /** Images in flight ahead of the consumer (default 4 per thread, at least 4). */
  prefetch?: number;
}

/**
 * The worker entry and the Node flags it needs: from TypeScript sources (vitest, tsx) the
 * sibling worker.ts under tsx's loader; from the built package dist/image/worker.js.
 */
function workerEntry(): { filename: string; execArgv: string[] } {
  const here = import.meta.url;
  if (here.endsWith(".ts")) {
    const tsx = pathToFileURL(createRequire(here).resolve("tsx")).href;
    return { filename: fileURLToPath(new URL("./worker.ts", here)), execArgv: ["--import", tsx] };
  }
  return { filename: fileURLToPath(new URL("./image/worker.js", here)), execArgv: [] };
}

function checkCount(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min) throw new ImageError(`preprocess: expected an integer ≥ ${min} for ${name}, got ${v}`);
  return v;
}

/** An error from a worker, back as an ImageError when it is one of ours (structured clone drops the class). */
function rethrow(e: unknown): never {
  const message = (e as Error)?.message ?? String(e);
  throw message.startsWith("preprocess:") ? new ImageError(message) : e;
}

/** A pool of workers that each run CLIPImageProcessor with one config. Call close() when done. */
export class PreprocessPool {
  readonly threads: number;
  private readonly piscina?: Piscina<PreprocessTask, Float32Array>;
  private readonly local?: CLIPImageProcessor;

  constructor(
    readonly config: ClipImageConfig = CLIP_IMAGE_DEFAULTS,
    opts: Pick<PoolOptions, "threads"> = {},
  ) {
    this.threads = checkCount("threads", opts.threads ?? Math.min(availableParallelism(), 8), 0);
    if (this.threads === 0) {
      this.local = new CLIPImageProcessor(config);
      return;
    }
    const { filename, execArgv } = workerEntry();
    this.piscina = new Piscina({ filename, execArgv, minThreads: this.threads, maxThreads: this.threads, idleTimeout: 60_000 });
  }

  /** Pixel values [3, H, W] of one image (a path or the file's bytes). */
  async run(input: string | Uint8Array): Promise<Float32Array> {
    if (this.local) return this.local.preprocess(input);
    return this.piscina!.run({ input, config: this.config }).catch(rethrow);
  }

  async close(): Promise<void> {
    await this.piscina?.close();
  }
}

/**
 * Pixel values of every input, in input order, computed up to `prefetch` images ahead on a
 * worker pool (its own, closed at the end, or `opts.pool`, left open). The first failing image
 * ends the stream with its error (naming the file); nothing after it is yielded.
 */
export async function* preprocessMany(
  inputs: Iterable<string | Uint8Array> | AsyncIterable<string | Uint8Array>,
  config: ClipImageConfig = CLIP_IMAGE_DEFAULTS,
  opts: PoolOptions & { pool?: PreprocessPool } = {},
): AsyncGenerator<Float32Array, void, undefined> {
  const pool = opts.pool ?? new PreprocessPool(config, opts);
  const prefetch = checkCount("prefetch", opts.prefetch ?? Math.max(4, 4 * pool.threads), 1);
  const queue: Promise<Float32Array>[] = [];
  const start = (input: string | Uint8Array): void => {
    const p = pool.run(input);
    p.catch(() => undefined); // awaited in order below; this only keeps an early failure from counting as unhandled
    queue.push(p);
  };
  try {
    for await (const input of inputs) {
      if (queue.length >= prefetch) yield await queue.shift()!;
      start(input);
    }
    while (queue.length > 0) yield await queue.shift()!;
  } finally {
    await Promise.allSettled(queue);
    if (!opts.pool) await pool.close();
  }
}
