// The flags of `eye train` and `eye retrain`, mapped onto the train package's options (whose
// zod schema validates them and names a bad flag). Numbers arrive as strings from citty.
import { existsSync } from "node:fs";
import { SIZE_DEFAULTS, type TrainInput } from "@llms-eye/train";
import { userPath } from "../paths.js";

export class UsageError extends Error {
  override name = "UsageError";
}

/** "default 16" when tiny and the pretrained sizes share a default, else "tiny 32, others 16". */
const perSize = (tiny: unknown, others: unknown): string => (tiny === others ? `default ${String(tiny)}` : `tiny ${String(tiny)}, others ${String(others)}`);

export const TRAIN_FLAGS = {
  data: { type: "string", description: "dataset: unified JSONL file or a directory holding one (tiny: built-in shapes in data/shapes)" },
  out: { type: "string", description: "run directory (default: runs/<size>, or runs/<size>-2, -3, … when taken)" },
  steps: { type: "string", description: `optimizer steps (tiny ${SIZE_DEFAULTS.tiny.steps}, others: --epochs worth)` },
  epochs: { type: "string", description: `epochs over the train split when --steps is absent (default ${SIZE_DEFAULTS.mini.epochs})` },
  "batch-size": { type: "string", description: `images per step (${perSize(SIZE_DEFAULTS.tiny.batchSize, SIZE_DEFAULTS.mini.batchSize)})` },
  accum: { type: "string", description: "micro-batches per step (gradient accumulation, default 1)" },
  lr: { type: "string", description: "peak learning rate of GPT-2" },
  "projector-lr": { type: "string", description: "peak learning rate of the projector, heads and logit scale" },
  "vision-lr": { type: "string", description: "peak learning rate of unfrozen vision layers" },
  "weight-decay": { type: "string", description: "AdamW weight decay of matrices (default 0.01)" },
  lambda: { type: "string", description: "weight λ of InfoNCE in LM + λ·InfoNCE (default 1; 0 = LM only)" },
  warmup: { type: "string", description: "linear warmup steps" },
  schedule: { type: "string", description: "cosine | linear | constant (default cosine)" },
  seed: { type: "string", description: "seed of initialisation and data order (default 0)" },
  "eval-every": { type: "string", description: "evaluate every N steps (0 = at the end only)" },
  "ckpt-every": { type: "string", description: "checkpoint every N steps (0 = at the end only)" },
  "eval-images": { type: "string", description: "validation images per evaluation" },
  "freeze-llm": { type: "boolean", description: "keep GPT-2 frozen (train projector and heads only)" },
  "unfreeze-vision": { type: "string", description: "train the top N vision layers (default 0: CLIP frozen, features cached)" },
  captions: { type: "string", description: "random (one caption per image per epoch, default) | all" },
  "max-tokens": { type: "string", description: "longest caption in tokens (longer ones are cut and counted)" },
  workers: { type: "string", description: "image decoding threads" },
} as const;

const NUMERIC = ["steps", "epochs", "batch-size", "accum", "lr", "projector-lr", "vision-lr", "weight-decay", "lambda", "warmup", "seed", "eval-every", "ckpt-every", "eval-images", "unfreeze-vision", "max-tokens", "workers"] as const;
const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** The TrainInput of parsed citty args (paths resolved against where the user ran pnpm). */
export function trainInput(args: Record<string, unknown>, size: string): TrainInput {
  const input: Record<string, unknown> = { size };
  for (const f of NUMERIC) {
    const raw = args[f];
    if (raw === undefined || raw === "") continue;
    const x = Number(raw);
    if (!Number.isFinite(x)) throw new UsageError(`expected a number for --${f}, got ${JSON.stringify(raw)}`);
    input[camel(f)] = x;
  }
  if (typeof args.data === "string") input.data = userPath(args.data);
  if (typeof args.out === "string") input.out = userPath(args.out);
  if (typeof args.schedule === "string") input.schedule = args.schedule;
  if (typeof args.captions === "string") input.captions = args.captions;
  if (args["freeze-llm"] === true) input.freezeLlm = true;
  return input as TrainInput;
}

/** runs/<name>, else runs/<name>-2, -3, …: the first that does not exist (a run is never overwritten). */
export function freshRunDir(name: string): string {
  for (let i = 1; ; i++) {
    const dir = userPath(i === 1 ? `runs/${name}` : `runs/${name}-${i}`);
    if (!existsSync(dir)) return dir;
  }
}

/** The newest of runs/<name>, runs/<name>-2, … (what `--resume` continues without --out). */
export function latestRunDir(name: string): string {
  let last = userPath(`runs/${name}`);
  for (let i = 2; existsSync(userPath(`runs/${name}-${i}`)); i++) last = userPath(`runs/${name}-${i}`);
  return last;
}
