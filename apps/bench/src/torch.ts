// The optional PyTorch peer (engine "torch"): the hook only. When `/usr/bin/python3 -c 'import
// torch'` works, a later issue adds a Peer here that times each OpSpec in a python3 subprocess
// (its own median over the same Timing) and returns it; until then it is skipped with a note.
import { spawnSync } from "node:child_process";
import type { Peer } from "./harness.js";

export const PYTHON = "/usr/bin/python3";

/** The torch peer, or a one-line note saying why there is none. */
export function torchPeer(): { peer?: Peer; note: string } {
  const r = spawnSync(PYTHON, ["-c", "import torch; print(torch.__version__)"], { encoding: "utf8", timeout: 60_000 });
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : (r.stderr.trim().split("\n").pop() ?? `exit ${r.status}`);
    return { note: `torch peer skipped: ${PYTHON} -c 'import torch' failed (${why})` };
  }
  return { note: `torch ${r.stdout.trim()} found, but the torch peer is not implemented yet (a later issue)` };
}
