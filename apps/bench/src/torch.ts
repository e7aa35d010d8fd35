// The optional PyTorch peer (engine "torch"): when `/usr/bin/python3 -c 'import torch'` works
// (Debian's python3-torch), each OpSpec is timed by torch_peer.py in a python3 subprocess on
// the CPU (its own median over the same Timing), on every core: torch.set_num_threads(os.cpu_count()),
// which the probe sets too. OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for it so OpenBLAS
// picks the kernels for this CPU. Otherwise skipped with a note.
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { OpSpec, Peer, Timing } from "./harness.js";

export const PYTHON = "/usr/bin/python3";
const SCRIPT = fileURLToPath(new URL("./torch_peer.py", import.meta.url));
/** Imports torch and sets its threads as torch_peer.py does; prints the version and thread count. */
const PROBE = "import os, torch; torch.set_num_threads(os.cpu_count() or 1); print(torch.__version__, torch.get_num_threads())";

function peerEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

export class TorchPeer implements Peer {
  readonly engine = "torch";
  constructor(readonly version: string, readonly threads: number) {}

  skip(): string | undefined {
    return undefined;
  }

  bench(spec: OpSpec, timing: Timing): Promise<{ median_ms: number; runs: number }> {
    return new Promise((resolve, reject) => {
      const child = spawn(PYTHON, [SCRIPT, JSON.stringify(spec), JSON.stringify(timing)], { env: peerEnv() });
      let out = "";
      let err = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      child.on("error", reject);
      child.on("close", (code) => {
        if (code !== 0) return reject(new Error(`torch peer exited ${code}: ${err.trim().split("\n").pop() ?? ""}`));
        try {
          const r = JSON.parse(out.trim().split("\n").pop() ?? "") as { median_ms: number; runs: number };
          resolve({ median_ms: r.median_ms, runs: r.runs });
        } catch {
          reject(new Error(`torch peer: expected one JSON line on stdout, got ${JSON.stringify(out.slice(0, 200))}`));
        }
      });
    });
  }
}

/** The torch peer, or a one-line note saying why there is none. */
export function torchPeer(): { peer?: Peer; note: string } {
  const r = spawnSync(PYTHON, ["-c", PROBE], { encoding: "utf8", timeout: 60_000, env: peerEnv() });
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : (r.stderr.trim().split("\n").pop() ?? `exit ${r.status}`);
    return { note: `torch peer skipped: ${PYTHON} -c 'import torch' failed (${why})` };
  }
  const [version, threads] = r.stdout.trim().split(" ");
  return { peer: new TorchPeer(version ?? "?", Number(threads)), note: `torch peer: PyTorch ${version} on the CPU, ${threads} thread(s) (${PYTHON})` };
}
