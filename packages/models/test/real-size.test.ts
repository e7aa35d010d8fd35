// Real-size checkpoints (random weights, the hub files' keys and shapes): distilgpt2 and
// openai/clip-vit-base-patch16 are written by writeRandomCheckpoint, loaded by fromPretrained,
// run once, and checked for output shapes, finiteness, the written values at sampled positions
// and peak host memory during the load (< 2x the file). gpt2 and clip-vit-large-patch14 are
// only in the `load` bench (apps/bench), being larger; their configs and tensor lists are
// checked here without writing them.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Tensor, init, tensor, tidy } from "@llms-eye/tensor";
import { type Var, noGrad } from "@llms-eye/autograd";
import { parseCLIPConfig, parseGPT2Config } from "../src/config.js";
import { GPT2LMHeadModel } from "../src/gpt2.js";
import { CLIPModel } from "../src/clip.js";
import { readSafetensorsHeader } from "../src/safetensors.js";
import {
  REAL_CONFIGS,
  REAL_MODELS,
  type RandomTensorSpec,
  measurePeakRss,
  randomValueAt,
  realCheckpointTensors,
  writeRandomCheckpoint,
} from "../src/real-configs.js";

const ROOT = mkdtempSync(join(tmpdir(), "real-size-"));
const MB = 1e6;
const allFinite = (a: ArrayLike<number>): boolean => Array.from(a).every(Number.isFinite);
const host = async (v: Var | Tensor): Promise<Float32Array> => (await ("value" in v ? v.value : v).toArray()) as Float32Array;
const count = (s: RandomTensorSpec): number => s.shape.reduce((a, b) => a * b, 1);

/** The loaded parameter `p` holds the written values at its first, last and a few middle positions. */
async function expectWritten(p: Tensor, spec: RandomTensorSpec): Promise<void> {
  const got = (await p.toArray()) as Float32Array;
  const n = count(spec);
  expect(got.length).toBe(n);
  for (const i of [0, 1, n >> 1, n - 7, n - 1]) expect(got[i], `${spec.name}[${i}]`).toBe(randomValueAt(spec, i));
}

beforeAll(async () => {
  await init();
});
afterAll(() => rmSync(ROOT, { recursive: true, force: true }));

describe("real configs", () => {
  it("parse into the published sizes and list the hub files' parameter counts", () => {
    const params = (name: (typeof REAL_MODELS)[number]): number =>
      realCheckpointTensors(name)
        .filter((s) => !/\.attn\.bias$|position_ids$/.test(s.name))
        .reduce((a, s) => a + count(s), 0);
    const d = parseGPT2Config(REAL_CONFIGS.distilgpt2, "distilgpt2");
    expect([d.nLayer, d.nEmbd, d.nHead, d.vocabSize, d.nPositions]).toEqual([6, 768, 12, 50257, 1024]);
    expect(parseGPT2Config(REAL_CONFIGS.gpt2, "gpt2").nLayer).toBe(12);
    const b = parseCLIPConfig(REAL_CONFIGS["clip-vit-base-patch16"], "b16");
    expect([b.vision.hiddenSize, b.vision.numHiddenLayers, b.vision.numAttentionHeads, b.vision.patchSize, b.vision.imageSize, b.vision.intermediateSize]).toEqual([768, 12, 12, 16, 224, 3072]);
    expect([b.projectionDim, b.text.hiddenSize, b.text.numHiddenLayers, b.text.numAttentionHeads, b.text.vocabSize]).toEqual([512, 512, 12, 8, 49408]);
    const l = parseCLIPConfig(REAL_CONFIGS["clip-vit-large-patch14"], "l14");
    expect([l.vision.hiddenSize, l.vision.numHiddenLayers, l.vision.numAttentionHeads, l.vision.patchSize, l.vision.intermediateSize]).toEqual([1024, 24, 16, 14, 4096]);
    expect([l.projectionDim, l.text.hiddenSize, l.text.numHiddenLayers, l.text.numAttentionHeads]).toEqual([768, 768, 12, 12]);
    // The parameter counts of the real models (HF's num_parameters()).
    expect(params("distilgpt2")).toBe(81_912_576);
    expect(params("gpt2")).toBe(124_439_808);
    expect(params("clip-vit-base-patch16")).toBe(149_620_737);
    expect(params("clip-vit-large-patch14")).toBe(427_616_513);
  });
});

describe("distilgpt2-size checkpoint", () => {
  it("writes, loads under 2x the file in host memory, and runs a forward pass", async () => {
    const ck = await writeRandomCheckpoint("distilgpt2", join(ROOT, "distilgpt2"));
    const { tensors } = await readSafetensorsHeader(ck.file);
    expect(tensors.size).toBe(realCheckpointTensors("distilgpt2").length);
    expect(tensors.get("h.5.attn.bias")).toMatchObject({ dtype: "F32", shape: [1, 1, 1024, 1024] });

    const { result: model, peakAbove, ms } = await measurePeakRss(() => GPT2LMHeadModel.fromPretrained(ck.dir));
    try {
      console.log(`distilgpt2: file ${(ck.bytes / MB).toFixed(0)} MB, load ${(ms / 1e3).toFixed(2)} s, peak +${(peakAbove / MB).toFixed(0)} MB = ${(peakAbove / ck.bytes).toFixed(2)}x file`);
      expect(peakAbove).toBeLessThan(2 * ck.bytes);

      const specs = new Map(realCheckpointTensors("distilgpt2").map((s) => [s.name, s]));
      await expectWritten(model.transformer.h[5]!.mlp.c_fc.bias!.value, specs.get("h.5.mlp.c_fc.bias")!);
      await expectWritten(model.transformer.ln_f.weight.value, specs.get("ln_f.weight")!);
      await expectWritten(model.transformer.wpe.weight.value, specs.get("wpe.weight")!);

      const ids = tensor(Int32Array.from([464, 2068, 7586, 21831, 18045, 625, 262, 16931]), [1, 8], "i32");
      const logits = noGrad(() => tidy(() => model.forward({ ids }).logits!.value));
      ids.dispose();
      expect(logits.shape).toEqual([1, 8, 50257]);
      expect(allFinite(await host(logits))).toBe(true);
      logits.dispose();
    } finally {
      model.dispose();
      rmSync(ck.dir, { recursive: true, force: true });
    }
  });
});

describe("clip-vit-base-patch16-size checkpoint", () => {
  let model: CLIPModel;
  let pixels: Tensor;
  let load: { bytes: number; peakAbove: number; ms: number };
  beforeAll(async () => {
    const ck = await writeRandomCheckpoint("clip-vit-base-patch16", join(ROOT, "clip-b16"));
    const r = await measurePeakRss(() => CLIPModel.fromPretrained(ck.dir));
    model = r.result;
    load = { bytes: ck.bytes, peakAbove: r.peakAbove, ms: r.ms };
    rmSync(ck.dir, { recursive: true, force: true });
    pixels = tensor(Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.sin(i) * 1.5), [1, 3, 224, 224]);
  });
  afterAll(() => {
    model?.dispose();
    pixels?.dispose();
  });

  it("loads the full CLIPModel under 2x the file in host memory, with the written values", async () => {
    const { bytes, peakAbove, ms } = load;
    console.log(`clip-vit-base-patch16: file ${(bytes / MB).toFixed(0)} MB, load ${(ms / 1e3).toFixed(2)} s, peak +${(peakAbove / MB).toFixed(0)} MB = ${(peakAbove / bytes).toFixed(2)}x file`);
    expect(peakAbove).toBeLessThan(2 * bytes);
    const specs = new Map(realCheckpointTensors("clip-vit-base-patch16").map((s) => [s.name, s]));
    await expectWritten(model.vision_model.embeddings.class_embedding.value, specs.get("vision_model.embeddings.class_embedding")!);
    await expectWritten(model.text_projection.weight.value, specs.get("text_projection.weight")!);
    await expectWritten(model.vision_model.embeddings.patch_embedding.weight.value, specs.get("vision_model.embeddings.patch_embedding.weight")!);
    expect(await model.logit_scale.value.item()).toBeCloseTo(Math.log(100), 5);
  });

  it("runs a 224x224 image through the vision tower (every hidden state, the penultimate one, image_embeds)", async () => {
    const out = noGrad(() =>
      tidy(() => {
        const v = model.vision_model.forward(pixels);
        return { hs: v.hiddenStates.map((h) => h.value), image: model.visual_projection.forward(v.poolerOutput!).value };
      }),
    );
    expect(out.hs).toHaveLength(13);
    expect(out.hs[11]!.shape).toEqual([1, 197, 768]); // the VLM's penultimate layer
    expect(out.image.shape).toEqual([1, 512]);
    for (const t of [...out.hs, out.image]) {
      expect(allFinite(await host(t))).toBe(true);
      t.dispose();
    }
  });

  // The hub's CLIP configs carry text eos_token_id 2 (CLIPTextConfig's old default), for which
  // transformers 4.31 pools at input_ids.argmax(-1), i.e. at <|endoftext|> (49407).
  it("runs 8 tokens through the text tower under the hub config's legacy eos_token_id 2", async () => {
    expect(model.text_model._cfg.eosTokenId).toBe(2);
    const ids = [[49406, 320, 1125, 539, 320, 2368, 269, 49407]]; // <|startoftext|>a photo of a cat.<|endoftext|>
    const out = noGrad(() =>
      tidy(() => {
        const t = model.text_model.forward(ids);
        return { text: model.text_projection.forward(t.poolerOutput!).value, last: t.lastHiddenState!.value, pooled: t.poolerOutput!.value };
      }),
    );
    expect(out.text.shape).toEqual([1, 512]);
    expect((await host(out.pooled))).toEqual((await host(out.last)).slice(7 * 512, 8 * 512)); // pooled at 49407
    for (const t of Object.values(out)) {
      expect(allFinite(await host(t))).toBe(true);
      t.dispose();
    }
  });
});
