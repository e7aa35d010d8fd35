// runParity on the shipped hf-parity directory (every row within the README's tolerances, the
// tokenizer cases equal, preprocessing reported as skipped, device memory back where it was),
// on a second directory of the same format with other sizes (a 3-layer, 6-head GPT-2 with
// n_positions 32 and batch 3; a 3-layer CLIP tower on 24-pixel images with 6-pixel patches),
// which passes and then fails when one reference value moves, and on malformed directories.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { device, init } from "@llms-eye/tensor";
import { GPT2LMHeadModel } from "../src/gpt2.js";
import { CLIPVisionModel } from "../src/clip-vision.js";
import { parseGPT2Config } from "../src/config.js";
import { readCLIPConfig } from "../src/clip-encoder.js";
import { saveCheckpoint } from "../src/checkpoint.js";
import { type HostTensor, readSafetensors, writeSafetensors } from "../src/safetensors.js";
import { gpt2Outputs } from "../src/parity-gpt2.js";
import { clipOutputs } from "../src/parity-clip.js";
import { PARITY_TOLERANCES, PREPROCESS_SKIPPED, ParityError, type ParityResult, runParity } from "../src/parity.js";
import { HF_PARITY } from "./fixtures.js";

const TMP = mkdtempSync(join(tmpdir(), "eye-parity-"));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

/** A seeded stream of N(0, 1)-ish floats (sum of uniforms) for inputs. */
function noise(n: number, seed: number): Float32Array {
  let s = seed;
  const u = (): number => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  return Float32Array.from({ length: n }, () => u() + u() + u() + u() - 2);
}
const f32 = (shape: number[], seed: number): HostTensor => ({ dtype: "F32", shape, data: noise(shape.reduce((a, b) => a * b, 1), seed) });
const i64 = (rows: number[][]): HostTensor => ({ dtype: "I64", shape: [rows.length, rows[0]!.length], data: Int32Array.from(rows.flat()) });
const fromOutputs = (m: Map<string, { shape: readonly number[]; data: ArrayLike<number> }>): [string, HostTensor][] =>
  [...m].map(([k, t]) => [k, { dtype: "F32", shape: [...t.shape], data: Float32Array.from(t.data) }]);

const failing = (r: ParityResult): string[] => r.rows.filter((x) => !x.ok).map((x) => `${x.group} ${x.name}`);

/**
 * A directory in the hf-parity format whose models have other sizes than the shipped ones, with
 * a reference computed by our own port (so it must pass); tokenizer/ and preprocess/ are the shipped ones.
 */
async function buildVariant(dir: string): Promise<void> {
  const g = join(dir, "gpt2");
  mkdirSync(g, { recursive: true });
  for (const f of ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"]) cpSync(join(HF_PARITY, "gpt2", f), join(g, f));
  const gcfg = { ...JSON.parse(readFileSync(join(HF_PARITY, "gpt2", "config.json"), "utf8")), n_layer: 3, n_head: 6, n_embd: 48, n_positions: 32 };
  writeFileSync(join(g, "config.json"), JSON.stringify(gcfg));
  const gpt2 = new GPT2LMHeadModel(parseGPT2Config(gcfg, "variant"), { seed: 11, std: 0.2 });
  await saveCheckpoint(gpt2, join(g, "model.safetensors"));
  gpt2.dispose();
  const inputIds = [[464, 2068, 7586, 21831, 18045, 625, 262], [37573, 4673, 4981, 460, 307, 12362, 8564], [7454, 2402, 257, 640, 11, 612, 373]];
  const attentionMask = inputIds.map((r) => r.map(() => 1));
  const promptIds = inputIds.map((r) => r.slice(0, 3));
  const { outputs, generated } = await gpt2Outputs(g, { inputIds, attentionMask, generate: { promptIds, newTokens: 6 } });
  await writeSafetensors(join(g, "reference.safetensors"), new Map([
    ["input_ids", i64(inputIds)], ["attention_mask", i64(attentionMask)], ["generate.prompt_ids", i64(promptIds)], ["generate.output_ids", i64(generated!)],
    ...fromOutputs(outputs),
  ]), { format: "pt" });

  const c = join(dir, "clip");
  mkdirSync(c, { recursive: true });
  const ccfg = JSON.parse(readFileSync(join(HF_PARITY, "clip", "config.json"), "utf8")) as Record<string, unknown>;
  Object.assign(ccfg.vision_config as Record<string, unknown>, { hidden_size: 24, num_attention_heads: 3, num_hidden_layers: 3, intermediate_size: 40, image_size: 24, patch_size: 6, projection_dim: 12 });
  ccfg.projection_dim = 12;
  writeFileSync(join(c, "config.json"), JSON.stringify(ccfg));
  const clip = new CLIPVisionModel((await readCLIPConfig(c)).vision, { seed: 5 });
  await saveCheckpoint(clip, join(c, "model.safetensors"));
  clip.dispose();
  const input = { pixelValues: f32([1, 3, 24, 24], 1), imageEmbedsWeight: f32([1, 12], 2), lastHiddenStateWeight: f32([1, 17, 24], 3) };
  const clipOut = await clipOutputs(c, input);
  await writeSafetensors(join(c, "reference.safetensors"), new Map([
    ["pixel_values", input.pixelValues], ["loss_weight.image_embeds", input.imageEmbedsWeight], ["loss_weight.last_hidden_state", input.lastHiddenStateWeight],
    ...fromOutputs(clipOut),
  ]));
  for (const d of ["tokenizer", "preprocess"]) symlinkSync(join(HF_PARITY, d), join(dir, d));
}

beforeAll(async () => {
  await init();
});

describe("runParity on the shipped hf-parity directory", () => {
  it("passes every row, reports each tensor, the generated ids, the tokenizer fields and skipped preprocessing, and frees the device", async () => {
    const live = device().stats().liveBytes;
    const r = await runParity(HF_PARITY);
    expect(device().stats().liveBytes).toBe(live);
    expect(failing(r)).toEqual([]);
    expect(r.ok).toBe(true);
    const names = (g: string): string[] => r.rows.filter((x) => x.group === g).map((x) => x.name);
    expect(names("gpt2").filter((n) => !n.startsWith("grad."))).toEqual(["logits", "hidden_states.0", "hidden_states.1", "hidden_states.2", "loss", "generate.output_ids"]);
    expect(names("gpt2").filter((n) => n.startsWith("grad.")).length).toBe(28);
    expect(names("clip").filter((n) => !n.startsWith("grad."))).toEqual(["hidden_states.0", "hidden_states.1", "hidden_states.2", "last_hidden_state", "pooler_output", "image_embeds", "loss"]);
    expect(names("clip").filter((n) => n.startsWith("grad.")).length).toBe(40);
    expect(r.rows.find((x) => x.name === "generate.output_ids")!.note).toBe("all 26 ids equal");
    expect(r.rows.filter((x) => x.group === "tokenizer").map((x) => [x.name, x.note])).toEqual(
      ["ids", "tokens", "decoded", "decoded_no_cleanup"].map((f) => [f, "0 of 61 cases differ"]),
    );
    expect(r.rows.filter((x) => x.group === "preprocess").map((x) => [x.name, x.ok, x.maxAbs, x.note])).toEqual(
      ["landscape_gradient.jpg", "portrait_shapes.png", "square_noise.jpg", "tiny_20x30.png"].map((f) => [`pixel_values.${f}`, true, null, PREPROCESS_SKIPPED]),
    );
    const row = (g: string, n: string) => r.rows.find((x) => x.group === g && x.name === n)!;
    expect(row("gpt2", "logits").tol).toBe(PARITY_TOLERANCES.gpt2.logits);
    expect(row("gpt2", "grad.transformer.wte.weight").tol).toBe(PARITY_TOLERANCES.gpt2.grad);
    expect(row("clip", "grad.visual_projection.weight").tol).toBe(PARITY_TOLERANCES.clip.grad);
    const worst = (g: string, grad: boolean): string => Math.max(...r.rows.filter((x) => x.group === g && x.name.startsWith("grad.") === grad && x.maxAbs !== null).map((x) => x.maxAbs!)).toExponential(2);
    console.log(`parity max abs err: gpt2 outputs ${worst("gpt2", false)}, grads ${worst("gpt2", true)}; clip outputs ${worst("clip", false)}, grads ${worst("clip", true)}`);
  });
});

describe("runParity on another directory of the format", () => {
  const dir = join(TMP, "variant");
  beforeAll(async () => {
    await buildVariant(dir);
  });

  it("derives every size from the files: a 3-layer GPT-2 with 6 heads, batch 3, and a 3-layer CLIP on 24-pixel images pass", async () => {
    const live = device().stats().liveBytes;
    const r = await runParity(dir);
    expect(device().stats().liveBytes).toBe(live);
    expect(failing(r)).toEqual([]);
    expect(r.rows.filter((x) => x.group === "gpt2" && x.name.startsWith("hidden_states.")).length).toBe(4);
    expect(r.rows.filter((x) => x.group === "gpt2" && x.name.startsWith("grad.")).length).toBe(4 + 12 * 3);
    expect(r.rows.filter((x) => x.group === "clip" && x.name.startsWith("hidden_states.")).length).toBe(4);
    expect(r.rows.find((x) => x.name === "generate.output_ids")!.note).toBe("all 27 ids equal");
  });

  it("fails exactly the rows whose reference moved: one hidden-state value, one generated id, an extra key", async () => {
    const file = join(dir, "gpt2", "reference.safetensors");
    const ref = await readSafetensors(file);
    const h = ref.get("hidden_states.2")!;
    h.data[5]! += 1e-4; // 5x the tolerance
    ref.get("generate.output_ids")!.data[3 * 9 - 1]! += 1;
    ref.set("hidden_states.9", { ...h });
    await writeSafetensors(file, ref);
    const r = await runParity(dir, { only: ["gpt2"] });
    expect(r.ok).toBe(false);
    expect(failing(r)).toEqual(["gpt2 hidden_states.2", "gpt2 generate.output_ids", "gpt2 hidden_states.9"]);
    const hs = r.rows.find((x) => x.name === "hidden_states.2")!;
    expect(hs.maxAbs).toBeGreaterThan(9e-5);
    expect(hs.maxAbs).toBeLessThan(1.1e-4);
    expect(r.rows.find((x) => x.name === "generate.output_ids")!.note).toMatch(/^1 of 27 ids differ \(ours vs reference\): \[2, 8\] \d+ vs \d+$/);
    expect(r.rows.find((x) => x.name === "hidden_states.9")!.note).toBe("in the reference, not produced by our model");
  });
});

describe("runParity on a directory not in the format", () => {
  it("names every missing file in one ParityError, before running anything", async () => {
    const empty = join(TMP, "empty");
    mkdirSync(join(empty, "gpt2"), { recursive: true });
    writeFileSync(join(empty, "gpt2", "config.json"), "{}");
    const err = await runParity(empty).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ParityError);
    expect((err as Error).message).toBe(
      `parity: expected a directory in the format of hf-parity (see its README) at ${empty}, got ${["gpt2/model.safetensors", "gpt2/reference.safetensors", "clip/config.json", "clip/model.safetensors", "clip/reference.safetensors", "tokenizer/cases.json", "preprocess/reference.safetensors"].map((f) => join(empty, f)).join(", ")} missing`,
    );
    await expect(runParity(join(TMP, "nowhere"))).rejects.toThrow(`got no directory at ${join(TMP, "nowhere")}`);
    await expect(runParity(HF_PARITY, { only: [] })).rejects.toThrow("parity: expected groups among gpt2, clip, tokenizer, preprocess, got []");
  });

  it("names a missing input tensor and its file", async () => {
    const dir = join(TMP, "noinput");
    cpSync(join(HF_PARITY, "clip"), join(dir, "clip"), { recursive: true });
    const file = join(dir, "clip", "reference.safetensors");
    const ref = await readSafetensors(file);
    ref.delete("pixel_values");
    await writeSafetensors(file, ref);
    await expect(runParity(dir, { only: ["clip"] })).rejects.toThrow(`parity: expected tensor "pixel_values" in ${file}, got keys `);
  });
});
