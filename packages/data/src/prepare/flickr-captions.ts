// The two Flickr caption file layouts, grouped by image name:
//   token files (Flickr8k.token.txt, results_20130124.token): `NAME.jpg#N<TAB>caption`
//   results.csv (Flickr30k, Kaggle): header `image_name| comment_number| comment`, then
//   `NAME.jpg| N| caption` with stray spaces, and a few malformed rows in the wild.
// Rows that cannot be read are skipped as "malformed row", captions empty after clean-up as
// "empty caption", and image names that are not plain image files (the known `x.jpg.1`) once
// per name as "bad file name". A file with no usable structure at all throws.
import type { CaptionGroup, Skip } from "./parsed.js";
import { PrepareError, cleanCaption, isImageName } from "./input.js";

export interface Captions {
  groups: Map<string, CaptionGroup>;
  skipped: Skip[];
}

class Collector {
  groups = new Map<string, CaptionGroup>();
  skipped: Skip[] = [];
  private bad = new Map<string, { line: number; count: number }>();
  constructor(private file: string) {}

  malformed(row: string, line: number, why: string) {
    this.skipped.push({ entry: row.length > 80 ? `${row.slice(0, 77)}...` : row, reason: "malformed row", file: this.file, line, detail: why });
  }

  add(name: string, caption: string, line: number) {
    if (!isImageName(name)) {
      const b = this.bad.get(name);
      if (b) b.count++;
      else this.bad.set(name, { line, count: 1 });
      return;
    }
    let g = this.groups.get(name);
    if (!g) this.groups.set(name, (g = { captions: [], file: this.file, line }));
    const c = cleanCaption(caption);
    if (c === "") this.skipped.push({ entry: `${name} caption at line ${line}`, reason: "empty caption", file: this.file, line });
    else g.captions.push(c);
  }

  done(): Captions {
    for (const [name, b] of this.bad)
      this.skipped.push({ entry: name, reason: "bad file name", file: this.file, line: b.line, detail: `${b.count} caption${b.count === 1 ? "" : "s"}; expected NAME.jpg` });
    return { groups: this.groups, skipped: this.skipped };
  }
}

/** `NAME.jpg#N<TAB>caption` lines. Throws when no line has a tab. */
export function parseTokenLines(file: string, lines: readonly string[], what: string): Captions {
  if (!lines.some((l) => l.includes("\t"))) throw new PrepareError(`prepare: expected ${what} (lines NAME.jpg#N<TAB>caption) in ${file}, got a file without tabs`);
  const c = new Collector(file);
  lines.forEach((row, i) => {
    const line = i + 1;
    if (row.trim() === "") return;
    const tab = row.indexOf("\t");
    if (tab < 0) return c.malformed(row, line, "no tab between NAME.jpg#N and the caption");
    const m = /^(.+)#(\d+)$/.exec(row.slice(0, tab).trim());
    if (!m) return c.malformed(row, line, "expected NAME.jpg#N before the tab");
    c.add(m[1]!, row.slice(tab + 1), line);
  });
  return c.done();
}

/** True when the first line is results.csv's `image_name| comment_number| comment` header. */
export const isResultsCsv = (lines: readonly string[]): boolean => /^\s*image_name\s*\|/.test(lines[0] ?? "");

/** Flickr30k results.csv rows `NAME.jpg| N| caption` (the caption may itself contain `|`). */
export function parseResultsCsv(file: string, lines: readonly string[]): Captions {
  const c = new Collector(file);
  lines.forEach((row, i) => {
    const line = i + 1;
    if (i === 0 || row.trim() === "") return;
    const parts = row.split("|");
    if (parts.length < 3) return c.malformed(row, line, `expected 3 fields separated by "|", got ${parts.length}`);
    const name = parts[0]!.trim();
    if (!/^\d+$/.test(parts[1]!.trim())) return c.malformed(row, line, `expected a comment number in field 2, got "${parts[1]!.trim()}"`);
    c.add(name, parts.slice(2).join("|"), line);
  });
  return c.done();
}
