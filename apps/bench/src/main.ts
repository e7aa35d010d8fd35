// `pnpm bench`: times each kernel family on our engine and its peers. See README.md.
import { defineCommand, runMain } from "citty";
import { type Family, type Preset, runBench } from "./bench.js";
import { FAMILIES } from "./families.js";
import { errorText, type Peer } from "./harness.js";
import { TfjsPeer } from "./tfjs.js";
import { torchPeer } from "./torch.js";

const main = defineCommand({
  meta: { name: "bench", description: "Kernel benchmarks of @llms-eye/tensor against tfjs-webgpu on the same adapter" },
  args: {
    quick: { type: "boolean", description: "fewer runs, slow peer runs skipped (under 2 minutes)", default: false },
    json: { type: "string", description: "write every result to this file as one JSON array", valueHint: "file" },
    only: { type: "string", valueHint: "families", description: `comma list of families: ${Object.keys(FAMILIES).join(", ")}` },
    peer: { type: "boolean", description: "skip the peers (tfjs, torch): time our engine only", default: true },
  },
  async run({ args }) {
    const names = args.only ? args.only.split(",").map((s) => s.trim()).filter(Boolean) : Object.keys(FAMILIES);
    const unknown = names.filter((n) => !(n in FAMILIES));
    if (unknown.length > 0) {
      throw new Error(`bench: expected families from ${Object.keys(FAMILIES).join(", ")} for --only, got ${unknown.join(", ")}`);
    }
    const families: Family[] = [];
    const loadFailures: string[] = [];
    for (const n of names) {
      try {
        families.push(await FAMILIES[n]!());
      } catch (e) {
        loadFailures.push(`${n}: could not load (${errorText(e)})`);
      }
    }
    for (const f of loadFailures) console.log(`FAILED ${f}`);
    const peers: Peer[] = [];
    if (args.peer) {
      peers.push(new TfjsPeer());
      const torch = torchPeer();
      console.log(torch.note);
      if (torch.peer) peers.push(torch.peer);
    }
    const preset: Preset = args.quick ? "quick" : "full";
    const { failures } = await runBench({ preset, families, peers, ...(args.json ? { json: args.json } : {}) });
    if (failures.length > 0 || loadFailures.length > 0) process.exitCode = 1;
  },
});

await runMain(main);
// Dawn keeps the event loop alive; leave once the output is flushed.
process.exit(process.exitCode ?? 0);
