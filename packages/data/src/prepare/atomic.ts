// Atomic output: every file is first written to a temporary file beside its target, then all are
// renamed into place. A failure while writing removes the temporary files and leaves every
// existing target untouched; callers check the targets are writable paths first, so the renames
// (same folder, same file system) do not fail in practice.
import { randomBytes } from "node:crypto";
import { rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

export interface OutputFile {
  path: string;
  data: string;
}

/** The temporary name used for `path` while it is written (hidden, same folder, so rename is atomic). */
export const tempPath = (path: string): string => join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);

export async function writeFilesAtomically(files: readonly OutputFile[]): Promise<void> {
  const temps: string[] = [];
  try {
    for (const f of files) {
      const tmp = tempPath(f.path);
      temps.push(tmp);
      await writeFile(tmp, f.data, "utf8");
    }
  } catch (e) {
    await Promise.all(temps.map((t) => rm(t, { force: true })));
    throw e;
  }
  let renamed = 0;
  try {
    for (const [i, f] of files.entries()) await rename(temps[i]!, f.path), renamed++;
  } catch (e) {
    await Promise.all(temps.slice(renamed).map((t) => rm(t, { force: true })));
    throw e;
  }
}
