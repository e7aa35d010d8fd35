// Parity of the CLIP image preprocessing against a directory in the format of
// shared/fixtures/hf-parity/preprocess (its README): preprocessor_config.json, the image files,
// and reference.safetensors with `pixel_values.<file>` [3, H, W] F32 (HF CLIPImageProcessor) and
// `rgb.<file>` [H, W, 3] U8 (PIL's decode). Per image two rows, in the models package's
// ParityRow shape (group "preprocess"): `pixel_values.<file>` runs the whole pipeline from the
// file (our decoder), `pixel_values.<file> (from rgb)` starts from PIL's decoded pixels, so a
// decoder difference and a resize difference show apart. Tolerance: one uint8 level after
// normalisation (1/255/min std ≈ 0.0150, rounded up to 0.016).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type HostTensor, type ParityRow, readSafetensors } from "@llms-eye/models";
import { CLIPImageProcessor } from "./clip-processor.js";
import { ImageError } from "./decode.js";

export const PREPROCESS_TOLERANCE = 0.016;

function maxAbsDiff(got: Float32Array, want: HostTensor): number {
  let m = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i]! - want.data[i]!);
    if (!(d <= m)) m = d; // NaN sticks
  }
  return m;
}

function row(name: string, want: HostTensor, got: () => Promise<Float32Array>): Promise<ParityRow> {
  const base = { group: "preprocess", name, tol: PREPROCESS_TOLERANCE };
  return got().then(
    (data) => {
      if (data.length !== want.data.length) return { ...base, maxAbs: null, ok: false, note: `${data.length} values, reference [${want.shape.join(", ")}]` };
      const maxAbs = maxAbsDiff(data, want);
      return { ...base, maxAbs, ok: maxAbs <= PREPROCESS_TOLERANCE };
    },
    (e: Error) => ({ ...base, maxAbs: null, ok: false, note: e.message }),
  );
}

/** Two rows per `pixel_values.<file>` of `<dir>/reference.safetensors` (dir = the preprocess/ folder). */
export async function runPreprocessParity(dir: string): Promise<ParityRow[]> {
  const refFile = join(dir, "reference.safetensors");
  for (const f of [refFile, join(dir, "preprocessor_config.json")]) {
    if (!existsSync(f)) throw new ImageError(`parity: expected ${f} (the hf-parity preprocess/ format, see its README), got no such file`);
  }
  const ref = await readSafetensors(refFile);
  const processor = await CLIPImageProcessor.fromPretrained(dir);
  const rows: ParityRow[] = [];
  for (const [key, want] of ref) {
    if (!key.startsWith("pixel_values.")) continue;
    const file = key.slice("pixel_values.".length);
    rows.push(await row(key, want, () => processor.preprocess(join(dir, file))));
    const rgb = ref.get(`rgb.${file}`);
    if (!rgb) {
      rows.push({ group: "preprocess", name: `${key} (from rgb)`, maxAbs: null, tol: PREPROCESS_TOLERANCE, ok: false, note: `rgb.${file} not in ${refFile}` });
      continue;
    }
    const [height, width] = rgb.shape as [number, number];
    rows.push(await row(`${key} (from rgb)`, want, async () => processor.pixelValues({ width, height, data: rgb.data as Uint8Array }).data));
  }
  if (rows.length === 0) throw new ImageError(`parity: expected pixel_values.<file> tensors in ${refFile}, got keys ${[...ref.keys()].join(", ")}`);
  return rows;
}
