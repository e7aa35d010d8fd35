// Hugging Face's CLIPImageProcessor (transformers 4.31): settings from preprocessor_config.json
// and the pipeline image → pixel values [3, H, W] float32, reproduced exactly:
//   1. decode to RGB (decode.ts: PIL's convert("RGB"));
//   2. resize so the short side is `shortest_edge`, long side int(size · long / short), with
//      Pillow's resampler on uint8 (resample.ts);
//   3. centre crop: top = (H − ch) // 2, left = (W − cw) // 2; an image smaller than the crop
//      is zero-padded (uint8 0) with the image at ceil((ch − H) / 2) — current transformers;
//      4.31 floors that offset, which loses a row or column when the difference is odd;
//   4. x = float32(u8 · rescale_factor) (product in float64), then (x − mean) / std in float32.
// Only the cropped rectangle is ever resized (resample.ts windows), and steps 4 are one
// 256-entry lookup table per channel.
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { type RgbImage, ImageError, decodeRgb } from "./decode.js";
import { type ResampleFilter, PIL_FILTERS, resize } from "./resample.js";

export const OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;

/** CLIPImageProcessor settings, named as in transformers (defaults = its constructor's). */
export interface ClipImageConfig {
  doResize: boolean;
  shortestEdge: number;
  resample: ResampleFilter;
  doCenterCrop: boolean;
  crop: { height: number; width: number };
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  mean: [number, number, number];
  std: [number, number, number];
  doConvertRgb: boolean;
}

const positive = z.number().int().positive();
const triple = z.union([z.number(), z.array(z.number()).length(3)]);
const schema = z.object({
  do_resize: z.boolean().default(true),
  size: z.union([positive, z.object({ shortest_edge: positive }), z.object({ height: positive, width: positive })]).default(224),
  resample: z.number().int().default(3),
  do_center_crop: z.boolean().default(true),
  crop_size: z.union([positive, z.object({ height: positive, width: positive })]).default(224),
  do_rescale: z.boolean().default(true),
  rescale_factor: z.number().positive().default(1 / 255),
  do_normalize: z.boolean().default(true),
  image_mean: triple.default([...OPENAI_CLIP_MEAN]),
  image_std: triple.default([...OPENAI_CLIP_STD]),
  do_convert_rgb: z.boolean().default(true),
});

/** The defaults of `CLIPImageProcessor()` (= openai/clip-vit-base-patch16's file). */
export const CLIP_IMAGE_DEFAULTS: ClipImageConfig = parseClipImageConfig({});

/** Settings from the parsed JSON of a preprocessor_config.json; `where` names it in errors. */
export function parseClipImageConfig(json: unknown, where = "preprocessor_config.json"): ClipImageConfig {
  const r = schema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new ImageError(`preprocess: expected CLIPImageProcessor settings in ${where}, got ${issue.path.join(".") || "the top level"}: ${issue.message}`);
  }
  const c = r.data;
  if (typeof c.size === "object" && !("shortest_edge" in c.size)) {
    throw new ImageError(`preprocess: expected size {"shortest_edge": n} or an integer in ${where} (CLIPImageProcessor resizes the short side), got ${JSON.stringify(c.size)}`);
  }
  const filter = PIL_FILTERS[c.resample as keyof typeof PIL_FILTERS];
  if (!filter) {
    throw new ImageError(`preprocess: expected resample among ${Object.entries(PIL_FILTERS).map(([k, v]) => `${k} (${v})`).join(", ")} in ${where}, got ${c.resample}${c.resample === 0 ? " (NEAREST is not supported)" : ""}`);
  }
  const three = (v: number | number[]): [number, number, number] => (typeof v === "number" ? [v, v, v] : [v[0]!, v[1]!, v[2]!]);
  return {
    doResize: c.do_resize,
    shortestEdge: typeof c.size === "number" ? c.size : c.size.shortest_edge,
    resample: filter,
    doCenterCrop: c.do_center_crop,
    crop: typeof c.crop_size === "number" ? { height: c.crop_size, width: c.crop_size } : c.crop_size,
    doRescale: c.do_rescale,
    rescaleFactor: c.rescale_factor,
    doNormalize: c.do_normalize,
    mean: three(c.image_mean),
    std: three(c.image_std),
    doConvertRgb: c.do_convert_rgb,
  };
}

/** Settings from a preprocessor_config.json file, or from a model directory holding one. */
export async function readClipImageConfig(path: string): Promise<ClipImageConfig> {
  const file = (await stat(path).catch(() => undefined))?.isDirectory() ? join(path, "preprocessor_config.json") : path;
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    throw new ImageError(`preprocess: expected a preprocessor_config.json at ${file}, got no such file`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ImageError(`preprocess: expected JSON in ${file}, got ${(e as Error).message}`);
  }
  return parseClipImageConfig(json, file);
}

/** transformers' get_resize_output_image_size(default_to_square=False): [width, height]. */
export function resizedSize(width: number, height: number, shortestEdge: number): [number, number] {
  const [short, long] = width <= height ? [width, height] : [height, width];
  const newLong = Math.trunc((shortestEdge * long) / short);
  return width <= height ? [shortestEdge, newLong] : [newLong, shortestEdge];
}

/** One axis of the centre crop: read `len` from `src` of the image into `dst` of the crop. */
function cropAxis(size: number, crop: number): { src: number; dst: number; len: number } {
  return size >= crop ? { src: Math.floor((size - crop) / 2), dst: 0, len: crop } : { src: 0, dst: Math.ceil((crop - size) / 2), len: size };
}

/** Pixel values of one image: float32 [3, height, width], channel-major. */
export interface PixelValues {
  data: Float32Array;
  height: number;
  width: number;
}

export class CLIPImageProcessor {
  /** Per channel, the output value of each uint8 level (rescale then normalise). */
  private readonly lut: Float32Array;

  constructor(readonly config: ClipImageConfig = CLIP_IMAGE_DEFAULTS) {
    const { doRescale, rescaleFactor, doNormalize, mean, std } = config;
    this.lut = new Float32Array(3 * 256);
    for (let c = 0; c < 3; c++) {
      const [m, s] = [Math.fround(mean[c]!), Math.fround(std[c]!)];
      for (let v = 0; v < 256; v++) {
        const x = doRescale ? Math.fround(v * rescaleFactor) : v;
        this.lut[c * 256 + v] = doNormalize ? Math.fround(Math.fround(x - m) / s) : x;
      }
    }
  }

  static async fromPretrained(path: string): Promise<CLIPImageProcessor> {
    return new CLIPImageProcessor(await readClipImageConfig(path));
  }

  /** Steps 2 and 3: the resized, cropped (and padded) uint8 RGB image. */
  resizeAndCrop(img: RgbImage): RgbImage {
    const { doResize, shortestEdge, resample, doCenterCrop, crop } = this.config;
    const [rw, rh] = doResize ? resizedSize(img.width, img.height, shortestEdge) : [img.width, img.height];
    if (!doCenterCrop) return rw === img.width && rh === img.height ? img : resize(img, rw, rh, resample);
    const [x, y] = [cropAxis(rw, crop.width), cropAxis(rh, crop.height)];
    const part = resize(img, rw, rh, resample, { left: x.src, top: y.src, width: x.len, height: y.len });
    if (x.len === crop.width && y.len === crop.height) return part;
    const data = new Uint8Array(crop.width * crop.height * 3); // zero padding
    for (let r = 0; r < y.len; r++) data.set(part.data.subarray(r * x.len * 3, (r + 1) * x.len * 3), ((y.dst + r) * crop.width + x.dst) * 3);
    return { width: crop.width, height: crop.height, data };
  }

  /** Step 4 on a uint8 RGB image: float32 [3, H, W]. */
  normalize(img: RgbImage): PixelValues {
    const { width, height, data } = img;
    const n = width * height;
    const out = new Float32Array(3 * n);
    const lut = this.lut;
    for (let i = 0; i < n; i++) {
      out[i] = lut[data[i * 3]!]!;
      out[n + i] = lut[256 + data[i * 3 + 1]!]!;
      out[2 * n + i] = lut[512 + data[i * 3 + 2]!]!;
    }
    return { data: out, height, width };
  }

  /** Steps 2–4 on a decoded image. */
  pixelValues(img: RgbImage): PixelValues {
    return this.normalize(this.resizeAndCrop(img));
  }

  /** The whole pipeline on an image file (path) or its bytes: float32 [3, H, W] (H, W = the crop size). */
  async preprocess(input: string | Uint8Array): Promise<Float32Array> {
    return this.pixelValues(await decodeRgb(input)).data;
  }
}
