// The preparation summary: images and captions per split, every skipped entry with its reason,
// the inputs read and notes on how splits were chosen. Written as `<out>.summary.json` beside
// the output and printed as a short text table (the first 20 skips, then a pointer to the file).
import { SKIP_REASONS, type Skip, type SkipReason } from "./parsed.js";
import { SPLITS, type DatasetRecord, type Source, type Split } from "./records.js";

export interface SplitCounts {
  images: number;
  captions: number;
}

export interface PrepareSummary {
  format: string;
  source: Source;
  out: string;
  inputs: string[];
  notes: string[];
  /** Whether image headers were decoded (false with --no-check-images: only existence checked). */
  imagesDecoded: boolean;
  splits: Record<Split, SplitCounts>;
  total: SplitCounts;
  skippedByReason: Partial<Record<SkipReason, number>>;
  skipped: Skip[];
}

/** `<out>.summary.json`. */
export const summaryPath = (out: string): string => `${out}.summary.json`;

export function buildSummary(
  base: Pick<PrepareSummary, "format" | "source" | "out" | "inputs" | "notes" | "imagesDecoded">,
  records: readonly DatasetRecord[],
  skipped: readonly Skip[],
): PrepareSummary {
  const splits = Object.fromEntries(SPLITS.map((s) => [s, { images: 0, captions: 0 }])) as Record<Split, SplitCounts>;
  for (const r of records) {
    splits[r.split].images++;
    splits[r.split].captions += r.captions.length;
  }
  const total = { images: records.length, captions: records.reduce((n, r) => n + r.captions.length, 0) };
  return { ...base, splits, total, skippedByReason: countReasons(skipped), skipped: [...skipped] };
}

export function countReasons(skipped: readonly Skip[]): Partial<Record<SkipReason, number>> {
  const counts: Partial<Record<SkipReason, number>> = {};
  for (const s of skipped) counts[s.reason] = (counts[s.reason] ?? 0) + 1;
  // Fixed order, for stable output.
  return Object.fromEntries(SKIP_REASONS.filter((r) => counts[r]).map((r) => [r, counts[r]]));
}

/** One line for a skipped entry: `reason: entry (file:line, detail)`. */
export const formatSkip = (s: Skip): string =>
  `${s.reason}: ${s.entry} (${s.file}${s.line !== undefined ? `:${s.line}` : ""}${s.detail ? `; ${s.detail}` : ""})`;

/** The printed summary. */
export function formatSummary(s: PrepareSummary, shown = 20): string {
  const rows = [...SPLITS.map((k): [string, SplitCounts] => [k, s.splits[k]]), ["total", s.total] as [string, SplitCounts]];
  const w = Math.max(8, ...rows.map(([, c]) => String(c.captions).length));
  const lines = [
    `${s.format} → ${s.out} (summary: ${summaryPath(s.out)})`,
    `  ${"split".padEnd(6)} ${"images".padStart(w)} ${"captions".padStart(w)}`,
    ...rows.map(([k, c]) => `  ${k.padEnd(6)} ${String(c.images).padStart(w)} ${String(c.captions).padStart(w)}`),
    ...s.notes.map((n) => `  note: ${n}`),
  ];
  if (!s.imagesDecoded) lines.push("  note: image headers not decoded (--no-check-images); only existence was checked");
  if (s.skipped.length === 0) lines.push("skipped: none");
  else {
    const by = Object.entries(s.skippedByReason).map(([r, n]) => `${n} ${r}`).join(", ");
    lines.push(`skipped ${s.skipped.length}: ${by}`, ...s.skipped.slice(0, shown).map((k) => `  ${formatSkip(k)}`));
    if (s.skipped.length > shown) lines.push(`  … and ${s.skipped.length - shown} more, see ${summaryPath(s.out)}`);
  }
  return lines.join("\n");
}
