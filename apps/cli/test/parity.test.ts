// `eye parity` over the shipped hf-parity directory (the CLIP, tokenizer and preprocess groups,
// to stay fast; packages/models/test/parity.test.ts runs every group), over a copy whose CLIP
// reference has one value moved (a FAIL row, exit code 1), and over a directory not in the format.
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCommand } from "citty";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { readSafetensors, writeSafetensors } from "@llms-eye/models";
import parityCommand, { formatParity, groupsFromFlag } from "../src/commands/parity.js";
import { UsageError } from "../src/commands/generate.js";
import { HF_PARITY } from "../../../packages/models/test/fixtures.js";

const TMP = mkdtempSync(join(tmpdir(), "eye-cli-parity-"));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
afterEach(() => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
});

/** Runs `eye parity …args`, returning what it printed and the exit code it set. */
async function eye(...args: string[]): Promise<{ out: string; code: number }> {
  const out: string[] = [];
  vi.spyOn(process.stdout, "write").mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
  await runCommand(parityCommand, { rawArgs: args });
  return { out: out.join(""), code: Number(process.exitCode ?? 0) };
}

describe("eye parity", () => {
  it("prints a row per tensor and an ok line, exit code 0, on the shipped fixtures", async () => {
    const { out, code } = await eye(HF_PARITY, "--only", "clip,tokenizer,preprocess");
    expect(code).toBe(0);
    const lines = out.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^group\s+tensor\s+max abs err\s+tol\s+ok$/);
    expect(lines.find((l) => l.includes(" pooler_output "))).toMatch(/^clip\s+pooler_output\s+\d\.\d\de[-+]\d+\s+2\.00e-5\s+ok$/);
    expect(lines.find((l) => l.startsWith("tokenizer") && l.includes(" ids "))).toMatch(/exact\s+ok\s+0 of 61 cases differ$/);
    // Two rows per image (from the file; from PIL's decoded pixels), bit-exact: max abs err 0.
    expect(lines.filter((l) => /^preprocess\s+pixel_values\.\S+( \(from rgb\))?\s+0\.00e\+0\s+1\.60e-2\s+ok$/.test(l)).length).toBe(8);
    expect(lines.length).toBe(1 + 47 + 4 + 8 + 1);
    expect(lines.at(-1)).toBe("parity: ok, 59 of 59 rows within tolerance");
  });

  it("marks a moved reference value FAIL and exits 1", async () => {
    const dir = join(TMP, "moved");
    cpSync(join(HF_PARITY, "clip"), join(dir, "clip"), { recursive: true });
    const file = join(dir, "clip", "reference.safetensors");
    const ref = await readSafetensors(file);
    ref.get("image_embeds")!.data[0]! += 1e-3;
    await writeSafetensors(file, ref);
    const { out, code } = await eye(dir, "--only", "clip");
    expect(code).toBe(1);
    expect(out).toMatch(/\nclip\s+image_embeds\s+1\.00e-3\s+2\.00e-5\s+FAIL\n/);
    expect(out.trimEnd().split("\n").at(-1)).toBe("parity: FAILED, 1 of 47 rows out of tolerance: clip image_embeds");
  });

  it("fails with one message on a directory not in the format, and on unknown groups", async () => {
    await expect(eye(TMP, "--only", "clip")).rejects.toThrow(`parity: expected a directory in the format of hf-parity (see its README) at ${TMP}, got ${join(TMP, "clip", "config.json")}, `);
    expect(() => groupsFromFlag("gpt2,vision")).toThrow(UsageError);
    expect(() => groupsFromFlag("gpt2,vision")).toThrow('parity: expected --only to list groups among gpt2, clip, tokenizer, preprocess, got "gpt2,vision"');
    expect(groupsFromFlag(" gpt2, clip")).toEqual(["gpt2", "clip"]);
    expect(groupsFromFlag(undefined)).toBeUndefined();
  });

  it("formats exact and failing rows", () => {
    const text = formatParity({
      ok: false,
      rows: [
        { group: "gpt2", name: "logits", maxAbs: 1e-6, tol: 3e-5, ok: true },
        { group: "gpt2", name: "generate.output_ids", maxAbs: null, tol: null, ok: false, note: "1 of 26 ids differ" },
      ],
    });
    expect(text).toBe(
      [
        "group  tensor               max abs err  tol      ok",
        "gpt2   logits               1.00e-6      3.00e-5  ok",
        "gpt2   generate.output_ids  -            exact    FAIL  1 of 26 ids differ",
        "parity: FAILED, 1 of 2 rows out of tolerance: gpt2 generate.output_ids",
        "",
      ].join("\n"),
    );
  });
});
