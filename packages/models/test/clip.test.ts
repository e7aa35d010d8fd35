// CLIP towers against ../shared/fixtures/hf-parity/clip: the vision tower (outputs, loss and
// every gradient) against the stored transformers 4.31 reference; the text tower (not in the
// reference) against a float64 forward written here from the math, on the fixture's weights.
import { join } from "node:path";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import fc from "fast-check";
import { type Tensor, init, tensor, tidy } from "@llms-eye/tensor";
import { type Var, StateDictError, ag, backward, noGrad } from "@llms-eye/autograd";
import { CLIPVisionModel, CLIP_VISION_KEYS } from "../src/clip-vision.js";
import { CLIPTextModel, type TokenRows } from "../src/clip-text.js";
import { CLIPModel } from "../src/clip.js";
import { readCLIPConfig, skipPositionIds } from "../src/clip-encoder.js";
import { loadCheckpoint } from "../src/checkpoint.js";
import { readSafetensors } from "../src/safetensors.js";
import { HF_PARITY } from "./fixtures.js";

const DIR = join(HF_PARITY, "clip");
// The fixture README's tolerances (10x the observed float32-vs-float64 drift), absolute.
const TOL = { hidden: 2e-5, pooler: 8e-6, embeds: 5e-6, loss: 6e-6, grad: 2e-4, text: 2e-5 };

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
};
const host = async (v: Var | Tensor): Promise<Float32Array> => (await ("value" in v ? v.value : v).toArray()) as Float32Array;

let ref: Map<string, { shape: number[]; data: Float32Array }>;
let vision: CLIPVisionModel;
let full: CLIPModel;
const refT = (k: string): Tensor => {
  const r = ref.get(k)!;
  return tensor(r.data, r.shape);
};

beforeAll(async () => {
  await init();
  ref = (await readSafetensors(join(DIR, "reference.safetensors"))) as typeof ref;
  vision = await CLIPVisionModel.fromPretrained(DIR);
  full = await CLIPModel.fromPretrained(DIR);
});

afterAll(() => {
  vision?.dispose();
  full?.dispose();
});

describe("CLIP vision tower vs transformers 4.31", () => {
  it("matches every hidden state, last_hidden_state, pooler_output, image_embeds, the loss and all 40 gradients", async () => {
    vision.zeroGrad();
    const out = tidy(() => {
      const o = vision.forward(refT("pixel_values"));
      const loss = ag.add(
        ag.sum(ag.mul(o.imageEmbeds!, refT("loss_weight.image_embeds"))),
        ag.sum(ag.mul(o.lastHiddenState!, refT("loss_weight.last_hidden_state"))),
      );
      backward(loss);
      return { hs: o.hiddenStates.map((h) => h.value), last: o.lastHiddenState!.value, pool: o.poolerOutput!.value, emb: o.imageEmbeds!.value, loss: loss.value };
    });
    expect(out.hs.length).toBe(3);
    for (const [i, h] of out.hs.entries()) expect(maxAbsDiff(await host(h), ref.get(`hidden_states.${i}`)!.data), `hidden_states.${i}`).toBeLessThan(TOL.hidden);
    expect(maxAbsDiff(await host(out.last), ref.get("last_hidden_state")!.data)).toBeLessThan(TOL.hidden);
    expect(maxAbsDiff(await host(out.pool), ref.get("pooler_output")!.data)).toBeLessThan(TOL.pooler);
    expect(maxAbsDiff(await host(out.emb), ref.get("image_embeds")!.data)).toBeLessThan(TOL.embeds);
    expect(maxAbsDiff(await host(out.loss), ref.get("loss")!.data)).toBeLessThan(TOL.loss);
    const params = vision.namedParameters();
    expect(params.map(([k]) => `grad.${k}`).sort()).toEqual([...ref.keys()].filter((k) => k.startsWith("grad.")).sort());
    for (const [k, p] of params) expect(maxAbsDiff(await host(p.grad!), ref.get(`grad.${k}`)!.data), `grad.${k}`).toBeLessThan(TOL.grad);
    vision.zeroGrad();
    for (const t of [...out.hs, out.last, out.pool, out.emb, out.loss]) t.dispose();
  });

  it("stops at outputLayer without running the layers beyond it", async () => {
    const layers = vision.vision_model.encoder.layers;
    const spies = layers.map((l) => vi.spyOn(l, "forward"));
    const hs = noGrad(() => tidy(() => {
      const o = vision.forward(refT("pixel_values"), { outputLayer: -2 }); // the penultimate layer, as the VLM reads it
      expect(o.lastHiddenState).toBeNull();
      expect(o.poolerOutput).toBeNull();
      expect(o.imageEmbeds).toBeNull();
      return o.hiddenStates.map((h) => h.value);
    }));
    expect(spies.map((s) => s.mock.calls.length)).toEqual([1, 0]);
    spies.forEach((s) => s.mockRestore());
    expect(hs.length).toBe(2);
    expect(maxAbsDiff(await host(hs[1]!), ref.get("hidden_states.1")!.data)).toBeLessThan(TOL.hidden);
    hs.forEach((t) => t.dispose());
    const px = refT("pixel_values");
    for (const bad of [3, -4, 0.5]) expect(() => vision.forward(px, { outputLayer: bad })).toThrow(/outputLayer an integer in \[-3, 2\]/);
    px.dispose();
  });

  it("rejects pixel values of the wrong size, naming the expected shape", () => {
    const px = tensor(new Float32Array(3 * 16 * 16), [1, 3, 16, 16]);
    expect(() => vision.forward(px)).toThrow("expected pixel_values of shape [B, 3, 32, 32] (the config's image_size), got [1, 3, 16, 16]");
    px.dispose();
  });

  it("CLIPModel.getImageFeatures equals the reference image_embeds", async () => {
    const emb = noGrad(() => tidy(() => full.getImageFeatures(refT("pixel_values")).value));
    expect(maxAbsDiff(await host(emb), ref.get("image_embeds")!.data)).toBeLessThan(TOL.embeds);
    emb.dispose();
  });
});

describe("loading", () => {
  const tmp = mkdtempSync(join(tmpdir(), "eye-clip-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  /** A copy of the fixture directory whose config.json is edited by `edit`. */
  const variant = (name: string, edit: (cfg: Record<string, Record<string, unknown>>) => void): string => {
    const dir = join(tmp, name);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(DIR, "config.json"), "utf8")) as Record<string, Record<string, unknown>>;
    edit(cfg);
    writeFileSync(join(dir, "config.json"), JSON.stringify(cfg));
    copyFileSync(join(DIR, "model.safetensors"), join(dir, "model.safetensors"));
    return dir;
  };

  it("a vision-only load reads only vision_model.* and visual_projection.weight from a CLIPModel checkpoint", async () => {
    const gradKeys = [...ref.keys()].filter((k) => k.startsWith("grad.")).map((k) => k.slice("grad.".length));
    expect(vision.namedParameters().map(([k]) => k).sort()).toEqual(gradKeys.sort());
    expect(gradKeys.length).toBe(40);
    // the same load as CLIPVisionModel.fromPretrained, with loadCheckpoint's read accounting
    const m = new CLIPVisionModel((await readCLIPConfig(DIR)).vision);
    const { skipped, bytes } = await loadCheckpoint(m, join(DIR, "model.safetensors"), { select: CLIP_VISION_KEYS, rename: skipPositionIds });
    expect(bytes).toBe(4 * m.parameters().reduce((n, p) => n + p.value.size, 0));
    expect(skipped.length).toBe(36 + 1 + 1); // the text tower, text_projection, logit_scale
    expect(skipped.every((k) => k.startsWith("text_model.") || k === "text_projection.weight" || k === "logit_scale")).toBe(true);
    m.dispose();
    expect(full.namedParameters().length).toBe(40 + 36 + 1 + 1);
  });

  it("names every missing and mis-shaped key when the checkpoint does not fit the config", async () => {
    const deeper = variant("deeper", (c) => void (c.vision_config!.num_hidden_layers = 3));
    const err = await CLIPVisionModel.fromPretrained(deeper).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(StateDictError);
    expect((err as StateDictError).missing).toContain("vision_model.encoder.layers.2.mlp.fc1.weight");
    expect((err as StateDictError).message).toContain("missing keys: vision_model.encoder.layers.2.");
    const wider = variant("wider", (c) => void (c.vision_config!.intermediate_size = 48));
    await expect(CLIPVisionModel.fromPretrained(wider)).rejects.toThrow("vision_model.encoder.layers.0.mlp.fc1.weight (expected [48, 32] f32, got [64, 32] f32)");
    // the text side is not read by a vision-only load, so a text mismatch only stops the text and full loads
    const text = variant("text", (c) => void (c.text_config!.intermediate_size = 48));
    const v = await CLIPVisionModel.fromPretrained(text);
    v.dispose();
    await expect(CLIPTextModel.fromPretrained(text)).rejects.toThrow("text_model.encoder.layers.0.mlp.fc1.weight (expected [48, 32] f32, got [64, 32] f32)");
    await expect(CLIPModel.fromPretrained(text)).rejects.toThrow(StateDictError);
  });

  it("refuses an activation it does not implement", async () => {
    const gelu = variant("gelu", (c) => void (c.vision_config!.hidden_act = "gelu"));
    await expect(CLIPVisionModel.fromPretrained(gelu)).rejects.toThrow('CLIPVisionTransformer: expected hidden_act "quick_gelu"');
  });
});

// ---------------------------------------------------------------------------------------------
// Text tower: a float64 forward from the math (HF's CLIPTextTransformer), on the loaded weights.

type HostWeights = Map<string, Float32Array>;

const linear = (x: Float64Array, n: number, w: Float32Array, b: Float32Array | undefined, inF: number, outF: number): Float64Array => {
  const y = new Float64Array(n * outF);
  for (let r = 0; r < n; r++) {
    for (let o = 0; o < outF; o++) {
      let s = b ? b[o]! : 0;
      for (let i = 0; i < inF; i++) s += x[r * inF + i]! * w[o * inF + i]!;
      y[r * outF + o] = s;
    }
  }
  return y;
};

const layerNorm = (x: Float64Array, n: number, C: number, g: Float32Array, b: Float32Array, eps: number): Float64Array => {
  const y = new Float64Array(n * C);
  for (let r = 0; r < n; r++) {
    let m = 0;
    for (let c = 0; c < C; c++) m += x[r * C + c]!;
    m /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[r * C + c]! - m) ** 2;
    const rs = 1 / Math.sqrt(v / C + eps);
    for (let c = 0; c < C; c++) y[r * C + c] = (x[r * C + c]! - m) * rs * g[c]! + b[c]!;
  }
  return y;
};

interface TextRef {
  hidden: Float64Array[]; // (B, T, C) each
  last: Float64Array;
  pooled: Float64Array; // (B, C)
  embeds: Float64Array; // (B, E)
  /** queries that see at least one key (the others are unspecified: HF and we differ there) */
  valid: boolean[]; // (B, T)
}

/** Causal attention with a key padding mask; a query with no visible key gets 0 (our engine's convention). */
function textRef(w: HostWeights, cfg: { C: number; H: number; L: number; F: number; eps: number; E: number; eos: number }, ids: TokenRows, mask?: TokenRows): TextRef {
  const { C, H, L, F, eps, E } = cfg;
  const B = ids.length;
  const T = ids[0]!.length;
  const D = C / H;
  const g = (k: string): Float32Array => w.get(`text_model.${k}`)!;
  const valid = ids.flatMap((_, b) => [...Array(T).keys()].map((i) => [...Array(i + 1).keys()].some((j) => (mask?.[b]![j] ?? 1) !== 0)));
  let x = new Float64Array(B * T * C);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let c = 0; c < C; c++) {
        x[(b * T + t) * C + c] = g("embeddings.token_embedding.weight")[ids[b]![t]! * C + c]! + g("embeddings.position_embedding.weight")[t * C + c]!;
      }
    }
  }
  const hidden = [x];
  for (let l = 0; l < L; l++) {
    const p = `encoder.layers.${l}.`;
    const lin = (v: Float64Array, name: string, inF: number, outF: number): Float64Array => linear(v, B * T, g(`${p}${name}.weight`), g(`${p}${name}.bias`), inF, outF);
    const h = layerNorm(x, B * T, C, g(`${p}layer_norm1.weight`), g(`${p}layer_norm1.bias`), eps);
    const [q, k, v] = [lin(h, "self_attn.q_proj", C, C), lin(h, "self_attn.k_proj", C, C), lin(h, "self_attn.v_proj", C, C)];
    const att = new Float64Array(B * T * C);
    for (let b = 0; b < B; b++) {
      for (let hh = 0; hh < H; hh++) {
        for (let i = 0; i < T; i++) {
          const keys = [...Array(i + 1).keys()].filter((j) => (mask?.[b]![j] ?? 1) !== 0);
          if (keys.length === 0) continue;
          const s = keys.map((j) => {
            let d = 0;
            for (let e = 0; e < D; e++) d += q[(b * T + i) * C + hh * D + e]! * k[(b * T + j) * C + hh * D + e]!;
            return d / Math.sqrt(D);
          });
          const mx = Math.max(...s);
          const ex = s.map((z) => Math.exp(z - mx));
          const den = ex.reduce((a, z) => a + z, 0);
          keys.forEach((j, n) => {
            for (let e = 0; e < D; e++) att[(b * T + i) * C + hh * D + e]! += (ex[n]! / den) * v[(b * T + j) * C + hh * D + e]!;
          });
        }
      }
    }
    const x1 = lin(att, "self_attn.out_proj", C, C).map((z, i) => z + x[i]!);
    const f = lin(layerNorm(x1, B * T, C, g(`${p}layer_norm2.weight`), g(`${p}layer_norm2.bias`), eps), "mlp.fc1", C, F).map((z) => z / (1 + Math.exp(-1.702 * z)));
    x = lin(f, "mlp.fc2", F, C).map((z, i) => z + x1[i]!);
    hidden.push(x);
  }
  const last = layerNorm(x, B * T, C, g("final_layer_norm.weight"), g("final_layer_norm.bias"), eps);
  const pooled = new Float64Array(B * C);
  ids.forEach((row, b) => pooled.set(last.subarray((b * T + row.indexOf(cfg.eos)) * C, (b * T + row.indexOf(cfg.eos) + 1) * C), b * C));
  const embeds = linear(pooled, B, w.get("text_projection.weight")!, undefined, C, E);
  return { hidden, last, pooled, embeds, valid };
}

/** Max |a - b| over the (B, T) rows marked valid. */
const maxDiffRows = (a: ArrayLike<number>, b: ArrayLike<number>, valid: boolean[], C: number): number => {
  let d = 0;
  valid.forEach((ok, r) => {
    if (ok) for (let c = 0; c < C; c++) d = Math.max(d, Math.abs(a[r * C + c]! - b[r * C + c]!));
  });
  return d;
};

describe("CLIP text tower vs a float64 reference", () => {
  let text: CLIPTextModel;
  let weights: HostWeights;
  let cfg: Parameters<typeof textRef>[1];

  beforeAll(async () => {
    text = await CLIPTextModel.fromPretrained(DIR);
    weights = new Map();
    for (const [k, t] of text.stateDict()) weights.set(k, (await t.toArray()) as Float32Array);
    const c = (await readCLIPConfig(DIR)).text;
    cfg = { C: c.hiddenSize, H: c.numAttentionHeads, L: c.numHiddenLayers, F: c.intermediateSize, eps: c.layerNormEps, E: text._cfg.projectionDim, eos: c.eosTokenId };
    expect([c.bosTokenId, c.eosTokenId]).toEqual([1022, 1023]);
  });

  /** Our forward, read back: every hidden state, last, pooled, embeds. */
  const run = async (ids: TokenRows, mask?: TokenRows): Promise<{ hidden: Float32Array[]; last: Float32Array; pooled: Float32Array; embeds: Float32Array }> => {
    const o = noGrad(() => tidy(() => {
      const r = text.forward(ids, mask ? { attentionMask: mask } : {});
      return { hidden: r.hiddenStates.map((h) => h.value), last: r.lastHiddenState!.value, pooled: r.poolerOutput!.value, embeds: r.textEmbeds!.value };
    }));
    const res = { hidden: await Promise.all(o.hidden.map(host)), last: await host(o.last), pooled: await host(o.pooled), embeds: await host(o.embeds) };
    for (const t of [...o.hidden, o.last, o.pooled, o.embeds]) t.dispose();
    return res;
  };

  const compare = async (ids: TokenRows, mask?: TokenRows): Promise<void> => {
    const ours = await run(ids, mask);
    const want = textRef(weights, cfg, ids, mask);
    expect(ours.hidden.length).toBe(cfg.L + 1);
    ours.hidden.forEach((h, i) => expect(maxDiffRows(h, want.hidden[i]!, want.valid, cfg.C), `hidden_states.${i}`).toBeLessThan(TOL.text));
    expect(maxDiffRows(ours.last, want.last, want.valid, cfg.C)).toBeLessThan(TOL.text);
    expect(maxAbsDiff(ours.pooled, want.pooled)).toBeLessThan(TOL.text);
    expect(maxAbsDiff(ours.embeds, want.embeds)).toBeLessThan(TOL.text);
  };

  it("matches on a padded batch (right padding with end-of-text, left padding masked)", async () => {
    await compare(
      [
        [1022, 5, 17, 300, 1023, 1023, 1023],
        [1022, 900, 2, 3, 4, 5, 1023],
        [0, 0, 1022, 44, 45, 1023, 1023],
      ],
      [
        [1, 1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 1, 1, 1],
        [0, 0, 1, 1, 1, 1, 0],
      ],
    );
  });

  it("matches on random ids, lengths, end-of-text positions and masks (fast-check)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }).chain((B) =>
          fc.integer({ min: 1, max: 13 }).chain((T) =>
            fc.tuple(
              fc.array(fc.array(fc.integer({ min: 0, max: 1021 }), { minLength: T, maxLength: T }), { minLength: B, maxLength: B }),
              fc.array(fc.integer({ min: 0, max: T - 1 }), { minLength: B, maxLength: B }),
              fc.array(fc.array(fc.boolean(), { minLength: T, maxLength: T }), { minLength: B, maxLength: B }),
            ),
          ),
        ),
        async ([rows, eosAt, maskBits]) => {
          const ids = rows.map((r, b) => r.map((id, t) => (t === eosAt[b] ? 1023 : id)));
          const mask = maskBits.map((r, b) => r.map((m, t) => (m || t === eosAt[b] ? 1 : 0))); // the pooled token is never masked
          await compare(ids, mask);
        },
      ),
      { numRuns: 8, seed: 4 },
    );
  });

  it("pools at the first end-of-text token: later tokens and padding change nothing", async () => {
    const a = await run([[1022, 7, 8, 1023]]);
    const b = await run([
      [1022, 7, 8, 1023, 1023, 1023],
      [1022, 7, 8, 1023, 55, 66],
    ], [
      [1, 1, 1, 1, 0, 0],
      [1, 1, 1, 1, 1, 1],
    ]);
    expect(maxAbsDiff(b.pooled.subarray(0, cfg.C), a.pooled)).toBeLessThan(1e-6);
    expect(maxAbsDiff(b.pooled.subarray(cfg.C), a.pooled)).toBeLessThan(1e-6);
    // batch of two = two batches of one
    const c = await run([[1022, 9, 1023, 0]]);
    const d = await run([[1022, 7, 8, 1023], [1022, 9, 1023, 0]]);
    expect(maxAbsDiff(d.embeds, [...a.embeds, ...c.embeds])).toBeLessThan(1e-6);
  });

  it("rejects rows without end-of-text, ragged rows, out-of-range ids and over-long rows", () => {
    expect(() => text.forward([[1022, 5, 6]])).toThrow("expected the end-of-text token 1023 in every row of input_ids (the text is pooled there), row 0 has none");
    expect(() => text.forward([[1022, 1023], [1023]])).toThrow("expected rows of equal length 2 for input_ids, got 1 in row 1; pad the batch");
    expect(() => text.forward([[1022, 1024, 1023]])).toThrow("expected token ids in [0, 1024) for input_ids, got 1024 at row 0, column 1");
    expect(() => text.forward([Array.from({ length: 78 }, () => 1023)])).toThrow("expected at most max_position_embeddings = 77 tokens per row");
    expect(() => text.forward([[1023]], { attentionMask: [[1, 1]] })).toThrow("expected attention_mask of shape [1, 1] like input_ids, got [1, 2]");
  });

  it("CLIPModel: logits are exp(logit_scale) times the cosine similarities of the projections", async () => {
    const ids = [[1022, 5, 1023], [1022, 6, 1023], [1022, 8, 1023]];
    const o = noGrad(() => tidy(() => {
      const r = full.forward(refT("pixel_values"), ids);
      return { img: r.imageEmbeds.value, txt: r.textEmbeds.value, lpi: r.logitsPerImage.value, lpt: r.logitsPerText.value, tf: full.getTextFeatures(ids).value };
    }));
    const [img, txt, lpi, lpt, tf] = (await Promise.all([o.img, o.txt, o.lpi, o.lpt, o.tf].map(host))) as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
    expect(o.lpi.shape).toEqual([2, 3]);
    expect(o.lpt.shape).toEqual([3, 2]);
    expect(maxAbsDiff(tf, txt)).toBe(0);
    const scale = Math.exp((await full.logit_scale.value.toArray())[0]!);
    const E = cfg.E;
    const unit = (a: Float32Array, r: number): number[] => {
      const row = [...a.subarray(r * E, (r + 1) * E)];
      const n = Math.hypot(...row);
      return row.map((z) => z / n);
    };
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 3; j++) {
        const cos = unit(img, i).reduce((s, z, e) => s + z * unit(txt, j)[e]!, 0);
        expect(Math.abs(lpi[i * 3 + j]! - scale * cos)).toBeLessThan(1e-4);
        expect(lpt[j * 2 + i]).toBe(lpi[i * 3 + j]);
      }
    }
    Object.values(o).forEach((t) => t.dispose());
  });
});
