// `pnpm eye shapes --out <dir> [--n N] [--seed S] [--size PX] [--force]`: render the built-in
// shapes dataset (captioned 1–3 object scenes) into <dir>/images + <dir>/shapes.jsonl and print
// images per split, the object-count histogram and the time taken.
import { defineCommand } from "citty";
import { generateShapes, ShapesError } from "@llms-eye/data";
import { userPath } from "../paths.js";

/** An integer flag: citty hands strings over; "12abc" or "1.5" is an error, not 12 or 1. */
function intArg(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^-?\d+$/.test(value.trim())) throw new ShapesError(`shapes: expected an integer for --${name}, got ${JSON.stringify(value)}`);
  return Number(value);
}

export default defineCommand({
  meta: { name: "shapes", description: "Render the built-in shapes dataset (captioned colored shapes, train/val/test in the unified JSONL format)" },
  args: {
    out: { type: "string", description: "output folder (images/, shapes.jsonl, shapes.json)", required: true },
    n: { type: "string", description: "number of images", default: "3000" },
    seed: { type: "string", description: "random seed (same seed, same files)", default: "0" },
    size: { type: "string", description: "image side in pixels (at least 32)", default: "64" },
    force: { type: "boolean", description: "write into a non-empty folder that is not this exact shapes dataset", default: false },
  },
  async run({ args }) {
    const out = userPath(args.out);
    try {
      const s = await generateShapes({
        out,
        n: intArg("n", args.n, 3000),
        seed: intArg("seed", args.seed, 0),
        size: intArg("size", args.size, 64),
        force: args.force,
      });
      const hist = (split: "train" | "val" | "test") => `${s.splits[split]} (${s.objects[split][1]}/${s.objects[split][2]}/${s.objects[split][3]})`;
      console.log(`shapes: ${s.spec.n} images of ${s.spec.size}x${s.spec.size} px, seed ${s.spec.seed} → ${s.jsonl}`);
      console.log(`  split (1/2/3 objects): train ${hist("train")}, val ${hist("val")}, test ${hist("test")}`);
      console.log(`  ${s.seconds.toFixed(1)} s, ${Math.round(s.imagesPerSecond)} images/s`);
    } catch (e) {
      if (!(e instanceof ShapesError)) throw e;
      console.error(e.message);
      process.exitCode = 1;
    }
  },
});
