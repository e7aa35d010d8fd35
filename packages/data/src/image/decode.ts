// Decodes an image file or buffer with sharp into 8-bit RGB, (H, W, 3) row-major, as PIL's
// `Image.open(f).convert("RGB")` does: grayscale is replicated to three channels, an alpha
// channel is dropped (not composited onto a background), CMYK uses Pillow's naive formula
// (R = (255 − K) − C·(255 − K)/255, no colour profile), embedded ICC profiles and the EXIF
// orientation are ignored (PIL applies neither), only the first frame of an animation is read.
import { readFile } from "node:fs/promises";
import sharp from "sharp";

/** An 8-bit RGB image, (height, width, 3) row-major. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export class ImageError extends Error {
  override name = "ImageError";
}

/** What a path or a buffer is called in messages. */
const label = (input: string | Uint8Array): string => (typeof input === "string" ? input : `a ${input.length}-byte buffer`);

/** The bytes of `input` (a path is read here, so a missing file gets its own message). */
async function bytes(input: string | Uint8Array): Promise<Uint8Array> {
  if (typeof input !== "string") return input;
  try {
    return await readFile(input);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "a directory" : String((e as Error).message);
    throw new ImageError(`preprocess: expected an image file at ${input}, got ${why}`);
  }
}

/** Pillow's cmyk2rgb (Convert.c): MULDIV255 in integers. */
function cmykToRgb(cmyk: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const nk = 255 - cmyk[i * 4 + 3]!;
    for (let c = 0; c < 3; c++) {
      const t = cmyk[i * 4 + c]! * nk + 128;
      out[i * 3 + c] = Math.max(0, nk - (((t >> 8) + t) >> 8));
    }
  }
  return out;
}

/** Decodes `input` (a path or the file's bytes) to RGB as PIL's convert("RGB") would. */
export async function decodeRgb(input: string | Uint8Array): Promise<RgbImage> {
  const buf = await bytes(input);
  try {
    const img = sharp(buf, { ignoreIcc: true, autoOrient: false });
    const meta = await img.metadata();
    if (meta.space === "cmyk") {
      const { data, info } = await img.pipelineColourspace("cmyk").toColourspace("cmyk").raw().toBuffer({ resolveWithObject: true });
      if (info.channels !== 4) throw new Error(`expected 4 CMYK channels, got ${info.channels}`);
      return { width: info.width, height: info.height, data: cmykToRgb(data, info.width * info.height) };
    }
    const { data, info } = await img.removeAlpha().toColourspace("srgb").raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`expected 3 channels after conversion to RGB, got ${info.channels}`);
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (e) {
    throw new ImageError(`preprocess: expected an image (JPEG, PNG, WebP, GIF, TIFF, AVIF) in ${label(input)}, got an error decoding it: ${(e as Error).message}`);
  }
}
