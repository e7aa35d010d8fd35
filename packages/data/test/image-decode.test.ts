// decode.ts: what PIL's convert("RGB") gives, on images made here with sharp — grayscale
// replicated to three equal channels, alpha dropped (the RGB under a transparent pixel kept, not
// composited), lossless WebP and 16-bit PNG, CMYK by Pillow's formula — and one clear error
// naming the path for a missing file, a directory and a file that is not an image.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, describe, expect, it } from "vitest";
import { ImageError, decodeRgb } from "../src/image/decode.js";

const TMP = mkdtempSync(join(tmpdir(), "eye-image-decode-"));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const W = 7;
const H = 5;
/** Deterministic pixels with `channels` bands. */
const pixels = (channels: number): Uint8Array => Uint8Array.from({ length: W * H * channels }, (_, i) => (i * 37 + (i % channels) * 91) & 255);
const raw = (channels: 1 | 2 | 3 | 4) => sharp(pixels(channels), { raw: { width: W, height: H, channels } });

describe("decodeRgb", () => {
  it("replicates a grayscale PNG to three equal channels", async () => {
    const file = join(TMP, "gray.png");
    await raw(1).toColourspace("b-w").png().toFile(file);
    const img = await decodeRgb(file);
    const g = pixels(1);
    expect([img.width, img.height]).toEqual([W, H]);
    expect(Array.from(img.data)).toEqual(Array.from(g).flatMap((v) => [v, v, v]));
  });

  it("drops alpha without compositing (RGBA and grayscale+alpha PNG, from a path or bytes)", async () => {
    const rgba = pixels(4);
    rgba[3] = 0; // a fully transparent pixel keeps its colour
    const png = await sharp(rgba, { raw: { width: W, height: H, channels: 4 } }).png().toBuffer();
    const img = await decodeRgb(png);
    expect(Array.from(img.data)).toEqual(Array.from(rgba).filter((_, i) => i % 4 !== 3));
    const la = await raw(2).png().toBuffer();
    const gray = await decodeRgb(la);
    expect(Array.from(gray.data)).toEqual(Array.from(pixels(2)).filter((_, i) => i % 2 === 0).flatMap((v) => [v, v, v]));
  });

  it("decodes lossless WebP exactly, and 16-bit PNG to its high byte (PIL's RGB;16B)", async () => {
    const webp = await raw(3).webp({ lossless: true }).toBuffer();
    expect(Array.from((await decodeRgb(webp)).data)).toEqual(Array.from(pixels(3)));
    const rgba = await decodeRgb(await raw(4).webp({ lossless: true, exact: true }).toBuffer());
    expect(Array.from(rgba.data)).toEqual(Array.from(pixels(4)).filter((_, i) => i % 4 !== 3));
    // Low byte 255 under a small high byte: >> 8 and round(v / 257) differ.
    const wide = Uint16Array.from(pixels(3), (v) => v * 256 + 255);
    const png16 = await sharp(wide, { raw: { width: W, height: H, channels: 3 } }).toColourspace("rgb16").png().toBuffer();
    expect((await sharp(png16).metadata()).depth).toBe("ushort");
    expect(Array.from((await decodeRgb(png16)).data)).toEqual(Array.from(pixels(3)));
  });

  it("converts CMYK JPEG with Pillow's integer formula, not a colour profile", async () => {
    const cmyk = await raw(3).toColourspace("cmyk").jpeg({ quality: 100 }).toBuffer();
    expect((await sharp(cmyk).metadata()).space).toBe("cmyk");
    const k = await sharp(cmyk, { ignoreIcc: true }).pipelineColourspace("cmyk").toColourspace("cmyk").raw().toBuffer();
    const img = await decodeRgb(cmyk);
    for (let i = 0; i < W * H; i++) {
      const nk = 255 - k[i * 4 + 3]!;
      for (let c = 0; c < 3; c++) {
        const t = k[i * 4 + c]! * nk + 128; // Convert.c: nk − MULDIV255(c, nk)
        expect(img.data[i * 3 + c]).toBe(nk - (((t >> 8) + t) >> 8));
        expect(Math.abs(img.data[i * 3 + c]! - (nk - (k[i * 4 + c]! * nk) / 255))).toBeLessThanOrEqual(0.5);
      }
    }
  });

  it("names the path of a missing file, a directory and a file that is not an image", async () => {
    const missing = join(TMP, "nope.jpg");
    await expect(decodeRgb(missing)).rejects.toThrow(new ImageError(`preprocess: expected an image file at ${missing}, got no such file`));
    await expect(decodeRgb(TMP)).rejects.toThrow(`preprocess: expected an image file at ${TMP}, got a directory`);
    const text = join(TMP, "captions.jpg");
    writeFileSync(text, "a dog on a beach\n");
    const err = await decodeRgb(text).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageError);
    expect((err as Error).message).toMatch(new RegExp(`^preprocess: expected an image \\(JPEG, PNG, WebP, GIF, TIFF, AVIF\\) in ${text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}, got an error decoding it: `));
    await expect(decodeRgb(new Uint8Array(10))).rejects.toThrow("preprocess: expected an image (JPEG, PNG, WebP, GIF, TIFF, AVIF) in a 10-byte buffer, got an error decoding it: ");
  });
});
