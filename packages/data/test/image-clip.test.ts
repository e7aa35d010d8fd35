// CLIPImageProcessor against the hf-parity fixtures (HF transformers 4.31 + Pillow 9.4 outputs):
// preprocess/ at 224 from the image files and from PIL's decoded pixels, clip/ at 32 (a strong
// downscale); then the settings parser and the centre crop of images smaller than the crop.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readSafetensors } from "@llms-eye/models";
import { HF_PARITY } from "../../models/test/fixtures.js";
import { CLIPImageProcessor, CLIP_IMAGE_DEFAULTS, parseClipImageConfig, readClipImageConfig, resizedSize } from "../src/image/clip-processor.js";
import { ImageError } from "../src/image/decode.js";
import { PREPROCESS_TOLERANCE, runPreprocessParity } from "../src/image/parity.js";

const PRE = join(HF_PARITY, "preprocess");

describe("CLIPImageProcessor parity", () => {
  it("equals HF's pixel values bit for bit on every image of preprocess/, from the file and from PIL's pixels", async () => {
    const rows = await runPreprocessParity(PRE);
    expect(rows.map((r) => r.name).sort()).toEqual(
      ["landscape_gradient.jpg", "portrait_shapes.png", "square_noise.jpg", "tiny_20x30.png"].flatMap((f) => [`pixel_values.${f}`, `pixel_values.${f} (from rgb)`]).sort(),
    );
    for (const r of rows) expect(r, r.name).toMatchObject({ group: "preprocess", maxAbs: 0, tol: PREPROCESS_TOLERANCE, ok: true });
  });

  it("equals clip/'s pixel values (shortest edge 32: a 6-10x downscale)", async () => {
    const want = (await readSafetensors(join(HF_PARITY, "clip", "reference.safetensors"), { select: (n) => n === "pixel_values" })).get("pixel_values")!;
    const p = await CLIPImageProcessor.fromPretrained(join(HF_PARITY, "clip"));
    const got = [...(await p.preprocess(join(PRE, "landscape_gradient.jpg"))), ...(await p.preprocess(join(PRE, "portrait_shapes.png")))];
    expect(want.shape).toEqual([2, 3, 32, 32]);
    expect(got).toEqual(Array.from(want.data));
  });

  it("sizes the resize as get_resize_output_image_size: short side 224, long side truncated", () => {
    expect(resizedSize(20, 30, 224)).toEqual([224, 336]);
    expect(resizedSize(500, 375, 224)).toEqual([298, 224]);
    expect(resizedSize(180, 300, 224)).toEqual([224, 373]);
  });
});

describe("settings", () => {
  it("reads the fixture's file, defaults and the old integer form alike", async () => {
    expect(await readClipImageConfig(PRE)).toEqual(CLIP_IMAGE_DEFAULTS);
    expect(parseClipImageConfig({ size: 224, crop_size: 224, feature_extractor_type: "CLIPFeatureExtractor" })).toEqual(CLIP_IMAGE_DEFAULTS);
    expect(CLIP_IMAGE_DEFAULTS).toMatchObject({ shortestEdge: 224, crop: { height: 224, width: 224 }, resample: "bicubic", rescaleFactor: 1 / 255 });
    const c = parseClipImageConfig({ size: { shortest_edge: 336 }, crop_size: { height: 300, width: 336 }, resample: 2, image_mean: 0.5, image_std: [1, 2, 3] });
    expect(c).toMatchObject({ shortestEdge: 336, crop: { height: 300, width: 336 }, resample: "bilinear", mean: [0.5, 0.5, 0.5], std: [1, 2, 3] });
  });

  it("names the file and the field of a bad setting", async () => {
    expect(() => parseClipImageConfig({ resample: 0 }, "p.json")).toThrow(new ImageError("preprocess: expected resample among 1 (lanczos), 2 (bilinear), 3 (bicubic), 4 (box), 5 (hamming) in p.json, got 0 (NEAREST is not supported)"));
    expect(() => parseClipImageConfig({ size: { height: 224, width: 224 } }, "p.json")).toThrow(
      'preprocess: expected size {"shortest_edge": n} or an integer in p.json (CLIPImageProcessor resizes the short side), got {"height":224,"width":224}',
    );
    expect(() => parseClipImageConfig({ image_mean: [0.5, 0.5] }, "p.json")).toThrow(/^preprocess: expected CLIPImageProcessor settings in p\.json, got image_mean: /);
    expect(() => parseClipImageConfig([], "p.json")).toThrow(/^preprocess: expected CLIPImageProcessor settings in p\.json, got the top level: /);
    await expect(readClipImageConfig(join(PRE, "nope"))).rejects.toThrow(`preprocess: expected a preprocessor_config.json at ${join(PRE, "nope")}, got no such file`);
  });
});

describe("centre crop", () => {
  const img = (width: number, height: number) => ({ width, height, data: Uint8Array.from({ length: width * height * 3 }, (_, i) => 1 + (i % 250)) });

  it("crops (H − ch) // 2 from the top and (W − cw) // 2 from the left", () => {
    const p = new CLIPImageProcessor({ ...CLIP_IMAGE_DEFAULTS, doResize: false, crop: { height: 2, width: 3 } });
    const src = img(6, 5); // top = 1, left = 1
    const out = p.resizeAndCrop(src);
    expect([out.width, out.height]).toEqual([3, 2]);
    expect(Array.from(out.data.subarray(0, 3))).toEqual(Array.from(src.data.subarray((1 * 6 + 1) * 3, (1 * 6 + 1) * 3 + 3)));
  });

  it("zero-pads an image smaller than the crop, placed at ceil((crop − size) / 2), to exactly the crop size", () => {
    const p = new CLIPImageProcessor({ ...CLIP_IMAGE_DEFAULTS, doResize: false, crop: { height: 8, width: 4 } });
    const src = img(6, 5); // rows: pad 3 → image at row 2 (ceil(1.5)); columns: crop left 1
    const out = p.resizeAndCrop(src);
    expect([out.width, out.height]).toEqual([4, 8]);
    const at = (x: number, y: number) => Array.from(out.data.subarray((y * 4 + x) * 3, (y * 4 + x) * 3 + 3));
    for (const y of [0, 1, 7]) expect(at(0, y)).toEqual([0, 0, 0]);
    expect(at(0, 2)).toEqual(Array.from(src.data.subarray(3, 6)));
    expect(at(3, 6)).toEqual(Array.from(src.data.subarray((4 * 6 + 4) * 3, (4 * 6 + 4) * 3 + 3)));
    const px = p.normalize(out);
    expect(px.data[0]).toBeCloseTo(-0.48145466 / 0.26862954, 6); // padding is uint8 0, normalised
    expect(px.data.length).toBe(3 * 8 * 4);
  });

  it("gives [3, 224, 224] for any input size, including one pixel", async () => {
    const p = new CLIPImageProcessor();
    for (const [w, h] of [[1, 1], [1, 500], [225, 224], [3, 2]] as const) expect(p.pixelValues(img(w, h)).data.length).toBe(3 * 224 * 224);
  });
});
