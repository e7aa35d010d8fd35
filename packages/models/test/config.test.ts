// config.json parsing: the fixture configs, configs shaped like the hub's distilgpt2 / gpt2 /
// clip-vit-base-patch16 (legacy *_config_dict) / clip-vit-large-patch14, HF defaults for absent
// or null keys, random valid GPT-2 configs, and one clear ConfigError per unsupported value.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { ConfigError, parseCLIPConfig, parseGPT2Config, readConfig } from "../src/config.js";
import { HF_PARITY } from "./fixtures.js";

const TMP = mkdtempSync(join(tmpdir(), "config-test-"));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const SRC = "/m/config.json";
const gpt2Error = (json: unknown): string => {
  try {
    parseGPT2Config(json, SRC);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error("expected a ConfigError");
};
const clipError = (json: unknown): string => {
  try {
    parseCLIPConfig(json, SRC);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error("expected a ConfigError");
};

describe("GPT-2", () => {
  it("parses the fixture config", async () => {
    const { modelType, raw } = await readConfig(join(HF_PARITY, "gpt2"));
    expect(modelType).toBe("gpt2");
    expect(parseGPT2Config(raw, "gpt2/config.json")).toEqual({
      vocabSize: 50257, nPositions: 64, nEmbd: 32, nLayer: 2, nHead: 4, nInner: 128, layerNormEpsilon: 1e-5,
      activation: "gelu_new", bosTokenId: 50256, eosTokenId: 50256, tieWordEmbeddings: true, scaleAttnWeights: true,
    });
  });

  it("fills HF's defaults (gpt2 small) for absent and null keys, as distilgpt2's config relies on", () => {
    const base = parseGPT2Config({}, SRC);
    expect(base).toMatchObject({ vocabSize: 50257, nPositions: 1024, nEmbd: 768, nLayer: 12, nHead: 12, nInner: 3072, activation: "gelu_new" });
    // distilgpt2's config.json (abridged): n_ctx is legacy and unread, task params are ignored
    const distil = { _num_labels: 1, activation_function: "gelu_new", architectures: ["GPT2LMHeadModel"], attn_pdrop: 0.1, bos_token_id: 50256, embd_pdrop: 0.1, eos_token_id: 50256, id2label: { 0: "LABEL_0" }, initializer_range: 0.02, layer_norm_epsilon: 1e-5, model_type: "gpt2", n_ctx: 1024, n_embd: 768, n_head: 12, n_layer: 6, n_positions: 1024, resid_pdrop: 0.1, summary_activation: null, task_specific_params: { "text-generation": { do_sample: true, max_length: 50 } }, vocab_size: 50257 };
    expect(parseGPT2Config(distil, SRC)).toEqual({ ...base, nLayer: 6 });
    expect(parseGPT2Config({ n_embd: 64, n_head: 4, n_inner: null }, SRC).nInner).toBe(256);
    expect(parseGPT2Config({ activation_function: "gelu_pytorch_tanh", tie_word_embeddings: false }, SRC)).toMatchObject({ activation: "gelu_pytorch_tanh", tieWordEmbeddings: false });
  });

  it("maps any valid config's keys to the typed fields", () => {
    fc.assert(
      fc.property(
        fc.record({ nHead: fc.integer({ min: 1, max: 16 }), d: fc.integer({ min: 1, max: 64 }), nLayer: fc.integer({ min: 1, max: 48 }), vocab: fc.integer({ min: 1, max: 1e6 }), pos: fc.integer({ min: 1, max: 1e5 }), inner: fc.option(fc.integer({ min: 1, max: 1e4 })), eps: fc.double({ min: 1e-12, max: 1e-2, noNaN: true }), tie: fc.boolean() }),
        (c) => {
          const json = { n_head: c.nHead, n_embd: c.nHead * c.d, n_layer: c.nLayer, vocab_size: c.vocab, n_positions: c.pos, n_inner: c.inner, layer_norm_epsilon: c.eps, tie_word_embeddings: c.tie };
          expect(parseGPT2Config(json, SRC)).toMatchObject({ nHead: c.nHead, nEmbd: c.nHead * c.d, nLayer: c.nLayer, vocabSize: c.vocab, nPositions: c.pos, nInner: c.inner ?? 4 * c.nHead * c.d, layerNormEpsilon: c.eps, tieWordEmbeddings: c.tie });
        },
      ),
    );
  });

  it("refuses unsupported values with one message naming the file, key, value and what is supported", () => {
    expect(gpt2Error({ activation_function: "relu" })).toBe(
      `config: expected "gelu_new" or "gelu_pytorch_tanh" or "gelu" (the engine's GELU is the tanh form; "gelu" (erf) is refused by the model) for "activation_function" in ${SRC}, got "relu"`,
    );
    expect(gpt2Error({ scale_attn_weights: false })).toBe(`config: expected true (attention scores are always scaled by 1/sqrt(head size)) for "scale_attn_weights" in ${SRC}, got false`);
    expect(gpt2Error({ scale_attn_by_inverse_layer_idx: true })).toContain('for "scale_attn_by_inverse_layer_idx" in /m/config.json, got true');
    expect(gpt2Error({ add_cross_attention: true })).toContain("GPT-2 with cross-attention is not implemented");
    expect(gpt2Error({ model_type: "llama" })).toBe(`config: expected "gpt2" (a GPT-2 config) for "model_type" in ${SRC}, got "llama"`);
    expect(gpt2Error({ n_embd: 100, n_head: 12 })).toBe(`config: expected "n_embd" divisible by "n_head" in ${SRC}, got 100 and 12`);
    expect(gpt2Error({ n_layer: 0 })).toBe(`config: expected a positive integer for "n_layer" in ${SRC}, got 0`);
    expect(gpt2Error({ vocab_size: "50257" })).toContain('for "vocab_size" in /m/config.json, got "50257"');
    expect(gpt2Error({ n_positions: 1.5 })).toContain("got 1.5");
    expect(gpt2Error({ layer_norm_epsilon: -1 })).toContain('a positive number for "layer_norm_epsilon"');
    expect(gpt2Error({ eos_token_id: [1, 2] })).toContain('a non-negative integer for "eos_token_id" in /m/config.json, got [1,2]');
    expect(gpt2Error({ tie_word_embeddings: "yes" })).toContain('true or false for "tie_word_embeddings"');
    expect(gpt2Error([1])).toBe(`config: expected a JSON object in ${SRC}, got [1]`);
  });
});

describe("CLIP", () => {
  it("parses the fixture CLIPModel config", async () => {
    const { modelType, raw } = await readConfig(join(HF_PARITY, "clip"));
    expect(modelType).toBe("clip");
    const c = parseCLIPConfig(raw, "clip/config.json");
    expect(c.vision).toEqual({ hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 2, numAttentionHeads: 4, imageSize: 32, patchSize: 8, numChannels: 3, hiddenAct: "quick_gelu", layerNormEps: 1e-5, projectionDim: 16 });
    expect(c.text).toEqual({ vocabSize: 1024, hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 2, numAttentionHeads: 4, maxPositionEmbeddings: 77, hiddenAct: "quick_gelu", layerNormEps: 1e-5, projectionDim: 16, bosTokenId: 1022, eosTokenId: 1023 });
    expect(c.projectionDim).toBe(16);
    expect(c.logitScaleInitValue).toBeCloseTo(2.6592);
  });

  it("merges the legacy *_config_dict over *_config (clip-vit-base-patch16 style) and fills defaults", () => {
    const base16 = {
      model_type: "clip", projection_dim: 512, logit_scale_init_value: 2.6592,
      text_config: { bos_token_id: 0, eos_token_id: 2, hidden_size: 512, num_attention_heads: 8, hidden_act: "quick_gelu" },
      text_config_dict: { hidden_act: "quick_gelu", projection_dim: 512 },
      vision_config: { patch_size: 32 },
      vision_config_dict: { hidden_size: 768, intermediate_size: 3072, num_attention_heads: 12, num_hidden_layers: 12, patch_size: 16, projection_dim: 512 },
    };
    const c = parseCLIPConfig(base16, SRC);
    expect(c.vision).toMatchObject({ hiddenSize: 768, patchSize: 16, imageSize: 224, numHiddenLayers: 12, projectionDim: 512 });
    expect(c.text).toMatchObject({ vocabSize: 49408, hiddenSize: 512, numHiddenLayers: 12, maxPositionEmbeddings: 77, bosTokenId: 0, eosTokenId: 2 });
    const large14 = {
      model_type: "clip", projection_dim: 768,
      text_config: { hidden_size: 768, intermediate_size: 3072, num_attention_heads: 12, projection_dim: 768 },
      vision_config: { hidden_size: 1024, intermediate_size: 4096, num_attention_heads: 16, num_hidden_layers: 24, patch_size: 14, projection_dim: 768 },
    };
    const l = parseCLIPConfig(large14, SRC);
    expect(l.vision).toMatchObject({ hiddenSize: 1024, numHiddenLayers: 24, patchSize: 14, imageSize: 224, projectionDim: 768 });
    expect(l.text).toMatchObject({ hiddenSize: 768, bosTokenId: 49406, eosTokenId: 49407, projectionDim: 768 });
    expect(parseCLIPConfig({ vision_config: {} }, SRC).vision.hiddenSize).toBe(768); // no model_type: a vision_config means CLIPModel
  });

  it("accepts a CLIPVisionModel config for the vision part", () => {
    const c = parseCLIPConfig({ model_type: "clip_vision_model", hidden_size: 64, num_attention_heads: 4, image_size: 64, patch_size: 16, projection_dim: 32 }, SRC);
    expect(c.vision).toMatchObject({ hiddenSize: 64, numAttentionHeads: 4, imageSize: 64, patchSize: 16, projectionDim: 32 });
    expect(c.projectionDim).toBe(32);
    expect(c.text.projectionDim).toBe(32);
  });

  it("refuses unsupported values, naming the sub-config", () => {
    expect(clipError({ model_type: "clip", vision_config: { hidden_act: "silu" } })).toBe(
      `config: expected "quick_gelu" or "gelu" (CLIP's activations; "gelu" (erf) is refused by the tower) for "hidden_act" in ${SRC} vision_config, got "silu"`,
    );
    expect(clipError({ model_type: "clip", vision_config: { image_size: 224, patch_size: 15 } })).toBe(`config: expected "image_size" divisible by "patch_size" in ${SRC} vision_config, got 224 and 15`);
    expect(clipError({ model_type: "clip", text_config: { hidden_size: 100, num_attention_heads: 8 } })).toContain("in /m/config.json text_config, got 100 and 8");
    expect(clipError({ model_type: "clip", text_config: "big" })).toBe(`config: expected an object for "text_config" in ${SRC}, got "big"`);
    expect(clipError({ model_type: "siglip" })).toBe(`config: expected "clip" or "clip_vision_model" (a CLIPModel or CLIPVisionModel config) for "model_type" in ${SRC}, got "siglip"`);
    expect(clipError({})).toContain('for "model_type" in /m/config.json, got no such key');
  });
});

describe("readConfig", () => {
  it("names a missing file, bad JSON and model types we do not implement", async () => {
    const dir = join(TMP, "m");
    mkdirSync(dir);
    await expect(readConfig(dir)).rejects.toThrow(`config: expected a config.json in ${dir}, got no such file; is this a model directory?`);
    writeFileSync(join(dir, "config.json"), "{ not json");
    await expect(readConfig(dir)).rejects.toThrow(new RegExp(`^config: expected JSON in ${join(dir, "config.json")}, got a parse error: `));
    writeFileSync(join(dir, "config.json"), JSON.stringify({ model_type: "bert" }));
    await expect(readConfig(dir)).rejects.toThrow(ConfigError);
    await expect(readConfig(dir)).rejects.toThrow(`config: expected "gpt2" or "clip" or "clip_vision_model" (the models we implement) for "model_type" in ${join(dir, "config.json")}, got "bert"`);
    writeFileSync(join(dir, "config.json"), JSON.stringify({ model_type: "clip_vision_model", hidden_size: 8 }));
    expect(await readConfig(dir)).toEqual({ modelType: "clip_vision_model", raw: { model_type: "clip_vision_model", hidden_size: 8 } });
  });
});
