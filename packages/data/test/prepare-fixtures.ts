// Tiny fixtures for the prepare tests, built in a temporary folder: real 4x4 JPEG/PNG files,
// corrupt ones, and text/JSON files written as given.
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import sharp from "sharp";

const pixels = { create: { width: 4, height: 4, channels: 3, background: { r: 200, g: 40, b: 10 } } } as const;
let jpegBytes: Buffer | undefined;
let pngBytes: Buffer | undefined;

export async function tempDir(prefix = "eye-prepare-"): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export const removeDir = (dir: string) => rm(dir, { recursive: true, force: true });

/** Writes `data` to `file`, creating its folder. */
export async function put(file: string, data: string | Buffer | object): Promise<string> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, typeof data === "string" || Buffer.isBuffer(data) ? data : JSON.stringify(data));
  return file;
}

export async function jpeg(file: string): Promise<string> {
  jpegBytes ??= await sharp(pixels).jpeg().toBuffer();
  return put(file, jpegBytes);
}

export async function png(file: string): Promise<string> {
  pngBytes ??= await sharp(pixels).png().toBuffer();
  return put(file, pngBytes);
}

/** A file named like an image whose bytes are not one. */
export const corrupt = (file: string) => put(file, Buffer.from("this is not a JPEG at all, just text pretending"));

/** Every file under dir (relative names), sorted; to assert "wrote nothing". */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(join(e.parentPath, e.name).slice(dir.length + 1));
  return out.sort();
}
