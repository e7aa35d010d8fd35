// Generation: beam search and sampling on a scripted model whose next-token probabilities are
// a table (so outcomes are checked by hand), the logits warpers against their definitions
// (fast-check), and on the fixture GPT-2: greedy = transformers' generate output, cached =
// uncached, numBeams 1 = greedy, seeded sampling, memory back to the start, and the text the
// `eye generate` command prints.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { device, init } from "@llms-eye/tensor";
import { type NextTokenModel, generate, logSoftmax, positionIdsFromMask, warpLogits } from "../src/generate.js";
import { GPT2LMHeadModel } from "../src/gpt2.js";
import { loadTokenizer } from "../src/tokenizer.js";
import { readSafetensors } from "../src/safetensors.js";
import { HF_PARITY } from "./fixtures.js";

const DIR = join(HF_PARITY, "gpt2");
const EOS = 0;
const A = 1;
const B = 2;

/**
 * A model over 3 tokens (0 = eos, 1 = a, 2 = b) whose next-token probabilities depend on the
 * tokens generated so far ("" after the prompt, "a b" after a then b), else `default`.
 */
function scripted(table: Record<string, number[]>, promptLen: number): NextTokenModel & { calls: number } {
  let seqs: number[][] = [];
  const logits = (): Float32Array[] =>
    seqs.map((s) => Float32Array.from(table[s.slice(promptLen).map((t) => "eab"[t]).join(" ")] ?? table.default!, Math.log));
  const m = {
    calls: 0,
    begin: async (ids: number[][]) => ((seqs = ids.map((r) => [...r])), m.calls++, logits()),
    next: async (tokens: number[]) => (tokens.forEach((t, b) => seqs[b]!.push(t)), m.calls++, logits()),
    reorder: (index: number[]) => void (seqs = index.map((i) => [...seqs[i]!])),
    dispose: () => {},
  };
  return m;
}

// By hand (K = 2 beams, prompt [a], 3 new tokens, max length 4; scores are sums of ln p):
//  step 1: eos (ln .5 = -0.693) finishes [a] (len 1); beams [a a] -1.204, [a b] -1.609
//  step 2: eos after [a a]: -1.309 finishes [a a] (len 2); beams [a b a] -1.832, [a b b] -3.912
//          (eos after [a b], -3.912, ranks 3rd of 2K = 4: not a hypothesis)
//  step 3: eos after [a b a]: -1.883 finishes [a b a] (len 3); max length reached
//  lengthPenalty 1: scores -0.693, -0.655, -0.628 → [a b a] + eos
//  lengthPenalty 0: after step 2 the worst of 2 hypotheses (-1.309) ≥ the best running
//                   score (-1.309): done → the best is [a] -0.693 → [a] + eos
//  earlyStopping true: done as soon as 2 hypotheses exist (step 2) → [a a] -0.655 + eos
const TABLE: Record<string, number[]> = {
  "": [0.5, 0.3, 0.2],
  a: [0.9, 0.05, 0.05],
  b: [0.1, 0.8, 0.1],
  "b a": [0.95, 0.025, 0.025],
  default: [0.4, 0.3, 0.3],
};

describe("beam search (HF BeamSearchScorer)", () => {
  const beam = (opts: { lengthPenalty?: number; earlyStopping?: boolean | "never"; numBeams?: number }) =>
    generate(scripted(TABLE, 1), [[A]], { maxNewTokens: 3, strategy: "beam", numBeams: 2, eosId: EOS, ...opts });

  it("normalises by len^lengthPenalty and finishes hypotheses at eos", async () => {
    expect(await beam({ lengthPenalty: 1 })).toEqual([[A, B, A, EOS]]);
    expect(await beam({ lengthPenalty: 0 })).toEqual([[A, EOS]]);
    expect(await beam({ lengthPenalty: 1, earlyStopping: "never" })).toEqual([[A, B, A, EOS]]);
  });

  it("earlyStopping true stops at numBeams finished hypotheses", async () => {
    const m = scripted(TABLE, 1);
    expect(await generate(m, [[A]], { maxNewTokens: 3, strategy: "beam", numBeams: 2, eosId: EOS, earlyStopping: true })).toEqual([[A, A, EOS]]);
    expect(m.calls).toBe(2);
  });

  it("returns running beams at max length without eos, and each prompt of a batch alike", async () => {
    const loop = { "": [0.1, 0.6, 0.3], default: [0.1, 0.6, 0.3] };
    expect(await generate(scripted(loop, 1), [[A], [A]], { maxNewTokens: 3, strategy: "beam", numBeams: 3, eosId: EOS })).toEqual([
      [A, A, A, A],
      [A, A, A, A],
    ]);
  });

  it("greedy stops a row at eos and feeds it padding while others run", async () => {
    const m = scripted({ "": [0.5, 0.3, 0.2], default: [0.2, 0.7, 0.1] }, 1);
    expect(await generate(m, [[A]], { maxNewTokens: 5, eosId: EOS })).toEqual([[A, EOS]]);
    expect(m.calls).toBe(1);
  });
});

describe("sampling (HF's temperature, top-k, top-p warpers)", () => {
  const probs = (x: Float64Array): number[] => Array.from(logSoftmax(x), Math.exp);

  it("top-k keeps the k largest (and ties with the k-th); top-p the smallest top set above p", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -8, max: 8 }), { minLength: 2, maxLength: 40 }), fc.integer({ min: 1, max: 45 }), fc.double({ min: 0.01, max: 1, noNaN: true }), (row, k, p) => {
        const kth = [...row].sort((a, b) => b - a)[Math.min(k, row.length) - 1]!;
        const byK = warpLogits(row, { topK: k, topP: 1 });
        row.forEach((x, i) => expect(byK[i]).toBe(x >= kth ? x : -Infinity));
        const byP = warpLogits(row, { topK: 0, topP: p });
        const pr = probs(Float64Array.from(row));
        const removed = pr.reduce((s, q, i) => s + (byP[i] === -Infinity ? q : 0), 0);
        const keptMin = Math.min(...pr.filter((_, i) => byP[i] !== -Infinity));
        expect(removed).toBeLessThanOrEqual(1 - p + 1e-9);
        expect(pr.some((_, i) => byP[i] !== -Infinity)).toBe(true);
        if (keptMin < Math.max(...pr)) expect(removed + keptMin).toBeGreaterThan(1 - p - 1e-9);
      }),
      { numRuns: 200, seed: 3 },
    );
    expect(Array.from(warpLogits([1, 2, 3], { temperature: 2, topK: 0 }))).toEqual([0.5, 1, 1.5]);
    expect(() => warpLogits([1], { temperature: 0 })).toThrow("expected a positive temperature, got 0");
  });

  it("is reproducible for a seed, draws by the probabilities, and topK 1 / tiny topP equal greedy", async () => {
    const table = { "": [0.2, 0.5, 0.3], default: [0.2, 0.5, 0.3] };
    const sample = (seed: number, extra = {}) => generate(scripted(table, 1), [[A]], { maxNewTokens: 6, strategy: "sample", seed, eosId: 99, ...extra });
    expect(await sample(5)).toEqual(await sample(5));
    const counts = [0, 0, 0];
    for (let seed = 0; seed < 300; seed++) for (const t of (await sample(seed)).flat().slice(1)) counts[t]!++;
    expect(counts.map((c) => c / 1800).every((f, i) => Math.abs(f - table.default[i]!) < 0.04)).toBe(true);
    expect(await sample(1, { topK: 1 })).toEqual([[A, A, A, A, A, A, A]]);
    expect(await sample(2, { topP: 1e-6 })).toEqual([[A, A, A, A, A, A, A]]);
  });
});

describe("generation on the fixture GPT-2", () => {
  let model: GPT2LMHeadModel;
  let prompts: number[][];
  let expected: number[][];
  const EOT = 50256;

  beforeAll(async () => {
    await init();
    model = await GPT2LMHeadModel.fromPretrained(DIR);
    const ref = await readSafetensors(join(DIR, "reference.safetensors"), { select: (k: string) => k.startsWith("generate.") });
    const rows = (k: string): number[][] => {
      const r = ref.get(k)!;
      const [n, t] = r.shape as [number, number];
      return Array.from({ length: n }, (_, b) => Array.from(r.data as ArrayLike<number>).slice(b * t, (b + 1) * t));
    };
    prompts = rows("generate.prompt_ids");
    expected = rows("generate.output_ids");
  });

  afterAll(() => model?.dispose());

  it("greedy (KV cache) reproduces transformers' generate ids exactly, uncached too, and frees its memory", async () => {
    const live = device().stats().liveBytes;
    expect(await generate(model, prompts, { maxNewTokens: 8, eosId: EOT })).toEqual(expected);
    expect(device().stats().liveBytes).toBe(live);
    expect(await generate(model, prompts, { maxNewTokens: 8, eosId: EOT, useCache: false })).toEqual(expected);
  });

  it("left-pads prompts of different lengths (positions from the mask) like running them alone", async () => {
    const short = prompts[1]!.slice(0, 3);
    const alone = await generate(model, [short], { maxNewTokens: 4, eosId: EOT });
    expect(await generate(model, [prompts[0]!, short], { maxNewTokens: 4, eosId: EOT })).toEqual([expected[0]!.slice(0, 9), alone[0]]);
    expect(positionIdsFromMask([[0, 0, 1, 1]])).toEqual([[1, 1, 0, 1]]);
    await expect(generate(model, [prompts[0]!], { maxNewTokens: 61, eosId: EOT })).rejects.toThrow("expected prompt + maxNewTokens - 1 ≤ n_positions = 64, got 5 + 61 - 1");
  });

  it("beam search with one beam equals greedy; wider beams and sampling run and free their memory", async () => {
    expect(await generate(model, prompts, { maxNewTokens: 8, eosId: EOT, strategy: "beam", numBeams: 1 })).toEqual(expected);
    const live = device().stats().liveBytes;
    const beams = await generate(model, prompts, { maxNewTokens: 4, eosId: EOT, strategy: "beam", numBeams: 3 });
    expect(beams.map((r) => r.length)).toEqual([9, 9]);
    const s1 = await generate(model, prompts, { maxNewTokens: 4, eosId: EOT, strategy: "sample", seed: 11, topK: 0, temperature: 1.5 });
    expect(await generate(model, prompts, { maxNewTokens: 4, eosId: EOT, strategy: "sample", seed: 11, topK: 0, temperature: 1.5 })).toEqual(s1);
    expect(await generate(model, prompts, { maxNewTokens: 8, eosId: EOT, strategy: "sample", seed: 4, topK: 1 })).toEqual(expected);
    expect(device().stats().liveBytes).toBe(live);
  });

  it("decodes to the README's generated text (what `eye generate` prints)", async () => {
    const tok = await loadTokenizer(DIR);
    const prompt = tok.decode(prompts[0]!);
    expect(prompt).toBe("Once upon a time,");
    const [out] = await generate(model, [tok.encode(prompt)], { maxNewTokens: 8, eosId: tok.eosId });
    expect(prompt + tok.decode(out!.slice(prompts[0]!.length))).toBe("Once upon a time,Rule Flags increment suspensions GomezLECTLECT Flags");
  });
});
