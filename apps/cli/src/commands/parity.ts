// `pnpm eye parity <dir>`: checks GPT-2, CLIP, the tokenizer and the CLIP image preprocessing
// against a reference directory in the format of shared/fixtures/hf-parity (its README defines
// each file) and prints one table row per compared tensor (max absolute error against the
// README's tolerance), then a final line. The models package runs the first three; the
// preprocess rows come from the data package (runPreprocessParity on <dir>/preprocess) and
// replace the rows the models package marks skipped. Exits 1 when any row fails; a directory
// not in the format fails with one message.
import { join } from "node:path";
import { defineCommand } from "citty";
import { init } from "@llms-eye/tensor";
import { type ParityGroup, type ParityResult, PARITY_GROUPS, PREPROCESS_SKIPPED, runParity } from "@llms-eye/models";
import { runPreprocessParity } from "@llms-eye/data";
import { userPath } from "../paths.js";
import { UsageError } from "./generate.js";

/** --only "gpt2,clip" → the groups; a clear error for an unknown one. */
export function groupsFromFlag(raw: string | undefined): ParityGroup[] | undefined {
  if (raw === undefined || raw === "") return undefined;
  const groups = raw.split(",").map((s) => s.trim());
  const bad = groups.filter((g) => !(PARITY_GROUPS as readonly string[]).includes(g));
  if (bad.length > 0) throw new UsageError(`parity: expected --only to list groups among ${PARITY_GROUPS.join(", ")}, got ${JSON.stringify(raw)}`);
  return groups as ParityGroup[];
}

/** The models package's skipped preprocess rows replaced, in place, by the data package's rows for `<dir>/preprocess`. */
export async function withPreprocessRows(r: ParityResult, dir: string): Promise<ParityResult> {
  const at = r.rows.findIndex((x) => x.note === PREPROCESS_SKIPPED);
  if (at < 0) return r;
  const real = await runPreprocessParity(join(dir, "preprocess"));
  const rows = r.rows.filter((x) => x.note !== PREPROCESS_SKIPPED);
  rows.splice(at, 0, ...real);
  return { rows, ok: rows.every((x) => x.ok) };
}

const fmt = (x: number | null, exact: string): string => (x === null ? exact : x.toExponential(2));

/** The table (group, tensor, max abs err, tol, ok, note) and the final line. */
export function formatParity(r: ParityResult): string {
  const head = ["group", "tensor", "max abs err", "tol", "ok", ""];
  const body = r.rows.map((x) => {
    const skipped = x.note === PREPROCESS_SKIPPED;
    return [x.group, x.name, fmt(x.maxAbs, "-"), fmt(x.tol, skipped ? "-" : "exact"), skipped ? "skip" : x.ok ? "ok" : "FAIL", x.note ?? ""];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (row: string[]): string => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  const failed = r.rows.filter((x) => !x.ok);
  const skipped = r.rows.filter((x) => x.note === PREPROCESS_SKIPPED).length;
  const checked = r.rows.length - skipped;
  const last = failed.length === 0
    ? `parity: ok, ${checked} of ${checked} rows within tolerance`
    : `parity: FAILED, ${failed.length} of ${checked} rows out of tolerance: ${failed.slice(0, 5).map((x) => `${x.group} ${x.name}`).join(", ")}${failed.length > 5 ? ", …" : ""}`;
  const skip = skipped > 0 ? ` (${skipped} preprocess rows ${PREPROCESS_SKIPPED})` : "";
  return [line(head), ...body.map(line), `${last}${skip}`].join("\n") + "\n";
}

export default defineCommand({
  meta: { name: "parity", description: "Compare GPT-2, CLIP, the tokenizer and the image preprocessing with a Hugging Face reference directory (format of shared/fixtures/hf-parity)" },
  args: {
    dir: { type: "positional", description: "reference directory with gpt2/, clip/, tokenizer/, preprocess/", required: true },
    only: { type: "string", description: `comma-separated groups to check: ${PARITY_GROUPS.join(", ")} (default all)` },
  },
  async run({ args }) {
    const only = groupsFromFlag(args.only);
    await init();
    const dir = userPath(args.dir);
    const result = await withPreprocessRows(await runParity(dir, only ? { only } : {}), dir);
    process.stdout.write(formatParity(result));
    if (!result.ok) process.exitCode = 1;
  },
});
