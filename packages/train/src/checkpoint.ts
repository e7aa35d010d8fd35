// Training checkpoints. A run directory holds checkpoints/step-NNNNNNN/, each a saved eye model
// (config.json, model.safetensors, preprocessor_config.json: captioning needs nothing else)
// plus state.json (step, loader position, options, optimizer hyper-parameters) and
// optimizer.safetensors (AdamW's m and v per trainable parameter). A checkpoint is written into a
// temporary directory and renamed into place, then latest.json is replaced atomically: a crash
// or Ctrl-C mid-write never leaves a half checkpoint, and a good checkpoint is never overwritten.
import { readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { z } from "zod";
import type { Var } from "@llms-eye/autograd";
import { type AdamW, type AdamWHyper, type HostOptimizerState, optimizerStateFromHost, optimizerStateToHost } from "@llms-eye/autograd";
import { type EyeModel, EYE_FILES, readSafetensors, writeDirAtomic, writeEyeModelFiles, writeSafetensors } from "@llms-eye/models";
import { TrainOptionsSchema, type TrainOptions } from "./options.js";

export const STATE_FILE = "state.json";
export const OPTIMIZER_FILE = "optimizer.safetensors";
export const LATEST_FILE = "latest.json";

export class CheckpointError extends Error {
  override name = "CheckpointError";
}

const LoaderPositionSchema = z.object({
  seed: z.number(), epoch: z.number(), index: z.number(), units: z.number(), batchSize: z.number(), fingerprint: z.string(),
});

export const TrainStateSchema = z.object({
  format: z.literal("llms-eye-train"),
  version: z.literal(1),
  step: z.number().int().min(0),
  totalSteps: z.number().int().min(0),
  loader: LoaderPositionSchema,
  options: TrainOptionsSchema,
  /** Seconds of training so far (for tokens/s and the report). */
  elapsed: z.number().min(0),
  /** The trainable parameters in optimizer order, and each group's hyper-parameters. */
  params: z.array(z.string()),
  groups: z.array(z.record(z.string(), z.unknown())),
  paramSteps: z.array(z.object({ index: z.number().int(), step: z.number().int() })),
});
export type TrainState = z.infer<typeof TrainStateSchema>;

export const checkpointName = (step: number): string => `step-${String(step).padStart(7, "0")}`;

export interface SaveCheckpointArgs {
  runDir: string;
  model: EyeModel;
  preprocessor: Record<string, unknown>;
  optimizer: AdamW;
  named: [string, Var][];
  state: Omit<TrainState, "format" | "version" | "params" | "groups" | "paramSteps">;
}

/** Writes checkpoints/step-N atomically and points latest.json at it; returns its directory. */
export async function saveTrainCheckpoint({ runDir, model, preprocessor, optimizer, named, state }: SaveCheckpointArgs): Promise<string> {
  const dir = join(runDir, "checkpoints", checkpointName(state.step));
  if (await exists(join(dir, STATE_FILE))) return dir; // this step is already saved: never rewrite a good checkpoint
  const sd = optimizer.stateDict();
  let host: HostOptimizerState<AdamWHyper>;
  try {
    host = await optimizerStateToHost(sd);
  } finally {
    for (const s of sd.state.values()) for (const t of Object.values(s.tensors)) t.dispose();
  }
  const full: TrainState = {
    format: "llms-eye-train",
    version: 1,
    ...state,
    params: named.map(([n]) => n),
    groups: host.groups.map((g) => ({ ...g })),
    paramSteps: host.state.map((s) => ({ index: s.index, step: s.step })),
  };
  await writeDirAtomic(dir, async (tmp) => {
    await writeEyeModelFiles(model, tmp, preprocessor, { step: String(state.step) });
    const tensors = new Map(host.state.flatMap((s) => Object.entries(s.tensors).map(([k, t]) => [`${s.index}.${k}`, { dtype: "F32" as const, shape: t.shape, data: t.data }] as const)));
    await writeSafetensors(join(tmp, OPTIMIZER_FILE), tensors, { format: "llms-eye-optimizer" });
    await writeFile(join(tmp, STATE_FILE), `${JSON.stringify(full, null, 2)}\n`);
  });
  await writeJsonAtomic(join(runDir, LATEST_FILE), { checkpoint: `checkpoints/${checkpointName(state.step)}`, step: state.step });
  return dir;
}

/** Removes all but the newest `keep` checkpoints (never the one latest.json names). */
export async function pruneCheckpoints(runDir: string, keep: number): Promise<void> {
  const root = join(runDir, "checkpoints");
  const names = (await readdir(root).catch(() => [] as string[])).filter((n) => /^step-\d+$/.test(n)).sort();
  const latest = await readLatest(runDir).catch(() => null);
  for (const n of names.slice(0, Math.max(0, names.length - keep))) {
    if (latest && basename(latest) === n) continue;
    await rm(join(root, n), { recursive: true, force: true });
  }
}

/** The checkpoint directory latest.json names (absolute). */
export async function readLatest(runDir: string): Promise<string> {
  const file = join(runDir, LATEST_FILE);
  const text = await readFile(file, "utf8").catch(() => null);
  if (text === null) throw new CheckpointError(`checkpoint: expected ${file} in the run directory ${runDir}, got no such file; start a run with \`pnpm eye train --size tiny --out ${runDir}\``);
  const parsed = z.object({ checkpoint: z.string() }).safeParse(safeJson(text));
  if (!parsed.success) throw new CheckpointError(`checkpoint: expected {"checkpoint": "checkpoints/step-…"} in ${file}, got ${text.slice(0, 80)}; delete it and resume from a checkpoints/step-* directory with --from`);
  return join(runDir, parsed.data.checkpoint);
}

/** A run directory (→ its latest checkpoint) or a checkpoint directory. */
export async function resolveCheckpoint(path: string): Promise<string> {
  if (await exists(join(path, STATE_FILE))) return path;
  if (await exists(join(path, LATEST_FILE))) return readLatest(path);
  if (await exists(join(path, EYE_FILES.config))) return path; // a bare saved model (no training state)
  throw new CheckpointError(`checkpoint: expected a run directory (with ${LATEST_FILE}) or a checkpoint directory (with ${STATE_FILE}) at ${path}, got neither; train one with \`pnpm eye train --size tiny --out ${path}\``);
}

/** Reads and validates state.json of a checkpoint directory. */
export async function readTrainState(dir: string): Promise<TrainState> {
  const file = join(dir, STATE_FILE);
  const text = await readFile(file, "utf8").catch(() => null);
  if (text === null) throw new CheckpointError(`checkpoint: expected ${file}, got no such file; the directory is not a training checkpoint`);
  const parsed = TrainStateSchema.safeParse(safeJson(text));
  if (!parsed.success) {
    throw new CheckpointError(`checkpoint: expected a valid training state in ${file}, got ${parsed.error.issues[0]?.path.join(".")}: ${parsed.error.issues[0]?.message}; the checkpoint is damaged — resume from an older one in ${dirname(dir)}`);
  }
  return parsed.data;
}

/** Restores AdamW's moments from a checkpoint into `optimizer` (built over the same parameters). */
export async function loadOptimizerState(dir: string, state: TrainState, optimizer: AdamW, named: [string, Var][]): Promise<void> {
  const names = named.map(([n]) => n);
  if (names.join("\n") !== state.params.join("\n")) {
    throw new CheckpointError(`checkpoint: expected the trainable parameters of ${dir} (${state.params.length}) to match this run's (${names.length}); resume with the same --freeze-llm / --unfreeze-vision, or use \`pnpm eye retrain --from ${dir}\` to start a new optimizer`);
  }
  const file = join(dir, OPTIMIZER_FILE);
  const tensors = await readSafetensors(file).catch((e: Error) => {
    throw new CheckpointError(`checkpoint: expected ${file}, got ${e.message}; the checkpoint is damaged — resume from an older one in ${dirname(dir)}`);
  });
  const host: HostOptimizerState<AdamWHyper> = {
    groups: state.groups as unknown as HostOptimizerState<AdamWHyper>["groups"],
    state: state.paramSteps.map(({ index, step }) => {
      const get = (k: string) => {
        const t = tensors.get(`${index}.${k}`);
        if (!t || !(t.data instanceof Float32Array)) throw new CheckpointError(`checkpoint: expected tensor ${index}.${k} in ${file}, got none; the checkpoint is damaged`);
        return { shape: t.shape, data: t.data };
      };
      return { index, step, tensors: { m: get("m"), v: get("v") } };
    }),
  };
  const sd = optimizerStateFromHost(host);
  try {
    optimizer.loadStateDict(sd);
  } finally {
    for (const s of sd.state.values()) for (const t of Object.values(s.tensors)) t.dispose();
  }
}

export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(tmp, file);
}

const exists = (p: string): Promise<boolean> => stat(p).then(() => true, () => false);

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
