// `pnpm eye download <repo-id>…`: fill the Hugging Face hub cache with what the loaders read
// (config.json, model.safetensors, tokenizer and preprocessor files present upstream), so later
// runs work offline (HF_HUB_OFFLINE=1). Prints where each model landed.
import { defineCommand } from "citty";
import { existsSync } from "node:fs";
import { HubError, resolveModel } from "@llms-eye/models";
import { userPath } from "../paths.js";

/** Files every model needs. */
export const REQUIRED_FILES = ["config.json", "model.safetensors"];
/** Files fetched when the repository has them (GPT-2 and CLIP tokenizers, CLIP preprocessing, generation defaults). */
export const OPTIONAL_FILES = [
  "tokenizer.json",
  "vocab.json",
  "merges.txt",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "preprocessor_config.json",
  "generation_config.json",
];

export default defineCommand({
  meta: { name: "download", description: "Pre-fetch Hugging Face models into the hub cache ($HF_HUB_CACHE, else $HF_HOME/hub)" },
  args: {
    ids: { type: "positional", description: "repo ids, e.g. distilgpt2 gpt2 openai/clip-vit-base-patch16", required: true },
    revision: { type: "string", description: "branch, tag or commit hash", default: "main" },
    "cache-dir": { type: "string", description: "hub cache folder (default $HF_HUB_CACHE, else $HF_HOME/hub)" },
    quiet: { type: "boolean", description: "no progress bar", default: false },
  },
  async run({ args }) {
    const ids = args._.map(String);
    const failed: string[] = [];
    for (const id of ids) {
      // A folder the user typed (relative to where they ran `pnpm eye`) is checked, not downloaded.
      const idOrDir = existsSync(userPath(id)) ? userPath(id) : id;
      try {
        const dir = await resolveModel(idOrDir, REQUIRED_FILES, {
          optional: OPTIONAL_FILES,
          revision: args.revision,
          ...(args["cache-dir"] ? { cacheDir: userPath(args["cache-dir"]) } : {}),
          ...(args.quiet ? { progress: false } : {}),
        });
        console.log(`${id} → ${dir}`);
      } catch (e) {
        if (!(e instanceof HubError)) throw e;
        console.error(e.message);
        failed.push(id);
      }
    }
    if (failed.length > 0) throw new HubError(`download: ${failed.length} of ${ids.length} models failed: ${failed.join(", ")} (reasons above)`);
  },
});
