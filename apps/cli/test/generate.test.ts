// `eye generate` on the fixture GPT-2 directory: the greedy continuation equals transformers'
// (the text the fixture README lists), and the flags map to generate() options or clear errors.
import { join } from "node:path";
import { runCommand } from "citty";
import { afterEach, describe, expect, it, vi } from "vitest";
import generateCommand, { UsageError, optionsFromFlags } from "../src/commands/generate.js";
import { HF_PARITY } from "../../../packages/models/test/fixtures.js";

afterEach(() => vi.restoreAllMocks());

describe("eye generate", () => {
  it("prints the prompt and its greedy continuation, as transformers generates it", async () => {
    const out: string[] = [];
    vi.spyOn(process.stdout, "write").mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    await runCommand(generateCommand, { rawArgs: ["--model", join(HF_PARITY, "gpt2"), "--prompt", "Once upon a time,", "--max-new-tokens", "8"] });
    expect(out.join("")).toBe("Once upon a time,Rule Flags increment suspensions GomezLECTLECT Flags\n");
  });

  it("maps flags to greedy, beam search or sampling, and rejects bad values", () => {
    expect(optionsFromFlags({}, 7)).toEqual({ maxNewTokens: 32, eosId: 7, strategy: "greedy" });
    expect(optionsFromFlags({ beams: "3", "length-penalty": "0.5" }, 7)).toEqual({ maxNewTokens: 32, eosId: 7, strategy: "beam", numBeams: 3, lengthPenalty: 0.5 });
    expect(optionsFromFlags({ "top-p": "0.9", temperature: "0.7", "max-new-tokens": "5" }, 7)).toEqual({
      maxNewTokens: 5, eosId: 7, strategy: "sample", topP: 0.9, temperature: 0.7, seed: 0,
    });
    expect(() => optionsFromFlags({ "max-new-tokens": "0" }, 7)).toThrow('generate: expected a positive integer for --max-new-tokens, got "0"');
    expect(() => optionsFromFlags({ "top-p": "1.5" }, 7)).toThrow(UsageError);
    expect(() => optionsFromFlags({ beams: "2", seed: "1" }, 7)).toThrow("expected either --beams or sampling flags");
  });
});
