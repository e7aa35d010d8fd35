// GPT-2 against ../shared/fixtures/hf-parity/gpt2 (transformers 4.31's GPT2LMHeadModel): logits,
// every hidden state, the loss and every parameter gradient; then invariances on the same
// weights: KV-cached decoding = the full forward, a left-padded batch = rows run alone,
// logitsAt = the full logits' rows, inputsEmbeds = wte(ids), and the input checks.
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { type Tensor, ShapeError, device, init, tensor, tidy } from "@llms-eye/tensor";
import { type Var, ag, backward, noGrad } from "@llms-eye/autograd";
import { GPT2LMHeadModel, gpt2CheckpointKey } from "../src/gpt2.js";
import { positionIdsFromMask } from "../src/generate.js";
import { readSafetensors, writeSafetensors } from "../src/safetensors.js";
import { HF_PARITY } from "./fixtures.js";

const DIR = join(HF_PARITY, "gpt2");
// The fixture README's tolerances (10x the observed float32-vs-float64 drift), absolute.
const TOL = { logits: 3e-5, hidden: 2e-5, loss: 6e-6, grad: 2e-6 };
// Two float32 computations of the same model on the same weights (cache vs full, batch vs row).
const SAME = 1e-5;

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
};
const host = async (t: Var | Tensor): Promise<Float32Array> => (await ("value" in t ? t.value : t).toArray()) as Float32Array;
const ids2 = (rows: number[][]): Tensor => tensor(Int32Array.from(rows.flat()), [rows.length, rows[0]!.length], "i32");

let model: GPT2LMHeadModel;
let ref: Map<string, { shape: readonly number[]; data: ArrayLike<number> }>;
let V: number;
let inputIds: number[][];

/** Logits (B, T, V) of `rows` without a cache, on the host. */
async function fullLogits(rows: number[][], extra: { attentionMask?: number[][]; positionIds?: number[][] } = {}): Promise<Float32Array> {
  const t = noGrad(() =>
    tidy(() =>
      model.forward({
        ids: ids2(rows),
        ...(extra.attentionMask ? { attentionMask: ids2(extra.attentionMask) } : {}),
        ...(extra.positionIds ? { positionIds: ids2(extra.positionIds) } : {}),
      }).logits!.value,
    ),
  );
  const out = await host(t);
  t.dispose();
  return out;
}

beforeAll(async () => {
  await init();
  ref = (await readSafetensors(join(DIR, "reference.safetensors"))) as typeof ref;
  model = await GPT2LMHeadModel.fromPretrained(DIR);
  V = model.config.vocabSize;
  const r = ref.get("input_ids")!;
  inputIds = [0, 1].map((b) => Array.from(r.data).slice(b * r.shape[1]!, (b + 1) * r.shape[1]!));
});

afterAll(() => model?.dispose());

describe("GPT-2 vs transformers 4.31", () => {
  it("matches the logits, all 3 hidden states, the loss and all 28 gradients", async () => {
    model.zeroGrad();
    const out = tidy(() => {
      const ids = ids2(inputIds);
      const o = model.forward({ ids, attentionMask: ids2(inputIds.map((r) => r.map(() => 1))), labels: ids, outputHiddenStates: true });
      backward(o.loss!);
      return { logits: o.logits!.value, hs: o.hiddenStates!.map((h) => h.value), loss: o.loss!.value };
    });
    expect(out.logits.shape).toEqual([2, 9, V]);
    const errs: Record<string, number> = {};
    errs.logits = maxAbsDiff(await host(out.logits), ref.get("logits")!.data);
    expect(errs.logits).toBeLessThan(TOL.logits);
    expect(out.hs.length).toBe(3);
    for (const [i, h] of out.hs.entries()) {
      errs[`hidden_states.${i}`] = maxAbsDiff(await host(h), ref.get(`hidden_states.${i}`)!.data);
      expect(errs[`hidden_states.${i}`], `hidden_states.${i}`).toBeLessThan(TOL.hidden);
    }
    errs.loss = maxAbsDiff(await host(out.loss), ref.get("loss")!.data);
    expect(errs.loss).toBeLessThan(TOL.loss);
    const params = model.namedParameters();
    expect(params.map(([k]) => `grad.${k}`).sort()).toEqual([...ref.keys()].filter((k) => k.startsWith("grad.")).sort());
    let worstGrad = 0;
    for (const [k, p] of params) {
      const e = maxAbsDiff(await host(p.grad!), ref.get(`grad.${k}`)!.data);
      worstGrad = Math.max(worstGrad, e);
      expect(e, `grad.${k}`).toBeLessThan(TOL.grad);
    }
    console.log(`gpt2 parity max abs err: ${Object.entries(errs).map(([k, e]) => `${k} ${e.toExponential(2)}`).join(", ")}, grads ${worstGrad.toExponential(2)}`);
    model.zeroGrad();
    for (const t of [out.logits, ...out.hs, out.loss]) t.dispose();
  });

  it("maps checkpoint keys with or without the transformer. prefix and ignores the tied head and attention buffers", () => {
    expect(gpt2CheckpointKey("h.0.attn.c_attn.weight")).toBe("transformer.h.0.attn.c_attn.weight");
    expect(gpt2CheckpointKey("transformer.wte.weight")).toBe("transformer.wte.weight");
    expect(gpt2CheckpointKey("lm_head.weight")).toBeNull();
    expect(gpt2CheckpointKey("lm_head.weight", false)).toBe("lm_head.weight");
    expect(gpt2CheckpointKey("h.3.attn.bias")).toBeNull();
    expect(gpt2CheckpointKey("transformer.h.3.attn.masked_bias")).toBeNull();
    expect(gpt2CheckpointKey("h.3.attn.c_proj.bias")).toBe("transformer.h.3.attn.c_proj.bias");
  });

  it("loads a GPT2Model-style checkpoint (no prefix, attention buffers, a stored tied lm_head) to the same logits", async () => {
    const dir = mkdtempSync(join(tmpdir(), "eye-gpt2-"));
    try {
      const st = await readSafetensors(join(DIR, "model.safetensors"));
      const renamed = new Map([...st].map(([k, t]) => [k.replace(/^transformer\./, ""), t]));
      renamed.set("lm_head.weight", st.get("transformer.wte.weight")!);
      renamed.set("h.0.attn.bias", { dtype: "F32", shape: [1, 1, 64, 64], data: new Float32Array(64 * 64) });
      renamed.set("h.1.attn.masked_bias", { dtype: "F32", shape: [], data: new Float32Array([-1e4]) });
      await writeSafetensors(join(dir, "model.safetensors"), renamed);
      copyFileSync(join(DIR, "config.json"), join(dir, "config.json"));
      const other = await GPT2LMHeadModel.fromPretrained(dir);
      const [a, b] = noGrad(() => tidy(() => [model, other].map((m) => m.forward({ ids: ids2(inputIds) }).logits!.value)));
      expect(maxAbsDiff(await host(a!), await host(b!))).toBe(0);
      [a, b].forEach((t) => t!.dispose());
      other.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("GPT-2 invariances", () => {
  it("KV-cached decoding gives the full forward's logits, for any split of the sequence", async () => {
    const seq = inputIds[0]!;
    const full = await fullLogits([seq]);
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.integer({ min: 1, max: seq.length - 1 }), { maxLength: 3 }), async (cuts) => {
        const bounds = [0, ...[...cuts].sort((a, b) => a - b), seq.length];
        const cache = model.newCache();
        const live = device().stats().liveBytes;
        try {
          for (let i = 0; i + 1 < bounds.length; i++) {
            const [a, b] = [bounds[i]!, bounds[i + 1]!];
            const t = noGrad(() => tidy(() => model.forward({ ids: ids2([seq.slice(a, b)]), cache }).logits!.value)); // (1, b - a, V)
            expect(cache.length).toBe(b);
            expect(maxAbsDiff(await host(t), full.subarray(a * V, b * V))).toBeLessThan(SAME);
            t.dispose();
          }
        } finally {
          cache.dispose();
        }
        expect(device().stats().liveBytes).toBe(live);
      }),
      { numRuns: 4, seed: 7 },
    );
  });

  it("a left-padded batch of two equals each row run alone, at the real positions", async () => {
    const long = inputIds[1]!.slice(0, 7);
    const short = inputIds[0]!.slice(0, 4);
    const pad = long.length - short.length;
    const mask = [long.map(() => 1), [...Array<number>(pad).fill(0), ...short.map(() => 1)]];
    const batch = await fullLogits([long, [...Array<number>(pad).fill(50256), ...short]], { attentionMask: mask, positionIds: positionIdsFromMask(mask) });
    const aloneLong = await fullLogits([long]);
    const aloneShort = await fullLogits([short]);
    const T = long.length;
    expect(maxAbsDiff(batch.subarray(0, T * V), aloneLong)).toBeLessThan(SAME);
    expect(maxAbsDiff(batch.subarray((T + pad) * V, 2 * T * V), aloneShort)).toBeLessThan(SAME);
  });

  it("logitsAt computes exactly the full logits' rows, and the loss over them", async () => {
    const full = await fullLogits(inputIds);
    const rows = [17, 3, 9, 0];
    const [at, lossAll, lossAt] = noGrad(() =>
      tidy(() => {
        const ids = ids2(inputIds);
        const idx = tensor(Int32Array.from(rows), [rows.length], "i32");
        const everyRow = tensor(Int32Array.from({ length: 18 }, (_, i) => 17 - i), [18], "i32");
        return [
          model.forward({ ids, logitsAt: idx }).logits!.value,
          model.forward({ ids, labels: ids }).loss!.value,
          model.forward({ ids, labels: ids, logitsAt: everyRow }).loss!.value,
        ];
      }),
    );
    expect(at.shape).toEqual([rows.length, V]);
    const got = await host(at);
    rows.forEach((r, i) => expect(maxAbsDiff(got.subarray(i * V, (i + 1) * V), full.subarray(r * V, (r + 1) * V))).toBe(0));
    expect(Math.abs((await lossAll.item()) - (await lossAt.item()))).toBeLessThan(1e-6);
    for (const t of [at, lossAll, lossAt]) t.dispose();
  });

  it("inputsEmbeds = wte(ids) gives the same logits as ids", async () => {
    const full = await fullLogits(inputIds);
    const t = noGrad(() => tidy(() => model.forward({ inputsEmbeds: ag.embedding(model.transformer.wte.weight, ids2(inputIds)) }).logits!.value));
    expect(maxAbsDiff(await host(t), full)).toBe(0);
    t.dispose();
  });

  it("refuses more positions than n_positions, bad masks and both/neither of ids and inputsEmbeds", () => {
    const nPos = model.config.nPositions;
    noGrad(() =>
      tidy(() => {
        const long = ids2([Array.from({ length: nPos + 1 }, () => 1)]);
        expect(() => model.forward({ ids: long })).toThrow(ShapeError);
        expect(() => model.forward({ ids: long })).toThrow(`expected at most n_positions = ${nPos} positions, got ${nPos + 1} (0 cached + ${nPos + 1} new)`);
        const cache = model.newCache();
        model.forward({ ids: ids2([Array.from({ length: nPos - 1 }, () => 1)]), cache, skipLogits: true });
        expect(() => model.forward({ ids: ids2([[1, 2]]), cache })).toThrow(`got ${nPos + 1} (${nPos - 1} cached + 2 new)`);
        cache.dispose();
        expect(() => model.forward({ ids: ids2([[1, 2, 3]]), attentionMask: ids2([[1, 1]]) })).toThrow("expected attentionMask of shape [1, 3]");
        expect(() => model.forward({ ids: ids2([[1, 2, 3], [4, 5, 6]]), positionIds: ids2([[0, 1]]) })).toThrow("expected i32 positionIds of shape [2, 3] or [1, 3], got i32 [1, 2]");
        expect(() => model.forward({})).toThrow("expected exactly one of ids and inputsEmbeds, got neither");
      }),
    );
  });
});
