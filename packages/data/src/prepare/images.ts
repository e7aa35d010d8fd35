// Image file checks before a record is written: the file exists, and (unless disabled) its header
// decodes as JPEG, PNG or WebP through `sharp(file).metadata()` (header only, fast). Runs with
// bounded concurrency and reports progress through a callback.
import { stat } from "node:fs/promises";
import sharp from "sharp";
import type { SkipReason } from "./parsed.js";

export interface ImageCheckOptions {
  /** Decode each header with sharp (default true); existence is always checked. */
  decode?: boolean;
  /** Files checked at once (default 8). */
  concurrency?: number;
  /** Called after each file with (done, total). */
  onProgress?: (done: number, total: number) => void;
}

export interface ImageProblem {
  reason: Extract<SkipReason, "missing image file" | "unreadable image">;
  detail?: string;
}

const FORMATS = new Set(["jpeg", "png", "webp"]);

/** One file's problem, or undefined when it is usable. */
export async function checkImage(file: string, decode = true): Promise<ImageProblem | undefined> {
  try {
    if (!(await stat(file)).isFile()) return { reason: "missing image file", detail: "a folder, not a file" };
  } catch {
    return { reason: "missing image file" };
  }
  if (!decode) return undefined;
  try {
    const m = await sharp(file).metadata();
    if (!FORMATS.has(m.format)) return { reason: "unreadable image", detail: `format ${m.format}; expected JPEG, PNG or WebP` };
    if (!m.width || !m.height) return { reason: "unreadable image", detail: "no width/height in the header" };
    return undefined;
  } catch (e) {
    return { reason: "unreadable image", detail: (e as Error).message };
  }
}

/** Checks every file; result[i] is files[i]'s problem or undefined. */
export async function checkImages(files: readonly string[], o: ImageCheckOptions = {}): Promise<(ImageProblem | undefined)[]> {
  const out: (ImageProblem | undefined)[] = new Array(files.length);
  const limit = Math.max(1, Math.floor(o.concurrency ?? 8));
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < files.length) {
      const i = next++;
      out[i] = await checkImage(files[i]!, o.decode ?? true);
      o.onProgress?.(++done, files.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, files.length) }, worker));
  return out;
}
