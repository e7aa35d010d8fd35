// Checkpoints in and out of autograd Modules by HF names: a save → load round trip (tied
// weights saved once), renaming and ignored keys, select (unselected keys are never read),
// F16/BF16/I64 conversion on load, one StateDictError listing every bad key with the module
// left untouched, and the fixture GPT-2 checkpoint loaded under the GPT2LMHeadModel names.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { init, tensor } from "@llms-eye/tensor";
import { Embedding, LayerNorm, Linear, Module, StateDictError, type Var, param } from "@llms-eye/autograd";
import { loadCheckpoint, saveCheckpoint } from "../src/checkpoint.js";
import { type HostTensor, readSafetensors, readSafetensorsHeader, writeSafetensors } from "../src/safetensors.js";
import { HF_PARITY } from "./fixtures.js";

const TMP = mkdtempSync(join(tmpdir(), "checkpoint-test-"));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
let n = 0;
const tmpFile = (): string => join(TMP, `c${n++}.safetensors`);

class Block extends Module {
  ln_1: LayerNorm;
  c_fc: Linear;
  constructor(seed: number) {
    super();
    this.ln_1 = new LayerNorm(6);
    this.c_fc = new Linear(6, 10, { seed, layout: "in_out" });
  }
}
class Head extends Module {
  constructor(readonly weight: Var) {
    super();
  }
}
/** A tiny GPT-2-like tree: transformer.{wte, h.N, ln_f} and an lm_head tied to wte. */
class Tiny extends Module {
  transformer: Module;
  lm_head: Head;
  constructor(seed: number) {
    super();
    const wte = new Embedding(11, 6, { seed });
    const t = new (class Transformer extends Module {
      wte = wte;
      h = [new Block(seed + 1), new Block(seed + 2)];
      ln_f = new LayerNorm(6);
    })();
    this.transformer = t;
    this.lm_head = new Head(wte.weight);
  }
}

const snapshot = async (m: Module): Promise<Map<string, number[]>> =>
  new Map(await Promise.all(m.namedParameters("", false).map(async ([k, p]) => [k, [...(await p.value.toArray())]] as [string, number[]])));

async function stateError(p: Promise<unknown>): Promise<StateDictError> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(StateDictError);
  return e as StateDictError;
}

beforeAll(async () => {
  await init();
});

describe("save and load", () => {
  it("round-trips a module by HF names; a tied weight is saved once and loaded into both names", async () => {
    const a = new Tiny(1);
    const b = new Tiny(2);
    const file = tmpFile();
    await saveCheckpoint(a, file, { step: "3" });
    const h = await readSafetensorsHeader(file);
    expect([...h.tensors.keys()].sort()).toEqual(a.namedParameters().map(([k]) => k).sort());
    expect(h.tensors.has("lm_head.weight")).toBe(false);
    expect(h.tensors.get("transformer.h.1.c_fc.weight")).toMatchObject({ dtype: "F32", shape: [6, 10] });
    expect(h.metadata).toEqual({ format: "pt", step: "3" });
    expect(await snapshot(b)).not.toEqual(await snapshot(a));
    const r = await loadCheckpoint(b, file);
    expect(r).toEqual({ ignored: [], skipped: [], bytes: (11 * 6 + 2 * (6 + 6 + 60 + 10) + 12) * 4 });
    expect(await snapshot(b)).toEqual(await snapshot(a));
    expect(b.lm_head.weight).toBe(b.transformer.namedParameters()[0]![1]); // still tied
  });

  it("renames keys (no `transformer.` prefix), ignores keys mapped to null and never reads unselected ones", async () => {
    const a = new Tiny(3);
    const host = await readSafetensors(await (async () => (await saveCheckpoint(a, join(TMP, "src.safetensors")), join(TMP, "src.safetensors")))());
    const file = tmpFile();
    const extra: Record<string, HostTensor> = {
      "h.0.attn.bias": { dtype: "U8", shape: [2], data: Uint8Array.from([1, 1]) },
      "lm_head.weight": { dtype: "F32", shape: [11, 6], data: new Float32Array(66) },
      // an I64 outside int32: reading it would throw, so this proves it is never read
      "text_model.big": { dtype: "I64", shape: [1], data: new Int32Array(1) },
    };
    await writeSafetensors(file, { ...Object.fromEntries([...host].map(([k, t]) => [k.replace(/^transformer\./, ""), t])), ...extra });
    const raw = await import("node:fs").then((fs) => fs.readFileSync(file));
    const { tensors, dataOffset } = await readSafetensorsHeader(file);
    raw.writeInt32LE(1, dataOffset + tensors.get("text_model.big")!.begin + 4); // high word: 2^32
    writeFileSync(file, raw);

    const b = new Tiny(4);
    const rename = (k: string): string | null => (k === "lm_head.weight" || k.endsWith(".attn.bias") ? null : `transformer.${k}`);
    const r = await loadCheckpoint(b, file, { rename, select: (k) => !k.startsWith("text_model.") });
    expect(r.ignored.sort()).toEqual(["h.0.attn.bias", "lm_head.weight"]);
    expect(r.skipped).toEqual(["text_model.big"]);
    expect(await snapshot(b)).toEqual(await snapshot(a));
    await expect(loadCheckpoint(b, file, { rename })).rejects.toThrow(/unexpected keys: transformer\.text_model\.big \(from text_model\.big\)/);
  });

  it("loads F16 and BF16 into f32 parameters and I64 into i32 ones", async () => {
    class Mixed extends Module {
      w = param(tensor(new Float32Array(3), [3]));
      v = param(tensor(new Float32Array(2), [2]));
      ids = param(tensor(new Int32Array(2), [2], "i32"));
    }
    const half = Uint16Array.from([0x3c00, 0xc000, 0x0001]); // 1, -2, 2^-24
    const bf = Uint16Array.from([0x3f80, 0x7f80]); // 1, inf
    const ids = new BigInt64Array([-7n, 2n ** 31n - 1n]);
    const header = JSON.stringify({ w: { dtype: "F16", shape: [3], data_offsets: [0, 6] }, v: { dtype: "BF16", shape: [2], data_offsets: [6, 10] }, ids: { dtype: "I64", shape: [2], data_offsets: [10, 26] } });
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    const file = tmpFile();
    writeFileSync(file, Buffer.concat([len, Buffer.from(header), Buffer.from(half.buffer), Buffer.from(bf.buffer), Buffer.from(ids.buffer)]));
    const m = new Mixed();
    await loadCheckpoint(m, file);
    expect(await snapshot(m)).toEqual(new Map([["w", [1, -2, 2 ** -24]], ["v", [1, Infinity]], ["ids", [-7, 2 ** 31 - 1]]]));
  });
});

describe("errors", () => {
  it("lists every missing, unexpected and mis-shaped key in one StateDictError and changes nothing", async () => {
    const a = new Tiny(5);
    const src = tmpFile();
    await saveCheckpoint(a, src);
    const host = await readSafetensors(src);
    host.delete("transformer.ln_f.bias");
    host.delete("transformer.h.1.ln_1.weight");
    host.set("transformer.h.0.c_fc.weight", { dtype: "F32", shape: [10, 6], data: new Float32Array(60) }); // transposed
    host.set("transformer.ln_f.weight", { dtype: "I32", shape: [6], data: new Int32Array(6) }); // wrong dtype
    host.set("transformer.h.2.ln_1.weight", { dtype: "F32", shape: [6], data: new Float32Array(6) });
    const file = tmpFile();
    await writeSafetensors(file, host);
    const b = new Tiny(6);
    const before = await snapshot(b);
    const e = await stateError(loadCheckpoint(b, file));
    expect(e.missing).toEqual(["transformer.h.1.ln_1.weight", "transformer.ln_f.bias"]);
    expect(e.unexpected).toEqual(["transformer.h.2.ln_1.weight"]);
    expect(e.mismatched.sort()).toEqual(["transformer.h.0.c_fc.weight (expected [6, 10] f32, got [10, 6] f32)", "transformer.ln_f.weight (expected [6] f32, got [6] i32)"]);
    expect(e.message).toContain(`loadCheckpoint: expected the keys and shapes of Tiny in ${file}, got missing keys: transformer.h.1.ln_1.weight, transformer.ln_f.bias; unexpected keys: transformer.h.2.ln_1.weight; mis-shaped keys: `);
    expect(await snapshot(b)).toEqual(before);
  });

  it("refuses two checkpoint keys that rename to the same parameter, and a tied weight needs only one name", async () => {
    const a = new Tiny(7);
    const file = tmpFile();
    await saveCheckpoint(a, file);
    const e = await stateError(loadCheckpoint(new Tiny(8), file, { rename: (k) => (k === "transformer.ln_f.bias" ? "transformer.ln_f.weight" : k) }));
    expect(e.unexpected).toEqual(["transformer.ln_f.weight (also given by transformer.ln_f.bias)"]); // file order: bias first
    expect(e.missing).toEqual(["transformer.ln_f.bias"]);
    // lm_head.weight alone also fills the tied embedding
    const onlyHead = await readSafetensors(file);
    onlyHead.set("lm_head.weight", onlyHead.get("transformer.wte.weight")!);
    onlyHead.delete("transformer.wte.weight");
    const f2 = tmpFile();
    await writeSafetensors(f2, onlyHead);
    const c = new Tiny(9);
    await loadCheckpoint(c, f2);
    expect(await snapshot(c)).toEqual(await snapshot(a));
  });

  it("passes header errors through before touching the module", async () => {
    const file = tmpFile();
    writeFileSync(file, Buffer.from("not a safetensors file at all"));
    await expect(loadCheckpoint(new Tiny(1), file)).rejects.toThrow(/^safetensors: expected header length/);
  });
});

describe("fixture GPT-2 checkpoint", () => {
  it("loads every tensor of gpt2/model.safetensors into GPT2LMHeadModel-named parameters", async () => {
    const file = join(HF_PARITY, "gpt2", "model.safetensors");
    const ref = await readSafetensors(file);
    // A Module tree built from the names: nested plain modules, one parameter per key.
    class Node extends Module {}
    const root = new Node();
    for (const [k, t] of ref) {
      const parts = k.split(".");
      let m: Record<string, unknown> = root as unknown as Record<string, unknown>;
      for (const p of parts.slice(0, -1)) m = (m[p] ??= new Node()) as Record<string, unknown>;
      m[parts.at(-1)!] = param(tensor(new Float32Array(t.data.length), t.shape));
    }
    const t0 = performance.now();
    const r = await loadCheckpoint(root, file);
    const ms = performance.now() - t0;
    expect(r.bytes).toBe((await import("node:fs")).statSync(file).size - (await readSafetensorsHeader(file)).dataOffset);
    const params = new Map(root.namedParameters());
    expect(params.size).toBe(28);
    for (const [k, t] of ref) {
      const got = (await params.get(k)!.value.toArray()) as Float32Array;
      expect(Buffer.from(got.buffer).equals(Buffer.from(t.data.buffer)), k).toBe(true);
    }
    expect(ms).toBeLessThan(5000);
    root.dispose();
  });
});
