// GPT-2's side of `runParity` (parity.ts): loads gpt2/ as GPT2LMHeadModel, runs the stored
// input ids forward with labels = input_ids and backward, and generates greedily from the
// stored prompts. Every output comes back on the host under its reference.safetensors key;
// everything on the device is released before returning.
// Shape letters: B batch, T tokens, C n_embd, V vocab size, T0 prompt tokens, N new tokens.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type Tensor, tensor, tidy } from "@llms-eye/tensor";
import { backward } from "@llms-eye/autograd";
import { GPT2LMHeadModel } from "./gpt2.js";
import { generate } from "./generate.js";
import type { Output } from "./parity.js";

export interface GPT2ParityInput {
  /** (B, T) token ids: the forward's input and its labels (HF shifts them). */
  inputIds: number[][];
  /** (B, T) 1 keep / 0 pad; default all ones. */
  attentionMask?: number[][];
  /** Greedy generation of `newTokens` tokens from (B, T0) prompts, attention mask all ones. */
  generate?: { promptIds: number[][]; newTokens: number };
}

export interface GPT2ParityOutput {
  /** logits (B, T, V), hidden_states.0 … hidden_states.L (B, T, C), loss [1], grad.<parameter>. */
  outputs: Map<string, Output>;
  /** (B, T0 + N): prompt + generated ids, rows that stopped at end-of-text padded as HF pads them. */
  generated?: number[][];
}

const ids2 = (rows: number[][]): Tensor => tensor(Int32Array.from(rows.flat()), [rows.length, rows[0]?.length ?? 0], "i32"); // (B, T)
const host = async (t: Tensor, shape: readonly number[] = t.shape): Promise<Output> => ({ shape, data: (await t.toArray()) as Float32Array });

/** Runs the GPT-2 of `dir` (config.json + model.safetensors) on `input`; see the file header. */
export async function gpt2Outputs(dir: string, input: GPT2ParityInput): Promise<GPT2ParityOutput> {
  const model = await GPT2LMHeadModel.fromPretrained(dir);
  const held: Tensor[] = [];
  try {
    const outputs = new Map<string, Output>();
    const [logits, loss, ...hidden] = tidy(() => {
      const ids = ids2(input.inputIds);
      const mask = input.attentionMask ? { attentionMask: ids2(input.attentionMask) } : {};
      const o = model.forward({ ids, ...mask, labels: ids, outputHiddenStates: true });
      backward(o.loss!);
      return [o.logits!.value, o.loss!.value, ...o.hiddenStates!.map((h) => h.value)];
    });
    held.push(logits!, loss!, ...hidden);
    outputs.set("logits", await host(logits!));
    for (const [i, h] of hidden.entries()) outputs.set(`hidden_states.${i}`, await host(h));
    outputs.set("loss", await host(loss!, [1])); // the fixtures store scalars as [1]
    for (const [name, p] of model.namedParameters()) {
      outputs.set(`grad.${name}`, p.grad ? await host(p.grad) : { shape: p.value.shape, data: new Float32Array(p.value.size) });
    }
    model.zeroGrad();
    if (!input.generate) return { outputs };
    const { promptIds, newTokens } = input.generate;
    const gen = await generationIds(dir, model.config.eosTokenId);
    const out = await generate(model, promptIds, {
      maxNewTokens: newTokens, strategy: "greedy", eosId: gen.eos, padId: gen.pad, attentionMask: promptIds.map((r) => r.map(() => 1)),
    });
    const width = Math.max(...out.map((r) => r.length));
    return { outputs, generated: out.map((r) => [...r, ...Array<number>(width - r.length).fill(gen.pad)]) };
  } finally {
    held.forEach((t) => t.dispose());
    model.dispose();
  }
}

/** eos and pad ids as HF's generate takes them: generation_config.json, else config.json's eos (pad = eos). */
async function generationIds(dir: string, eosFromConfig: number): Promise<{ eos: number; pad: number }> {
  const file = join(dir, "generation_config.json");
  const cfg = existsSync(file) ? (JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>) : {};
  const int = (v: unknown): number | undefined => (Number.isInteger(v) ? (v as number) : undefined);
  const eos = int(cfg.eos_token_id) ?? eosFromConfig;
  return { eos, pad: int(cfg.pad_token_id) ?? eos };
}
