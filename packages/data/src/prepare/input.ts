// Reading the public downloads safely: text files (refusing empty, binary and non-UTF-8 input),
// JSON files validated by a zod schema, locating the official file names under --src, and
// caption clean-up. Every unusable input throws one PrepareError naming the file and what was expected.
import { existsSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { z } from "zod";

/** An input that cannot be prepared: missing, empty, binary, or not the format it claims to be. */
export class PrepareError extends Error {
  override name = "PrepareError";
}

/** Trimmed, inner whitespace (including tabs and newlines) collapsed to one space. */
export const cleanCaption = (s: string): string => s.replace(/\s+/g, " ").trim();

async function readBytes(file: string, what: string): Promise<Buffer> {
  if (!existsSync(file)) throw new PrepareError(`prepare: expected ${what} at ${file}, but it does not exist`);
  if (!statSync(file).isFile()) throw new PrepareError(`prepare: expected ${what} at ${file}, got a folder`);
  const bytes = await readFile(file);
  if (bytes.length === 0) throw new PrepareError(`prepare: expected ${what} in ${file}, got an empty file`);
  if (bytes.includes(0)) throw new PrepareError(`prepare: expected ${what} in ${file}, got a binary file`);
  return bytes;
}

/** The text of a UTF-8 file (BOM removed); empty, binary or non-UTF-8 files throw. */
export async function readText(file: string, what: string): Promise<string> {
  const bytes = await readBytes(file, what);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new PrepareError(`prepare: expected ${what} in ${file}, got a file that is not UTF-8 text (binary?)`);
  }
  if (text.trim() === "") throw new PrepareError(`prepare: expected ${what} in ${file}, got an empty file`);
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Lines of a text file, without line endings (\n or \r\n); the last empty line is dropped. */
export async function readLines(file: string, what: string): Promise<string[]> {
  const lines = (await readText(file, what)).split(/\r?\n/);
  if (lines.at(-1) === "") lines.pop();
  return lines;
}

/** A short description of a JSON value, for "got …" in error messages. */
export function describeJson(v: unknown): string {
  if (Array.isArray(v)) return "a JSON list";
  if (v === null) return "JSON null";
  if (typeof v === "object") {
    const keys = Object.keys(v);
    return keys.length ? `an object with keys ${keys.slice(0, 6).join(", ")}${keys.length > 6 ? ", …" : ""}` : "an empty object";
  }
  return `a JSON ${typeof v}`;
}

/** A JSON file validated by `schema`; `what` names the expected shape, e.g. "a COCO captions object {images, annotations}". */
export async function readJson<S extends z.ZodType>(file: string, schema: S, what: string): Promise<z.infer<S>> {
  const text = await readText(file, what);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new PrepareError(`prepare: expected ${what} in ${file}, got text that is not JSON (${(e as Error).message})`);
  }
  const r = schema.safeParse(v);
  if (r.success) return r.data;
  const top = typeof v !== "object" || v === null || Array.isArray(v);
  const issue = r.error.issues[0];
  const detail = top || !issue ? describeJson(v) : `${describeJson(v)} where ${issue.path.join(".") || "the value"}: ${issue.message}`;
  throw new PrepareError(`prepare: expected ${what} in ${file}, got ${detail}`);
}

/** The first of `names` (relative to `dir`) that exists, or undefined. */
export const findFirst = (dir: string, names: readonly string[]): string | undefined =>
  names.map((n) => join(dir, n)).find((p) => existsSync(p));

/** Throws unless `dir` is an existing folder. */
export function requireDir(dir: string, what: string, flag: string): string {
  if (!existsSync(dir)) throw new PrepareError(`prepare: expected ${what} at ${dir}, but it does not exist; pass ${flag} <folder>`);
  if (!statSync(dir).isDirectory()) throw new PrepareError(`prepare: expected ${what} at ${dir}, got a file; pass ${flag} <folder>`);
  return dir;
}

/** A plain image file name: no folders, ends in .jpg/.jpeg/.png/.webp (so `x.jpg.1` is rejected). */
export const isImageName = (name: string): boolean => /^[^/\\]+\.(jpe?g|png|webp)$/i.test(name) && name !== "." && name !== "..";

/** The file name without its extension. */
export const stem = (name: string): string => name.replace(/\.[^./\\]*$/, "");
