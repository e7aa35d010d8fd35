// The eye model against DESIGN.md's math: placeholder replacement, the LM loss on caption
// tokens only, the contrastive pass at the trailing <image>, pooling, freezing, generation,
// save/load. References are recomputed from GPT-2 / CLIP forwards (themselves HF-parity
// tested) with host float64 arithmetic.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Tensor, full, init, infoNCERef, randArray, tensor, tidy } from "@llms-eye/tensor";
import { AdamW, backward, noGrad, param } from "@llms-eye/autograd";
import { EyeModel, resizeTokenEmbeddings } from "../src/eye.js";
import { type EyeConfig, tinyEyeConfig } from "../src/eye-config.js";
import { eyeBatchIds, placeholderIndex } from "../src/eye-batch.js";
import { captionIds, imageEmbeddings, textEmbeddings } from "../src/eye-generate.js";
import { loadEyeModel, saveEyeModel, clipPreprocessorConfig } from "../src/eye-load.js";
import { GPT2LMHeadModel } from "../src/gpt2.js";
import { eyeTokenizer } from "../src/tokenizer.js";
import { HF_PARITY } from "./fixtures.js";

/** A small eye: 32x32 images in 8x8 patches (4x4 grid → 2x2 = 4 tokens), vocab 300 (<image> = 299, eos 298). */
function smallConfig(): EyeConfig {
  const t = tinyEyeConfig();
  return {
    ...t,
    gpt2: { ...t.gpt2, vocabSize: 300, nPositions: 24, nEmbd: 32, nHead: 4, nInner: 64, eosTokenId: 298, bosTokenId: 298 },
    vision: { ...t.vision, hiddenSize: 24, intermediateSize: 48, numHiddenLayers: 3, numAttentionHeads: 4, imageSize: 32, patchSize: 8 },
    poolFactor: 2,
    embedDim: 16,
    imageTokenId: 299,
    eosTokenId: 298,
  };
}

const host = async (t: Tensor): Promise<Float32Array> => (await t.toArray()) as Float32Array;
const pixels = (B: number, seed: number) => tensor(randArray(B * 3 * 32 * 32, seed), [B, 3, 32, 32]);

function logSoftmaxAt(row: Float32Array, target: number): number {
  let m = -Infinity;
  for (const v of row) m = Math.max(m, v);
  let s = 0;
  for (const v of row) s += Math.exp(v - m);
  return row[target]! - m - Math.log(s);
}

/**
 * Reference LM loss: GPT-2 on [image tokens, caption, eos] one row at a time (no padding),
 * softmax over the 300 real token rows of its logits (any rows past them are padding).
 */
async function referenceLmLoss(m: EyeModel, feats: Tensor): Promise<number> {
  const tok = await host(noGrad(() => m.imageTokens(feats)).value);
  const wte = await host(m.language_model.transformer.wte.weight.value);
  const V = m.language_model.config.vocabSize;
  let nll = 0;
  let n = 0;
  for (const [b, cap] of caps.entries()) {
    const ids = [...cap, 298];
    const rows: number[] = [];
    for (let k = 0; k < 4; k++) rows.push(...tok.subarray((b * 4 + k) * 32, (b * 4 + k + 1) * 32));
    for (const id of ids.slice(0, -1)) rows.push(...wte.subarray(id * 32, (id + 1) * 32));
    const T = 4 + ids.length - 1;
    const logits = await host(noGrad(() => m.language_model.forward({ inputsEmbeds: tensor(Float32Array.from(rows), [1, T, 32]) })).logits!.value);
    ids.forEach((target, j) => {
      nll -= logSoftmaxAt(logits.subarray((3 + j) * V, (3 + j) * V + 300), target);
      n++;
    });
  }
  return nll / n;
}

let model: EyeModel;
const caps = [[5, 6, 7], [8, 9], [10, 11, 12, 13]];

beforeAll(async () => {
  await init();
  model = new EyeModel(smallConfig(), { seed: 3 });
});

describe("batch layout", () => {
  it("puts K placeholders first, the caption, <|endoftext|>, and targets only the caption and <|endoftext|>", async () => {
    const b = eyeBatchIds([[5, 6], [7]], { imageId: 299, eosId: 298, K: 2, maxPositions: 24 });
    expect(b.captionRows).toEqual([[299, 299, 5, 6, 298], [299, 299, 7, 298, 298]]);
    expect(b.textRowsHost).toEqual([[5, 6, 298, 299], [7, 298, 299, 298]]);
    expect(Array.from(await b.lmRows.toArray())).toEqual([1, 2, 3, 6, 7]); // row·Tc + K-1+j, Tc = 5
    expect(Array.from(await b.lmTargets.toArray())).toEqual([5, 6, 298, 7, 298]);
    expect(Array.from(await b.textRows.toArray())).toEqual([3, 6]); // row·Tt + L + 1, Tt = 4
  });

  it("gathers image token j of row b at the j-th placeholder and refuses a count mismatch", () => {
    expect(Array.from(placeholderIndex([[1, 299, 2, 299]], 299, 2))).toEqual([0, 4, 2, 5]);
    expect(() => placeholderIndex([[1, 299, 2]], 299, 2)).toThrow(/expected 2 <image> placeholders in row 0.*got 1/);
    expect(() => placeholderIndex([[299, 299, 299]], 299, 2)).toThrow(/got 3/);
    expect(() => eyeBatchIds([[299]], { imageId: 299, eosId: 298, K: 2, maxPositions: 24 })).toThrow(/contains the <image> token/);
    expect(() => eyeBatchIds([Array(30).fill(1)], { imageId: 299, eosId: 298, K: 2, maxPositions: 24 })).toThrow(/truncate captions to 21 tokens/);
  });
});

describe("forward", () => {
  it("pools the penultimate layer's patch grid f x f, dropping CLS", async () => {
    const px = pixels(2, 1);
    const feats = await host(tidy(() => model.imageFeatures(px).value));
    const hs = noGrad(() => model.vision_model.forward(px).hiddenStates);
    const h = await host(hs[2]!.value); // penultimate of 3 layers: hidden_states[2]
    const [T, C, G] = [17, 24, 4];
    for (const [b, k, c] of [[0, 0, 0], [1, 3, 23], [0, 2, 5]] as const) {
      const [R, Cc] = [Math.floor(k / 2), k % 2];
      let s = 0;
      for (const i of [0, 1]) for (const j of [0, 1]) s += h[(b * T + 1 + (R * 2 + i) * G + Cc * 2 + j) * C + c]!;
      expect(feats[(b * 4 + k) * C + c]).toBeCloseTo(s / 4, 5);
    }
  });

  it("LM loss = mean cross-entropy of caption tokens + <|endoftext|> after K image tokens", async () => {
    const feats = tidy(() => model.imageFeatures(pixels(3, 2)).value);
    const loss = await tidy(() => model.forward(feats, caps, { lambda: 0 }).loss.value).item();
    expect(loss).toBeCloseTo(await referenceLmLoss(model, feats), 4);
  });

  it("padding rows past <image> (tiny's 50304) are no class: loss over the real rows, zero gradient, never generated", async () => {
    const cfg = smallConfig();
    const padded = new EyeModel({ ...cfg, gpt2: { ...cfg.gpt2, vocabSize: 320 } }, { seed: 3 });
    const wte = padded.language_model.transformer.wte;
    // padding rows that would win every argmax if they were classes: ln_f's output is x̂ + 0.5
    // (x̂ has zero mean), so a padding row of 5s scores 5 · 0.5 · 32 = 80
    padded.language_model.transformer.ln_f.bias = param(full([32], 0.5));
    const w = await host(wte.weight.value);
    w.fill(5, 300 * 32);
    wte.weight = param(tensor(w, [320, 32]));
    const feats = tidy(() => padded.imageFeatures(pixels(3, 2)).value);
    const loss = tidy(() => {
      const l = padded.forward(feats, caps, { lambda: 0 }).loss;
      backward(l);
      return l.value;
    });
    const grad = await host(wte.weight.grad!);
    expect(grad.subarray(300 * 32).every((g) => g === 0)).toBe(true);
    expect(grad.subarray(0, 300 * 32).some((g) => g !== 0)).toBe(true);
    expect(await loss.item()).toBeCloseTo(await referenceLmLoss(padded, feats), 4);
    const out = await captionIds(padded, feats, { maxNewTokens: 6, strategy: "greedy" });
    expect(out.flat().every((id) => id < 299)).toBe(true);
  });

  it("reads the text embedding at the trailing <image>, unaffected by right padding, and InfoNCE matches its reference", async () => {
    const feats = tidy(() => model.imageFeatures(pixels(3, 4)).value);
    const batch = model.batchIds(caps);
    const txt = await host(noGrad(() => model.textEmbeds(batch.textIds, batch.textRows)).value);
    for (const [b, cap] of caps.entries()) {
      const one = model.batchIds([cap]);
      const alone = await host(noGrad(() => model.textEmbeds(one.textIds, one.textRows)).value);
      for (let e = 0; e < 16; e++) expect(txt[b * 16 + e]).toBeCloseTo(alone[e]!, 5);
    }
    const out = tidy(() => {
      const o = model.forward(feats, caps, { lambda: 0.5 });
      return [o.loss.value, o.lm.value, o.infoNCE!.value];
    });
    const [total, lm, nce] = await Promise.all(out.map((t) => t.item()));
    const img = await host(noGrad(() => model.imageEmbeds(model.imageTokens(feats))).value);
    expect(nce).toBeCloseTo(infoNCERef(img, txt, 3, 16, Math.log(1 / 0.07)).loss, 4);
    expect(total).toBeCloseTo(lm! + 0.5 * nce!, 5);
  });
});

describe("training", () => {
  it("keeps a frozen vision tower fixed, trains only the top unfrozen layers, and fits a small batch", async () => {
    const m = new EyeModel(smallConfig(), { seed: 5 });
    m.setVisionTrainable(1); // layer 1 (the top one below the penultimate output) trains, layer 0 not
    const named = new Map(m.namedParameters());
    const before = async (n: string) => host(named.get(n)!.value);
    const l0 = await before("vision_model.encoder.layers.0.mlp.fc1.weight");
    const l1 = await before("vision_model.encoder.layers.1.mlp.fc1.weight");
    const opt = new AdamW(m.parameters().filter((p) => p.requiresGrad), { lr: 1e-2, weightDecay: 0 });
    const px = pixels(3, 9);
    let first = 0;
    let last = 0;
    for (let s = 0; s < 80; s++) {
      const l = tidy(() => {
        const o = m.forward(m.imageFeatures(px), caps, { lambda: 1 });
        backward(o.loss);
        opt.step();
        return o.loss.value;
      });
      opt.zeroGrad();
      if (s === 0) first = await l.item();
      if (s === 79) last = await l.item();
      l.dispose();
    }
    expect(last).toBeLessThan(first * 0.3);
    expect(await before("vision_model.encoder.layers.0.mlp.fc1.weight")).toEqual(l0);
    expect(await before("vision_model.encoder.layers.1.mlp.fc1.weight")).not.toEqual(l1);
    // greedy captions reproduce the fitted captions; embeddings retrieve their pair
    const feats = tidy(() => m.imageFeatures(px).value);
    expect(await captionIds(m, feats, { maxNewTokens: 8 })).toEqual(caps);
    expect(await captionIds(m, feats, { maxNewTokens: 8, strategy: "beam", numBeams: 2 })).toEqual(caps);
    const img = await host(imageEmbeddings(m, feats));
    const txt = await host(textEmbeddings(m, caps));
    for (let i = 0; i < 3; i++) {
      const sims = [0, 1, 2].map((j) => Array.from({ length: 16 }, (_, e) => img[i * 16 + e]! * txt[j * 16 + e]!).reduce((a, b) => a + b, 0));
      expect(sims.indexOf(Math.max(...sims))).toBe(i);
    }
    opt.dispose();
  }, 60_000);
});

describe("storage and tokenizer", () => {
  let dir: string;
  beforeAll(async () => (dir = await mkdtemp(join(tmpdir(), "eye-"))));
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it("saves and loads a self-contained model with identical outputs; a damaged file is one clear error", async () => {
    const out = join(dir, "m");
    await saveEyeModel(model, out, clipPreprocessorConfig(32));
    const { model: back, preprocessor } = await loadEyeModel(out);
    expect(preprocessor.crop_size).toEqual({ height: 32, width: 32 });
    const feats = tidy(() => model.imageFeatures(pixels(2, 7)).value);
    const a = await tidy(() => model.forward(feats, caps.slice(0, 2)).loss.value).item();
    const b = await tidy(() => back.forward(feats, caps.slice(0, 2)).loss.value).item();
    expect(b).toBe(a);
    await writeFile(join(out, "model.safetensors"), "garbage");
    await expect(loadEyeModel(out)).rejects.toThrow(/model\.safetensors/);
    await expect(loadEyeModel(join(dir, "none"))).rejects.toThrow(/expected a saved eye model in .*none.*eye train/);
  });

  it("adds <image> to a pretrained GPT-2 as the mean embedding row (tied head follows)", async () => {
    const g = new GPT2LMHeadModel({ ...smallConfig().gpt2, vocabSize: 299 }, { seed: 1 });
    const w = await host(g.transformer.wte.weight.value);
    resizeTokenEmbeddings(g, 300);
    const w2 = await host(g.transformer.wte.weight.value);
    expect(w2.subarray(0, w.length)).toEqual(w);
    const mean0 = Array.from({ length: 299 }, (_, i) => w[i * 32]!).reduce((a, b) => a + b, 0) / 299;
    expect(w2[299 * 32]).toBeCloseTo(mean0, 5);
    expect(g.config.vocabSize).toBe(300);
  });

  it("bundles GPT-2's tokenizer: ids equal HF on the fixture cases, <image> is 50257", async () => {
    const tok = await eyeTokenizer();
    expect(tok.imageId).toBe(50257);
    const cases = JSON.parse(readFileSync(join(HF_PARITY, "tokenizer", "cases.json"), "utf8")).cases as { text: string; ids: number[] }[];
    for (const c of cases) expect(tok.encode(c.text)).toEqual(c.ids);
  });
});
