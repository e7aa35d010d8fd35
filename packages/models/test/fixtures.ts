// Where the shared fixtures are: $EYE_FIXTURES, else ../shared/fixtures beside the repository
// (the layout of the development machines), else /work/shared/fixtures. Tests fail, never skip,
// when none exists.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

function find(): string {
  const candidates = [
    process.env.EYE_FIXTURES,
    fileURLToPath(new URL("../../../../shared/fixtures", import.meta.url)),
    "/work/shared/fixtures",
  ].filter((p): p is string => !!p);
  const hit = candidates.find((p) => existsSync(join(p, "hf-parity", "README.md")));
  if (!hit) throw new Error(`fixtures: expected hf-parity/README.md under one of ${candidates.join(", ")}; set EYE_FIXTURES to the shared fixtures folder`);
  return hit;
}

export const FIXTURES = find();
/** The tiny HF models with reference outputs: gpt2/, clip/, preprocess/, tokenizer/. */
export const HF_PARITY = join(FIXTURES, "hf-parity");
