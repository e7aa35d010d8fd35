// Hugging Face checkpoints (safetensors) in and out of an autograd Module, by HF parameter
// names. Loading checks every key, shape and dtype from the header first (one StateDictError
// listing all missing, unexpected and mis-shaped keys, before anything is uploaded), then
// streams the file tensor by tensor straight into the parameters' GPU tensors, so peak host
// memory is about one tensor. Saving downloads one parameter at a time into our writer.
import type { Tensor } from "@llms-eye/tensor";
import { type Module, type Var, StateDictError } from "@llms-eye/autograd";
import { type HostTensor, type SafeDType, type TensorInfo, forEachTensor, readSafetensorsHeader, writeSafetensorsFrom } from "./safetensors.js";

export interface LoadOptions {
  /** Checkpoint names are mapped by this before matching the module's names (e.g. strip "transformer."); return null to ignore a key (e.g. "attn.bias", "attn.masked_bias", a tied "lm_head.weight"). */
  rename?: (key: string) => string | null;
  /** Only keys for which this is true are read from disk at all (a vision-only CLIP load reads vision_model.* and visual_projection.weight). Applied to the raw key. */
  select?: (key: string) => boolean;
}

export interface LoadResult {
  /** Raw keys that `rename` mapped to null. */
  ignored: string[];
  /** Raw keys left out by `select` (never read). */
  skipped: string[];
  /** Bytes read from the data section. */
  bytes: number;
}

/** Checkpoint dtypes that load into a parameter of each engine dtype. */
const LOADS_INTO: Record<Tensor["dtype"], readonly SafeDType[]> = { f32: ["F32", "F16", "BF16"], i32: ["I64", "I32"], u32: [] };
/** Bytes uploaded between waits on the queue (bounds Dawn's staging memory). */
const SYNC_BYTES = 64 * 1024 * 1024;
const fmtShape = (s: readonly number[]): string => `[${s.join(", ")}]`;

/**
 * Reads the checkpoint tensor by tensor and uploads each one into the module's parameter of
 * the same (renamed) name. Throws StateDictError naming every missing, unexpected and
 * mis-shaped key before uploading anything, so a bad checkpoint leaves the module untouched.
 * A parameter tied under several names (an LM head tied to the embedding) needs only one of them.
 */
export async function loadCheckpoint(module: Module, file: string, opts: LoadOptions = {}): Promise<LoadResult> {
  const { tensors } = await readSafetensorsHeader(file);
  const own = new Map<string, Var>(module.namedParameters("", false));
  const ignored: string[] = [];
  const skipped: string[] = [];
  const unexpected: string[] = [];
  const mismatched: string[] = [];
  const plan = new Map<string, Var>(); // raw key → parameter it loads into
  const source = new Map<string, string>(); // module name → raw key that provides it
  for (const [raw, info] of tensors) {
    if (opts.select && !opts.select(raw)) {
      skipped.push(raw);
      continue;
    }
    const name = opts.rename ? opts.rename(raw) : raw;
    if (name === null) {
      ignored.push(raw);
      continue;
    }
    const shown = name === raw ? name : `${name} (from ${raw})`;
    const p = own.get(name);
    const earlier = source.get(name);
    if (!p) unexpected.push(shown);
    else if (earlier !== undefined) unexpected.push(`${shown} (also given by ${earlier})`);
    else {
      source.set(name, raw);
      const problem = mismatch(p, info);
      if (problem) mismatched.push(`${shown} (${problem})`);
      else plan.set(raw, p);
    }
  }
  const loaded = new Set([...source.keys()].map((k) => own.get(k)));
  const missing = [...own].filter(([, p]) => !loaded.has(p)).map(([k]) => k);
  if (missing.length || unexpected.length || mismatched.length) {
    const parts = [
      missing.length ? `missing keys: ${missing.join(", ")}` : "",
      unexpected.length ? `unexpected keys: ${unexpected.join(", ")}` : "",
      mismatched.length ? `mis-shaped keys: ${mismatched.join(", ")}` : "",
    ].filter(Boolean);
    const hint = unexpected.length && missing.length ? "; check the model class and config for this checkpoint, or the rename option" : "";
    throw new StateDictError(
      `loadCheckpoint: expected the keys and shapes of ${module.constructor.name} in ${file}, got ${parts.join("; ")}${hint}`,
      missing,
      unexpected,
      mismatched,
    );
  }
  let bytes = 0;
  let unsynced = 0;
  await forEachTensor(
    file,
    async (raw, t) => {
      const p = plan.get(raw)!;
      p.value.write(t.data as Float32Array | Int32Array);
      bytes += t.data.byteLength;
      unsynced += t.data.byteLength;
      // Dawn stages each upload in host memory until the queue has run it: wait now and then
      // so that staging stays small instead of growing to a second copy of the checkpoint.
      if (unsynced >= SYNC_BYTES) {
        unsynced = 0;
        await p.value.device.sync();
      }
    },
    { select: (raw) => plan.has(raw) },
  );
  return { ignored, skipped, bytes };
}

/** Why a checkpoint entry cannot load into `p`, or null when it can. */
function mismatch(p: Var, info: TensorInfo): string | null {
  const want = p.value.shape;
  const dtypeOk = LOADS_INTO[p.value.dtype].includes(info.dtype);
  const shapeOk = want.length === info.shape.length && want.every((d, i) => d === info.shape[i]);
  if (dtypeOk && shapeOk) return null;
  const got = info.dtype === "F32" ? "f32" : info.dtype === "I32" ? "i32" : info.dtype; // as loadStateDict words it
  return `expected ${fmtShape(want)} ${p.value.dtype}, got ${fmtShape(info.shape)} ${got}`;
}

const SAVE_DTYPE: Record<Tensor["dtype"], SafeDType | null> = { f32: "F32", i32: "I32", u32: null };

/**
 * Writes the module's parameters under their HF names (a tied parameter once, under its first
 * name, as save_pretrained does), downloading one tensor at a time into the atomic writer.
 */
export async function saveCheckpoint(module: Module, file: string, metadata: Record<string, string> = {}): Promise<void> {
  const params = module.namedParameters();
  const sources = params.map(([name, p]) => {
    const dtype = SAVE_DTYPE[p.value.dtype];
    if (!dtype) throw new StateDictError(`saveCheckpoint: expected f32 or i32 parameters for ${file}, got ${p.value.dtype} for ${name}`, [], [], [name]);
    return { name, dtype, shape: [...p.value.shape], data: async () => (await p.value.toArray()) as HostTensor["data"] };
  });
  await writeSafetensorsFrom(file, sources, metadata);
}

/** loadCheckpoint, then `module`; on failure the module's parameters are released and the error rethrown. */
export async function loadPretrained<M extends Module>(module: M, file: string, opts: LoadOptions = {}): Promise<M> {
  try {
    await loadCheckpoint(module, file, opts);
    return module;
  } catch (e) {
    for (const p of module.parameters()) p.dispose();
    throw e;
  }
}
