// `pnpm eye generate --model <repo-id|dir> --prompt "…"`: prints the prompt followed by GPT-2's
// continuation. Greedy by default; --beams N (> 1) runs beam search; any of --top-k, --top-p,
// --temperature, --seed (or --sample) samples. The model resolves through the hub cache
// (downloading what is missing) or is a local directory.
import { existsSync } from "node:fs";
import { defineCommand } from "citty";
import { init } from "@llms-eye/tensor";
import { type GenerateOptions, GPT2LMHeadModel, generate, loadTokenizer, resolveModel } from "@llms-eye/models";
import { userPath } from "../paths.js";
import { OPTIONAL_FILES, REQUIRED_FILES } from "./download.js";

export class UsageError extends Error {
  override name = "UsageError";
}

/** A number flag: undefined when absent; a clear error when not a number in range. */
function num(args: Record<string, unknown>, flag: string, check: (x: number) => boolean, what: string): number | undefined {
  const raw = args[flag];
  if (raw === undefined || raw === "") return undefined;
  const x = Number(raw);
  if (!Number.isFinite(x) || !check(x)) throw new UsageError(`generate: expected ${what} for --${flag}, got ${JSON.stringify(raw)}`);
  return x;
}
const int = (lo: number) => (x: number) => Number.isInteger(x) && x >= lo;

/** The generate() options the flags ask for. */
export function optionsFromFlags(args: Record<string, unknown>, eosId: number): GenerateOptions {
  const maxNewTokens = num(args, "max-new-tokens", int(1), "a positive integer") ?? 32;
  const numBeams = num(args, "beams", int(1), "a positive integer");
  const lengthPenalty = num(args, "length-penalty", () => true, "a number");
  const topK = num(args, "top-k", int(0), "a non-negative integer (0 = off)");
  const topP = num(args, "top-p", (x) => x > 0 && x <= 1, "a number in (0, 1]");
  const temperature = num(args, "temperature", (x) => x > 0, "a positive number");
  const seed = num(args, "seed", int(0), "a non-negative integer");
  const sampling = args.sample === true || [topK, topP, temperature, seed].some((x) => x !== undefined);
  if (sampling && numBeams !== undefined && numBeams > 1) {
    throw new UsageError("generate: expected either --beams or sampling flags (--sample, --top-k, --top-p, --temperature, --seed), got both; beam search is deterministic");
  }
  const common = { maxNewTokens, eosId };
  if (numBeams !== undefined && numBeams > 1) return { ...common, strategy: "beam", numBeams, ...(lengthPenalty !== undefined ? { lengthPenalty } : {}) };
  if (!sampling) return { ...common, strategy: "greedy" };
  return { ...common, strategy: "sample", ...(topK !== undefined ? { topK } : {}), ...(topP !== undefined ? { topP } : {}), ...(temperature !== undefined ? { temperature } : {}), seed: seed ?? 0 };
}

export default defineCommand({
  meta: { name: "generate", description: "Continue a prompt with a GPT-2 model (greedy, beam search or sampling)" },
  args: {
    model: { type: "string", description: "hub repo id (distilgpt2, gpt2, …) or a model directory", required: true },
    prompt: { type: "string", description: "text to continue", required: true },
    "max-new-tokens": { type: "string", description: "tokens to generate (default 32)" },
    beams: { type: "string", description: "beam search with N beams (N > 1)" },
    "length-penalty": { type: "string", description: "beam search: score / length^P (default 1)" },
    sample: { type: "boolean", description: "sample (top-k 50, as Hugging Face) instead of greedy", default: false },
    "top-k": { type: "string", description: "sample from the K most likely tokens (default 50; 0 = off)" },
    "top-p": { type: "string", description: "sample from the smallest top set with probability above P" },
    temperature: { type: "string", description: "divide the logits by T before sampling (default 1)" },
    seed: { type: "string", description: "random seed of sampling (default 0)" },
  },
  async run({ args }) {
    const local = userPath(args.model);
    const dir = await resolveModel(existsSync(local) ? local : args.model, REQUIRED_FILES, { optional: OPTIONAL_FILES });
    await init();
    const tok = await loadTokenizer(dir, "gpt2");
    const model = await GPT2LMHeadModel.fromPretrained(dir);
    try {
      const opts = optionsFromFlags(args, model.config.eosTokenId ?? tok.eosId);
      const ids = tok.encode(args.prompt);
      const prompt = ids.length > 0 ? ids : [model.config.bosTokenId ?? tok.bosId]; // an empty prompt starts at <|endoftext|>, as HF
      const [out] = await generate(model, [prompt], opts);
      const text = tok.decode(out!.slice(prompt.length), { skipSpecialTokens: true });
      process.stdout.write(`${ids.length > 0 ? args.prompt : ""}${text}\n`);
    } finally {
      model.dispose();
    }
  },
});
