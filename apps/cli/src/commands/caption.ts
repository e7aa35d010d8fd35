// `pnpm eye caption --ckpt <run|checkpoint> <image…> [--beam N | --top-p P] [--json]`: one
// caption per image, greedy by default. --json prints [{"image", "caption"}].
import { defineCommand } from "citty";
import { init } from "@llms-eye/tensor";
import { captionImages } from "@llms-eye/train";
import { reportErrors } from "../errors.js";
import { userPath } from "../paths.js";
import { UsageError } from "../train/flags.js";

const positive = (flag: string, raw: unknown, int: boolean, max = Infinity): number | undefined => {
  if (raw === undefined || raw === "") return undefined;
  const x = Number(raw);
  if (!Number.isFinite(x) || x <= 0 || x > max || (int && !Number.isInteger(x))) throw new UsageError(`expected ${int ? "a positive integer" : `a number in (0, ${max}]`} for --${flag}, got ${JSON.stringify(raw)}`);
  return x;
};

export const DECODE_FLAGS = {
  beam: { type: "string", description: "beam search with N beams" },
  "top-p": { type: "string", description: "nucleus sampling with probability mass P (seeded by --seed)" },
  seed: { type: "string", description: "sampling seed (default 0)" },
  "max-new-tokens": { type: "string", description: "longest caption in tokens (default 32)" },
} as const;

export function decodeFlags(args: Record<string, unknown>): { beam?: number; topP?: number; seed?: number; maxNewTokens?: number } {
  const beam = positive("beam", args.beam, true);
  const topP = positive("top-p", args["top-p"], false, 1);
  const seed = args.seed === undefined ? undefined : Number(args.seed);
  const maxNewTokens = positive("max-new-tokens", args["max-new-tokens"], true);
  if (beam !== undefined && topP !== undefined) throw new UsageError("expected at most one of --beam and --top-p, got both");
  return { ...(beam ? { beam } : {}), ...(topP ? { topP } : {}), ...(seed !== undefined ? { seed } : {}), ...(maxNewTokens ? { maxNewTokens } : {}) };
}

export default defineCommand({
  meta: { name: "caption", description: "Caption images with a trained eye model" },
  args: {
    ckpt: { type: "string", description: "run directory or checkpoint", required: true },
    json: { type: "boolean", description: 'print [{"image", "caption"}]' },
    ...DECODE_FLAGS,
  },
  async run({ args }) {
    await reportErrors("caption", async () => {
      const images = (args._ as string[]).map(userPath);
      if (images.length === 0) throw new UsageError("expected one or more image files after the flags, e.g. `pnpm eye caption --ckpt runs/tiny photo.jpg`");
      await init();
      const out = await captionImages(userPath(args.ckpt), images, decodeFlags(args));
      if (args.json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      else for (const { image, caption } of out) process.stdout.write(`${image}\t${caption}\n`);
    });
  },
});
