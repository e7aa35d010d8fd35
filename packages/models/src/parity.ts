// Parity against a directory in the format of ../shared/fixtures/hf-parity (its README defines
// every file): the models and tokenizer of `gpt2/` and `clip/` run the stored inputs, and every
// stored output (logits, hidden states, loss, gradients, generated ids, tokenizer ids, image
// preprocessing) becomes one row with its max absolute error against a fixed tolerance.
// Sizes (widths, heads, depths, batch, sequence length, vocabulary) all come from the files.
// The model runs live in parity-gpt2.ts and parity-clip.ts; this file holds the rows, the
// comparisons, the tokenizer and preprocessing groups and runParity itself.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { type HostTensor, readSafetensors, readSafetensorsHeader } from "./safetensors.js";
import { loadTokenizer } from "./tokenizer.js";
import { gpt2Outputs } from "./parity-gpt2.js";
import { clipOutputs } from "./parity-clip.js";

export type ParityGroup = "gpt2" | "clip" | "tokenizer" | "preprocess";
export const PARITY_GROUPS: readonly ParityGroup[] = ["gpt2", "clip", "tokenizer", "preprocess"];

export interface ParityRow {
  group: string;
  name: string;
  /** Max absolute error over the tensor; null for exact comparisons (ids, strings) and skipped rows. */
  maxAbs: number | null;
  /** Absolute tolerance; null for exact comparisons and skipped rows. */
  tol: number | null;
  ok: boolean;
  note?: string;
}
export interface ParityResult {
  rows: ParityRow[];
  ok: boolean;
}
export interface ParityOptions {
  /** Groups to check (default all four). */
  only?: ParityGroup[];
}

/**
 * The fixture README's tolerances (10x the float32-vs-float64 drift of torch), absolute.
 * CLIP's loss has no suggested value there: it counts as a CLIP output (its observed drift is 3.2e-6).
 */
export const PARITY_TOLERANCES = {
  gpt2: { logits: 3e-5, hidden: 2e-5, loss: 6e-6, grad: 2e-6 },
  clip: { output: 2e-5, loss: 2e-5, grad: 2e-4 },
} as const;

export const PREPROCESS_SKIPPED = "skipped: image preprocessing lands with the data package";

export class ParityError extends Error {
  override name = "ParityError";
}

/** Reference tensors of one reference.safetensors, with the file name for messages. */
class Reference {
  private constructor(
    readonly file: string,
    readonly tensors: Map<string, HostTensor>,
  ) {}

  static async read(file: string): Promise<Reference> {
    return new Reference(file, await readSafetensors(file));
  }

  /** An input the run needs: throws naming the file and key when absent. */
  need(key: string): HostTensor {
    const t = this.tensors.get(key);
    if (!t) throw new ParityError(`parity: expected tensor "${key}" in ${this.file}, got keys ${[...this.tensors.keys()].join(", ")}`);
    return t;
  }

  /** Rows of an i32/I64 (B, T) tensor as number arrays. */
  rows(key: string): number[][] {
    const t = this.need(key);
    if (t.shape.length !== 2) throw new ParityError(`parity: expected "${key}" in ${this.file} of shape [B, T], got [${t.shape.join(", ")}]`);
    const [B, T] = t.shape as [number, number];
    return Array.from({ length: B }, (_, b) => Array.from(t.data.subarray(b * T, (b + 1) * T)));
  }
}

/** Host copy of one output, named as its reference key. */
export interface Output {
  shape: readonly number[];
  data: ArrayLike<number>;
}

/** One row comparing `got` with the reference tensor `key` (absent or mis-shaped: a failing row saying so). */
function compareRow(group: string, ref: Reference, key: string, got: Output, tol: number): ParityRow {
  const want = ref.tensors.get(key);
  if (!want) return { group, name: key, maxAbs: null, tol, ok: false, note: `not in ${ref.file}` };
  if (want.shape.join(",") !== got.shape.join(",")) {
    return { group, name: key, maxAbs: null, tol, ok: false, note: `shape [${got.shape.join(", ")}], reference [${want.shape.join(", ")}]` };
  }
  let maxAbs = 0;
  for (let i = 0; i < want.data.length; i++) {
    const d = Math.abs(got.data[i]! - want.data[i]!);
    if (d > maxAbs || Number.isNaN(d)) maxAbs = d;
    if (Number.isNaN(maxAbs)) break; // a NaN anywhere fails the row
  }
  return { group, name: key, maxAbs, tol, ok: maxAbs <= tol };
}

/** Generated ids against the reference rows, exactly: the note lists the first mismatching [row, position]s. */
function idsRow(group: string, ref: Reference, key: string, got: number[][]): ParityRow {
  const want = ref.rows(key);
  const bad: string[] = [];
  const n = Math.max(want.length, got.length);
  for (let b = 0; b < n; b++) {
    const [w, g] = [want[b] ?? [], got[b] ?? []];
    for (let t = 0; t < Math.max(w.length, g.length); t++) if (w[t] !== g[t]) bad.push(`[${b}, ${t}] ${g[t] ?? "none"} vs ${w[t] ?? "none"}`);
  }
  const total = want.reduce((s, r) => s + r.length, 0);
  const note = bad.length === 0 ? `all ${total} ids equal` : `${bad.length} of ${total} ids differ (ours vs reference): ${bad.slice(0, 4).join(", ")}${bad.length > 4 ? ", …" : ""}`;
  return { group, name: key, maxAbs: null, tol: null, ok: bad.length === 0, note };
}

/**
 * Rows for every output (tolerance by name) and the generated ids, then a failing row for
 * each reference key that is neither an input nor produced by our model (a hidden state of a
 * layer we lack, the gradient of a parameter we do not have).
 */
function compareAll(group: "gpt2" | "clip", ref: Reference, outputs: Map<string, Output>, inputs: readonly string[], generated?: number[][]): ParityRow[] {
  const rows = [...outputs].map(([key, got]) => compareRow(group, ref, key, got, toleranceFor(group, key)));
  if (generated) rows.push(idsRow(group, ref, "generate.output_ids", generated));
  const used = new Set([...inputs, ...outputs.keys(), ...(generated ? ["generate.output_ids"] : [])]);
  for (const key of ref.tensors.keys()) {
    if (!used.has(key)) rows.push({ group, name: key, maxAbs: null, tol: null, ok: false, note: "in the reference, not produced by our model" });
  }
  return rows;
}

function toleranceFor(group: "gpt2" | "clip", key: string): number {
  const kind = key === "loss" ? "loss" : key.startsWith("grad.") ? "grad" : key === "logits" ? "logits" : "output";
  if (group === "gpt2") return PARITY_TOLERANCES.gpt2[kind === "output" ? "hidden" : kind];
  return PARITY_TOLERANCES.clip[kind === "logits" ? "output" : kind];
}

/** gpt2/: the stored input_ids (and attention_mask) forward and backward, then greedy generation from generate.prompt_ids. */
async function gpt2Parity(dir: string): Promise<ParityRow[]> {
  const ref = await Reference.read(join(dir, "reference.safetensors"));
  const inputIds = ref.rows("input_ids");
  const attentionMask = ref.tensors.has("attention_mask") ? ref.rows("attention_mask") : undefined;
  const gen = ref.tensors.has("generate.prompt_ids") || ref.tensors.has("generate.output_ids");
  const promptIds = gen ? ref.rows("generate.prompt_ids") : undefined;
  const newTokens = gen ? ref.need("generate.output_ids").shape[1]! - promptIds![0]!.length : 0;
  if (gen && newTokens < 1) throw new ParityError(`parity: expected generate.output_ids longer than generate.prompt_ids in ${ref.file}, got ${newTokens} new tokens`);
  const { outputs, generated } = await gpt2Outputs(dir, { inputIds, ...(attentionMask ? { attentionMask } : {}), ...(gen ? { generate: { promptIds: promptIds!, newTokens } } : {}) });
  return compareAll("gpt2", ref, outputs, ["input_ids", "attention_mask", "generate.prompt_ids"], generated);
}

/** clip/: the vision tower on pixel_values, the loss Σ image_embeds·W + Σ last_hidden_state·V, and its gradients. */
async function clipParity(dir: string): Promise<ParityRow[]> {
  const ref = await Reference.read(join(dir, "reference.safetensors"));
  const inputs = ["pixel_values", "loss_weight.image_embeds", "loss_weight.last_hidden_state"] as const;
  const [pixelValues, imageEmbedsWeight, lastHiddenStateWeight] = inputs.map((k) => ref.need(k)) as [HostTensor, HostTensor, HostTensor];
  const outputs = await clipOutputs(dir, { pixelValues, imageEmbedsWeight, lastHiddenStateWeight });
  return compareAll("clip", ref, outputs, inputs);
}

interface TokenizerCase {
  text: string;
  ids: number[];
  tokens: string[];
  decoded: string;
  decoded_no_cleanup: string;
}

/** tokenizer/cases.json through gpt2/'s tokenizer: one row per field with the count of mismatching cases. */
async function tokenizerParity(dir: string): Promise<ParityRow[]> {
  const file = join(dir, "tokenizer", "cases.json");
  let cases: TokenizerCase[];
  try {
    cases = (JSON.parse(readFileSync(file, "utf8")) as { cases: TokenizerCase[] }).cases;
  } catch (e) {
    throw new ParityError(`parity: expected valid JSON {"cases": [...]} in ${file}, got ${(e as Error).message}`);
  }
  if (!Array.isArray(cases) || cases.some((c) => typeof c?.text !== "string")) throw new ParityError(`parity: expected {"cases": [{text, ids, tokens, decoded, decoded_no_cleanup}, ...]} in ${file}`);
  const tok = await loadTokenizer(join(dir, "gpt2"), "gpt2");
  const fields: [keyof TokenizerCase, (c: TokenizerCase) => unknown][] = [
    ["ids", (c) => tok.encode(c.text)],
    ["tokens", (c) => tok.tokens(c.text)],
    ["decoded", (c) => tok.decode(c.ids)],
    ["decoded_no_cleanup", (c) => tok.decode(c.ids, { cleanUpTokenizationSpaces: false })],
  ];
  return fields.map(([field, run]) => {
    const bad = cases.filter((c) => JSON.stringify(run(c)) !== JSON.stringify(c[field]));
    const first = bad[0] ? `; first: ${JSON.stringify(bad[0].text).slice(0, 40)} gives ${JSON.stringify(run(bad[0])).slice(0, 60)}` : "";
    return { group: "tokenizer", name: field, maxAbs: null, tol: null, ok: bad.length === 0, note: `${bad.length} of ${cases.length} cases differ${first}` };
  });
}

/** preprocess/: one skipped row per image of its reference (pixel_values.<file>), until the data package lands. */
async function preprocessParity(dir: string): Promise<ParityRow[]> {
  const { tensors } = await readSafetensorsHeader(join(dir, "preprocess", "reference.safetensors"));
  const names = [...tensors.keys()].filter((k) => k.startsWith("pixel_values."));
  return names.map((name) => ({ group: "preprocess", name, maxAbs: null, tol: null, ok: true, note: PREPROCESS_SKIPPED }));
}

/** Files each group needs (relative to the parity directory). */
const REQUIRED: Record<ParityGroup, string[]> = {
  gpt2: ["gpt2/config.json", "gpt2/model.safetensors", "gpt2/reference.safetensors"],
  clip: ["clip/config.json", "clip/model.safetensors", "clip/reference.safetensors"],
  tokenizer: ["tokenizer/cases.json", "gpt2"],
  preprocess: ["preprocess/reference.safetensors"],
};

/**
 * Runs every requested group of the parity directory `dir` and returns one row per compared
 * quantity; ok is false when any row fails. Throws ParityError, before running anything, when
 * `dir` lacks a file of the format. Everything the runs allocate on the device is released.
 */
export async function runParity(dir: string, opts: ParityOptions = {}): Promise<ParityResult> {
  const groups = opts.only ?? PARITY_GROUPS;
  const unknown = groups.filter((g) => !PARITY_GROUPS.includes(g));
  if (unknown.length > 0 || groups.length === 0) throw new ParityError(`parity: expected groups among ${PARITY_GROUPS.join(", ")}, got ${JSON.stringify(groups)}`);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ParityError(`parity: expected a directory in the format of hf-parity (gpt2/, clip/, tokenizer/, preprocess/), got no directory at ${dir}`);
  const absent = groups.flatMap((g) => REQUIRED[g]).filter((f, i, all) => all.indexOf(f) === i && !existsSync(join(dir, f)));
  const missing = absent.filter((f) => !absent.some((g) => g.startsWith(`${f}/`))); // "gpt2" only when nothing inside it is named
  if (missing.length > 0) {
    throw new ParityError(`parity: expected a directory in the format of hf-parity (see its README) at ${dir}, got ${missing.map((f) => join(dir, f)).join(", ")} missing`);
  }
  const rows: ParityRow[] = [];
  for (const g of PARITY_GROUPS.filter((g) => groups.includes(g))) {
    if (g === "gpt2") rows.push(...(await gpt2Parity(join(dir, "gpt2"))));
    if (g === "clip") rows.push(...(await clipParity(join(dir, "clip"))));
    if (g === "tokenizer") rows.push(...(await tokenizerParity(dir)));
    if (g === "preprocess") rows.push(...(await preprocessParity(dir)));
  }
  return { rows, ok: rows.every((r) => r.ok) };
}
