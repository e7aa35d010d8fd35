// load: loading a Hugging Face checkpoint of a real model's size from disk into the engine —
// op `load_checkpoint`, shapes distilgpt2, gpt2, clip-vit-base-patch16, clip-vit-large-patch14
// (--quick: distilgpt2 only; tiny: the hf-parity fixture's gpt2 dir). The real files cannot be
// downloaded here, so each is written once, with the hub file's keys, shapes and dtypes and
// seeded random weights (writeRandomCheckpoint), into <tmpdir>/llms-eye-bench-load/ and reused
// by later runs (written into a temporary folder, then renamed: a folder there is complete).
// One run = fromPretrained(dir) (GPT2LMHeadModel, or the full CLIPModel), timed alone, then
// the model is disposed. Validation (the first warm-up) also runs one small forward — gpt2:
// 1x8 ids → logits (1, 8, V); clip: one 224x224 image through the vision tower and 8 tokens
// through the text tower → both embeddings (1, E) — checks it is finite and of that shape,
// and checks sampled loaded parameters against the values written (randomValueAt).
// Memory: peak resident set size above the RSS just before the load (measurePeakRss: RSS
// sampled every 2 ms by a timer, plus the process's lifetime peak, resourceUsage().maxRSS,
// when the load raised it), as a ratio to the file size (the target is ≤ 2x). On lavapipe the
// GPU buffers are host memory, so the uploaded weights count: 1x is the floor.
// Work: bytes = the file's size, so GB/s is checkpoint bytes read per second of load.
import { tmpdir } from "node:os";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { stat } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { type Tensor, device, tensor, tidy } from "@llms-eye/tensor";
import { type Module, noGrad } from "@llms-eye/autograd";
import {
  CLIPModel,
  GPT2LMHeadModel,
  type RealModelName,
  type RandomTensorSpec,
  cachedRandomCheckpoint,
  measurePeakRss,
  randomValueAt,
  realCheckpointTensors,
} from "@llms-eye/models";
import type { Family, OurCase, Preset } from "./bench.js";
import { ValidationError, fmtNum } from "./harness.js";

const CACHE = join(tmpdir(), "llms-eye-bench-load");
const MB = 1e6;
const SHAPES: Record<Preset, (RealModelName | "tiny-gpt2")[]> = {
  full: ["distilgpt2", "gpt2", "clip-vit-base-patch16", "clip-vit-large-patch14"],
  quick: ["distilgpt2"],
  tiny: ["tiny-gpt2"],
};
// The shared fixtures, found as packages/models/test/fixtures.ts finds them: $EYE_FIXTURES,
// else ../shared/fixtures beside the repository, else /work/shared/fixtures.
function fixturesDir(): string {
  const candidates = [process.env.EYE_FIXTURES, fileURLToPath(new URL("../../../../shared/fixtures", import.meta.url)), "/work/shared/fixtures"];
  const hit = candidates.find((p) => p !== undefined && existsSync(join(p, "hf-parity", "gpt2", "model.safetensors")));
  if (!hit) throw new Error(`load: expected the shared fixtures (hf-parity/gpt2) under one of ${candidates.filter(Boolean).join(", ")}; set EYE_FIXTURES`);
  return hit;
}

type Loaded = GPT2LMHeadModel | CLIPModel;

async function host(t: Tensor): Promise<Float32Array> {
  return (await t.toArray()) as Float32Array;
}

function expectOutput(what: string, t: Tensor, shape: number[], data: Float32Array): void {
  if (t.shape.join("x") !== shape.join("x")) throw new ValidationError(`${what}: expected shape [${shape.join(", ")}], got [${t.shape.join(", ")}]`);
  const bad = data.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) throw new ValidationError(`${what}: expected finite values, got ${data[bad]} at index ${bad}`);
}

/** One small forward; throws ValidationError on a wrong shape or a non-finite value. */
async function smallForward(model: Loaded): Promise<void> {
  if (model instanceof GPT2LMHeadModel) {
    const ids = tensor(Int32Array.from([464, 2068, 7586, 21831, 18045, 625, 262, 16931]), [1, 8], "i32");
    const logits = noGrad(() => tidy(() => model.forward({ ids }).logits!.value));
    ids.dispose();
    try {
      expectOutput("gpt2 logits", logits, [1, 8, model.config.vocabSize], await host(logits));
    } finally {
      logits.dispose();
    }
    return;
  }
  const S = model._cfg.vision.imageSize;
  const pixels = tensor(Float32Array.from({ length: 3 * S * S }, (_, i) => Math.sin(i) * 1.5), [1, 3, S, S]);
  const ids = [[49406, 320, 1125, 539, 320, 2368, 269, 49407]]; // <|startoftext|>a photo of a cat.<|endoftext|>
  const out = noGrad(() => tidy(() => [model.getImageFeatures(pixels).value, model.getTextFeatures(ids).value]));
  pixels.dispose();
  try {
    for (const [i, t] of out.entries()) expectOutput(i ? "clip text_embeds" : "clip image_embeds", t, [1, model._cfg.projectionDim], await host(t));
  } finally {
    out.forEach((t) => t.dispose());
  }
}

/** The loaded parameters hold the written values at a few positions of a few tensors. */
async function checkValues(model: Module, specs: RandomTensorSpec[]): Promise<void> {
  const params = new Map(model.namedParameters("", false));
  const rename = (n: string): string => (model instanceof GPT2LMHeadModel ? `transformer.${n}` : n);
  const picked = specs.filter((s) => /(^|\.)(wpe\.weight|ln_f\.bias|c_fc\.bias|class_embedding|text_projection\.weight|post_layernorm\.weight)$/.test(s.name));
  if (picked.length < 3) throw new ValidationError(`load: expected at least 3 tensors to check, found ${picked.length}`);
  for (const s of picked) {
    const p = params.get(rename(s.name));
    if (!p) throw new ValidationError(`load: expected a parameter for ${s.name}, found none`);
    const got = await host(p.value);
    const n = got.length;
    for (const i of [0, n >> 1, n - 1]) {
      const want = randomValueAt(s, i);
      if (got[i] !== want) throw new ValidationError(`load: ${s.name}[${i}] got ${got[i]} want ${want}`);
    }
  }
}

export function loadCase(name: RealModelName | "tiny-gpt2"): OurCase {
  const note: string[] = [];
  return {
    op: "load_checkpoint",
    shape: name,
    work: { bytes: 0 }, // set in setup, once the file exists
    get note() {
      return note.join("; ");
    },
    async setup() {
      const tiny = name === "tiny-gpt2";
      const dir = tiny ? join(fixturesDir(), "hf-parity", "gpt2") : (await cachedRandomCheckpoint(name, CACHE)).dir;
      const bytes = (await stat(join(dir, "model.safetensors"))).size;
      this.work.bytes = bytes;
      const isClip = name.startsWith("clip");
      const load = (): Promise<Loaded> => (isClip ? CLIPModel.fromPretrained(dir) : GPT2LMHeadModel.fromPretrained(dir));
      const peaks: number[] = [];
      const timed = async (): Promise<Loaded> => {
        const { result, peakAbove } = await measurePeakRss(load);
        peaks.push(peakAbove);
        note.length = 0;
        const worst = Math.max(...peaks);
        note.push(`peak +${fmtNum(worst / MB)} MB = ${(worst / bytes).toFixed(2)}x file (${fmtNum(bytes / MB)} MB)`);
        return result;
      };
      return {
        async validate() {
          const model = await timed();
          try {
            await smallForward(model);
            if (!tiny) await checkValues(model, realCheckpointTensors(name));
          } finally {
            model.dispose();
          }
        },
        async step() {
          (await timed()).dispose();
          await device().sync();
        },
      };
    },
  };
}

export const family: Family = {
  name: "load",
  cases: (preset) => SHAPES[preset].map(loadCase),
};
