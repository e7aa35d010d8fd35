// `pnpm eye <command>`: the llm's eye command line. Each subcommand is a thin layer over a
// package function and lives in its own file under commands/. Paths a user types are
// resolved against the directory `pnpm eye` was started from (see paths.ts).
import { defineCommand, runMain } from "citty";

const main = defineCommand({
  meta: { name: "eye", description: "llm's eye: GPT-2 turned into a vision-language model" },
  subCommands: {
    download: () => import("./commands/download.js").then((m) => m.default),
    generate: () => import("./commands/generate.js").then((m) => m.default),
    parity: () => import("./commands/parity.js").then((m) => m.default),
    prepare: () => import("./commands/prepare.js").then((m) => m.default),
    shapes: () => import("./commands/shapes.js").then((m) => m.default),
    score: () => import("./commands/score.js").then((m) => m.default),
    train: () => import("./commands/train.js").then((m) => m.default),
    retrain: () => import("./commands/retrain.js").then((m) => m.default),
    caption: () => import("./commands/caption.js").then((m) => m.default),
    eval: () => import("./commands/eval.js").then((m) => m.default),
    report: () => import("./commands/report.js").then((m) => m.default),
  },
});

await runMain(main);
// Dawn keeps the event loop alive; leave once the output is flushed.
process.exit(process.exitCode ?? 0);
