// What each source parser returns: candidate images (absolute image path, cleaned captions, split)
// and the entries it skipped, each with its reason. The dispatcher then checks the image files,
// writes the records and the summary. Nothing a parser reads may vanish without a Skip.
import type { Source, Split } from "./records.js";

export const SKIP_REASONS = [
  "missing image file",
  "unreadable image",
  "no captions",
  "empty caption",
  "annotation for an unknown image",
  "bad file name",
  "malformed row",
  "not in any split file",
  "in several split files",
  "duplicate entry",
] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];

/** One input entry left out of the output: which entry, why, and where it was read. */
export interface Skip {
  entry: string;
  reason: SkipReason;
  file: string;
  line?: number;
  detail?: string;
}

/** An image ready to be checked and written. `image` is absolute. */
export interface Candidate {
  id: string;
  image: string;
  captions: string[];
  split: Split;
  /** Where it came from, for skips found later (missing or unreadable image). */
  entry: string;
  file: string;
  line?: number;
}

export interface Parsed {
  source: Source;
  candidates: Candidate[];
  skipped: Skip[];
  /** The input files read. */
  inputs: string[];
  /** Facts the summary should state (e.g. how splits were chosen). */
  notes: string[];
}

/** Captions grouped by image name, with where the image was first named. */
export interface CaptionGroup {
  captions: string[];
  file: string;
  line: number;
}

/** Groups become candidates, or "no captions" skips when every caption was empty. */
export function fromGroups(
  groups: Map<string, CaptionGroup>,
  skipped: Skip[],
  make: (name: string, g: CaptionGroup) => Omit<Candidate, "captions" | "entry" | "file" | "line"> | undefined,
): Candidate[] {
  const out: Candidate[] = [];
  for (const [name, g] of groups) {
    if (g.captions.length === 0) {
      skipped.push({ entry: name, reason: "no captions", file: g.file, line: g.line });
      continue;
    }
    const c = make(name, g);
    if (c) out.push({ ...c, captions: g.captions, entry: name, file: g.file, line: g.line });
  }
  return out;
}
