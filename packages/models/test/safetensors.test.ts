// safetensors reader and writer: the fixture files (known values, and a byte-identical rewrite
// by our writer), random valid files round-tripping writer → reader, F16/BF16 conversion of
// every bit pattern against a float64 reference, I64 range checks, and one crafted bad file
// per header rule, each failing with a SafetensorsError that names the file and the fact.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  type HostTensor, type SafeDType, type WritableTensor, SafetensorsError, forEachTensor, readSafetensors, readSafetensorsHeader, writeSafetensors,
} from "../src/safetensors.js";
import { HF_PARITY } from "./fixtures.js";

const TMP = mkdtempSync(join(tmpdir(), "safetensors-test-"));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
let n = 0;
const tmpFile = (): string => join(TMP, `f${n++}.safetensors`);

/** A file from a raw header (object or string) and data section. */
function craft(header: unknown, data: Uint8Array = new Uint8Array(0), lengthField?: bigint): string {
  const h = header instanceof Uint8Array ? header : Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthField ?? BigInt(h.length));
  const file = tmpFile();
  writeFileSync(file, Buffer.concat([len, h, data]));
  return file;
}
const f32 = (shape: number[], begin = 0) => ({ dtype: "F32", shape, data_offsets: [begin, begin + 4 * shape.reduce((a, b) => a * b, 1)] });

async function rejection(p: Promise<unknown>): Promise<SafetensorsError> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(SafetensorsError);
  return e as SafetensorsError;
}

describe("fixture files", () => {
  it("reads the gpt2 and clip references: dtypes, shapes and known values", async () => {
    const g = await readSafetensors(join(HF_PARITY, "gpt2", "reference.safetensors"));
    expect(g.get("logits")!.shape).toEqual([2, 9, 50257]);
    expect(g.get("hidden_states.2")!.shape).toEqual([2, 9, 32]);
    const loss = g.get("loss")!;
    expect(loss).toMatchObject({ dtype: "F32", shape: [1] });
    expect(loss.data[0]).toBeCloseTo(10.9761, 5);
    const ids = g.get("input_ids")!;
    expect(ids.dtype).toBe("I64");
    expect(ids.data).toBeInstanceOf(Int32Array);
    expect(ids.shape).toEqual([2, 9]);
    expect(g.get("attention_mask")!.data.every((v) => v === 1)).toBe(true);
    expect(g.get("generate.output_ids")!.shape).toEqual([2, 13]);
    expect([...g.keys()].filter((k) => k.startsWith("grad.")).length).toBe(28);

    const c = await readSafetensors(join(HF_PARITY, "clip", "reference.safetensors"));
    expect(c.get("loss")!.data[0]).toBeCloseTo(63.523907, 4);
    expect(c.get("pixel_values")!.shape).toEqual([2, 3, 32, 32]);
    expect([...c.keys()].filter((k) => k.startsWith("grad.")).length).toBe(40);
  });

  it("reads the model headers, metadata and U8 images", async () => {
    const gpt2 = await readSafetensorsHeader(join(HF_PARITY, "gpt2", "model.safetensors"));
    expect(gpt2.tensors.size).toBe(28);
    expect(gpt2.metadata).toEqual({ format: "pt" });
    expect(gpt2.tensors.get("transformer.wte.weight")).toMatchObject({ dtype: "F32", shape: [50257, 32] });
    expect(gpt2.tensors.get("transformer.h.0.attn.c_attn.weight")!.shape).toEqual([32, 96]); // Conv1D: [in, out]
    expect(gpt2.dataOffset % 8).toBe(0);
    const clip = await readSafetensorsHeader(join(HF_PARITY, "clip", "model.safetensors"));
    expect(clip.tensors.get("logit_scale")!.shape).toEqual([]);
    expect(clip.tensors.get("vision_model.embeddings.patch_embedding.weight")!.shape).toEqual([32, 3, 8, 8]);
    const pre = await readSafetensors(join(HF_PARITY, "preprocess", "reference.safetensors"), { select: (k) => k.startsWith("rgb.") });
    const rgb = pre.get("rgb.tiny_20x30.png")!;
    expect(rgb).toMatchObject({ dtype: "U8", shape: [30, 20, 3] });
    expect(rgb.data).toBeInstanceOf(Uint8Array);
    expect(pre.size).toBe(4);
  });

  it("rewrites every fixture file byte for byte (same order, padding and metadata as the Python writer)", async () => {
    for (const f of ["gpt2/model", "gpt2/reference", "clip/model", "clip/reference", "preprocess/reference"]) {
      const src = join(HF_PARITY, `${f}.safetensors`);
      const { metadata } = await readSafetensorsHeader(src);
      const { format, ...rest } = metadata;
      expect(format).toBe("pt");
      const out = tmpFile();
      await writeSafetensors(out, await readSafetensors(src), rest);
      expect(readFileSync(out).equals(readFileSync(src)), f).toBe(true);
    }
  });
});

describe("round trip", () => {
  const dtypeArb = fc.constantFrom<SafeDType>("F32", "I32", "I64", "U8");
  const shapeArb = fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 4 });
  const tensorArb = fc.tuple(dtypeArb, shapeArb, fc.integer()).map(([dtype, shape, seed]): HostTensor => {
    const count = shape.reduce((a, b) => a * b, 1);
    const vals = Array.from({ length: count }, (_, i) => Math.imul(seed ^ (i * 0x9e3779b1), 0x85ebca6b));
    const data =
      dtype === "F32" ? Float32Array.from(vals, (v) => v / 2 ** 20) : dtype === "U8" ? Uint8Array.from(vals, (v) => v & 255) : Int32Array.from(vals);
    return { dtype, shape, data };
  });
  // names: ASCII, integer-like (JS objects reorder those), dots, non-ASCII and astral characters
  const nameArb = fc.oneof(fc.string({ minLength: 1, maxLength: 8 }), fc.nat(99).map(String), fc.constantFrom("h.0.w", "é", "😀x", "ｚ"));

  it("writer → reader returns the same tensors; the header is 8-aligned and sorted by dtype then name", async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(nameArb.filter((s) => s !== "__metadata__"), tensorArb, { maxKeys: 6 }), fc.dictionary(fc.string(), fc.string(), { maxKeys: 2 }), async (tensors, meta) => {
        const file = tmpFile();
        await writeSafetensors(file, tensors, meta);
        const back = await readSafetensors(file);
        expect(new Set(back.keys())).toEqual(new Set(Object.keys(tensors)));
        for (const [k, t] of Object.entries(tensors)) expect(back.get(k)).toEqual(t);
        const h = await readSafetensorsHeader(file);
        expect(h.dataOffset % 8).toBe(0);
        expect(h.metadata).toEqual({ format: "pt", ...meta });
        // safetensors' order: dtype descending (I64 > F32 > I32 > U8), then name by UTF-8 bytes; offsets follow it
        const rank = ["U8", "I32", "F32", "I64"];
        const expected = Object.keys(tensors).sort((a, b) => rank.indexOf(tensors[b]!.dtype) - rank.indexOf(tensors[a]!.dtype) || Buffer.compare(Buffer.from(a), Buffer.from(b)));
        let pos = 0;
        for (const k of expected) {
          const t = h.tensors.get(k)!;
          expect(t.begin).toBe(pos);
          pos = t.end;
        }
        const raw = readFileSync(file);
        expect(raw.subarray(8, h.dataOffset).toString().indexOf('{"__metadata__":')).toBe(0);
        rmSync(file);
      }),
      { numRuns: 40 },
    );
  });

  it("writes I64 sign-extended and reads the int32 extremes back", async () => {
    const file = tmpFile();
    const data = Int32Array.from([-(2 ** 31), -1, 0, 1, 2 ** 31 - 1]);
    await writeSafetensors(file, { ids: { dtype: "I64", shape: [5], data } });
    const raw = readFileSync(file);
    const { dataOffset } = await readSafetensorsHeader(file);
    const words = new BigInt64Array(raw.buffer.slice(raw.byteOffset + dataOffset, raw.byteOffset + raw.length));
    expect([...words]).toEqual([-(2n ** 31n), -1n, 0n, 1n, 2n ** 31n - 1n]);
    expect((await readSafetensors(file)).get("ids")!.data).toEqual(data);
  });
});

/** float64 value of a half (F16) or bfloat16 bit pattern, straight from the definition. */
function halfRef(bits: number, expBits: number, mantBits: number): number {
  const sign = bits >> (expBits + mantBits) ? -1 : 1;
  const e = (bits >> mantBits) & ((1 << expBits) - 1);
  const m = bits & ((1 << mantBits) - 1);
  const bias = (1 << (expBits - 1)) - 1;
  if (e === (1 << expBits) - 1) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * m * 2 ** (1 - bias - mantBits); // subnormal (and ±0)
  return sign * 2 ** (e - bias) * (1 + m / 2 ** mantBits);
}

describe("F16 / BF16 / I64 / unsupported dtypes", () => {
  it("converts all 65536 bit patterns of F16 and BF16 exactly (subnormals, ±0, ±inf, NaN)", async () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const bytes = new Uint8Array(all.buffer);
    const file = craft({ h: { dtype: "F16", shape: [65536], data_offsets: [0, 131072] }, b: { dtype: "BF16", shape: [256, 256], data_offsets: [131072, 262144] } }, Buffer.concat([bytes, bytes]));
    const t = await readSafetensors(file);
    const h = t.get("h")!.data as Float32Array;
    const b = t.get("b")!.data as Float32Array;
    expect(h).toBeInstanceOf(Float32Array);
    expect(t.get("b")!.shape).toEqual([256, 256]);
    const same = (got: number, want: number): boolean => Object.is(got, Math.fround(want)) || (Number.isNaN(got) && Number.isNaN(want));
    const bad: string[] = [];
    for (let i = 0; i < 65536; i++) {
      if (!same(h[i]!, halfRef(i, 5, 10))) bad.push(`F16 0x${i.toString(16)}: ${h[i]} vs ${halfRef(i, 5, 10)}`);
      if (!same(b[i]!, halfRef(i, 8, 7))) bad.push(`BF16 0x${i.toString(16)}: ${b[i]} vs ${halfRef(i, 8, 7)}`);
    }
    expect(bad).toEqual([]);
    expect([h[0x0001], h[0x03ff], h[0x7bff], h[0xfc00]]).toEqual([2 ** -24, 1023 * 2 ** -24, 65504, -Infinity]);
  });

  it("refuses I64 values outside int32, naming the tensor and index", async () => {
    const data = new BigInt64Array([5n, 2n ** 31n]);
    const file = craft({ ok: { dtype: "I64", shape: [1], data_offsets: [0, 8] }, big: { dtype: "I64", shape: [1], data_offsets: [8, 16] } }, new Uint8Array(data.buffer));
    expect((await readSafetensors(file, { select: (k) => k === "ok" })).get("ok")!.data).toEqual(Int32Array.from([5]));
    const e = await rejection(readSafetensors(file));
    expect(e.message).toBe(`safetensors: expected I64 values in the int32 range for tensor "big" in ${file}, got 2147483648 at index 0`);
  });

  it("accepts other dtypes in the header and refuses them only when read", async () => {
    const file = craft({ d: { dtype: "F64", shape: [2], data_offsets: [0, 16] }, x: f32([1], 16) }, new Uint8Array(20));
    expect((await readSafetensorsHeader(file)).tensors.get("d")).toEqual({ dtype: "F64", shape: [2], begin: 0, end: 16 });
    expect((await readSafetensors(file, { select: (k) => k === "x" })).size).toBe(1);
    const e = await rejection(readSafetensors(file));
    expect(e.message).toContain(`tensor "d" in ${file}`);
    expect(e.message).toContain("got unsupported dtype F64");
  });

  it("forEachTensor visits selected tensors in file order, one at a time", async () => {
    const file = tmpFile();
    await writeSafetensors(file, { b: { dtype: "F32", shape: [2], data: Float32Array.from([1, 2]) }, a: { dtype: "F32", shape: [1], data: Float32Array.from([3]) }, c: { dtype: "I32", shape: [1], data: Int32Array.from([4]) } });
    const seen: string[] = [];
    await forEachTensor(file, async (name, t) => {
      await new Promise((r) => setTimeout(r, 1));
      seen.push(`${name}=${[...t.data].join(",")}`);
    }, { select: (k) => k !== "c" });
    expect(seen).toEqual(["a=3", "b=1,2"]);
  });
});

describe("strict header validation", () => {
  const ok = { x: f32([2]) };
  const data8 = new Uint8Array(8);
  // [what, file, a fragment of the message (FILE: the file's path)]
  const cases: [string, () => string, string][] = [
    ["shorter than 8 bytes", () => (writeFileSync(join(TMP, "short"), Buffer.alloc(5)), join(TMP, "short")), "expected at least 8 bytes (the header length)"],
    ["header length < 2", () => craft("{", data8, 1n), "expected header length ≥ 2"],
    ["header length > file size", () => craft(ok, data8, 123456789n), "(file size - 8) for"],
    ["header length beyond the 2^53 range", () => craft(ok, data8, 2n ** 63n), "got 9223372036854775808"],
    ["invalid UTF-8", () => craft(Uint8Array.from([0x7b, 0xff, 0x7d])), "got invalid UTF-8"],
    ["not JSON", () => craft("{x: 1}"), "expected a JSON header"],
    ["not starting with {", () => craft(" {}"), 'to start with "{"'],
    ["a JSON array", () => craft("[1,2]"), 'to start with "{"'],
    ["an entry that is not an object", () => craft({ x: 5 }), 'expected an object {dtype, shape, data_offsets} for tensor "x"'],
    ["an unknown dtype", () => craft({ x: { dtype: "F8", shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), 'dtype one of F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL for tensor "x" in FILE, got string "F8"'],
    ["a missing dtype", () => craft({ x: { shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)), "for tensor \"x\" in FILE, got nothing"],
    ["a negative shape", () => craft({ x: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)), 'shape an array of non-negative integers for tensor "x"'],
    ["a fractional shape", () => craft({ x: { dtype: "F32", shape: [1.5], data_offsets: [0, 4] } }, new Uint8Array(4)), "shape an array of non-negative integers"],
    ["offsets of length 3", () => craft({ x: { dtype: "F32", shape: [1], data_offsets: [0, 4, 8] } }, new Uint8Array(4)), "data_offsets [begin, end] of non-negative integers"],
    ["begin > end", () => craft({ x: { dtype: "U8", shape: [0], data_offsets: [4, 0] } }, new Uint8Array(4)), "data_offsets begin ≤ end for tensor \"x\" in FILE, got [4, 0]"],
    ["end outside the data", () => craft(ok, new Uint8Array(4)), 'data_offsets inside the 4-byte data section for tensor "x" in FILE, got [0, 8]'],
    ["shape × dtype ≠ span", () => craft({ x: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, data8), 'shape [3] × F32 (12 bytes) to equal the byte span of tensor "x" in FILE, got 8 bytes ([0, 8])'],
    ["overflowing shape", () => craft({ x: { dtype: "F32", shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 8] } }, data8), "to equal the byte span"],
    ["overlapping tensors", () => craft({ a: f32([2]), b: f32([1], 4) }, new Uint8Array(8)), 'no overlapping tensors in FILE, got "b" [4, 8] overlapping tensor "a" (ends at 8)'],
    ["a hole", () => craft({ a: f32([1]), b: f32([1], 8) }, new Uint8Array(12)), 'no holes in the data section in FILE, got bytes [4, 8) unused before tensor "b"'],
    ["a hole at the start", () => craft({ a: f32([1], 4) }, data8), "got bytes [0, 4) unused"],
    ["bytes after the last tensor", () => craft(ok, new Uint8Array(12)), "got 4 bytes after the last tensor"],
    ["non-string metadata", () => craft({ __metadata__: { step: 5 }, ...ok }, data8), 'a string for "__metadata__"."step" in FILE, got number 5'],
    ["metadata not an object", () => craft({ __metadata__: "pt", ...ok }, data8), '"__metadata__" to be an object of strings'],
    ["an extra entry field", () => craft({ x: { ...f32([2]), offsets: 1 } }, data8), 'only dtype, shape and data_offsets for tensor "x" in FILE, got also offsets'],
  ];
  for (const [what, make, message] of cases) {
    it(`refuses ${what}`, async () => {
      const file = make();
      const e = await rejection(readSafetensorsHeader(file));
      expect(e.message).toContain(message.replace("FILE", file));
      expect(e.message).toContain(file);
      await rejection(readSafetensors(file)); // the same check guards every reader
    });
  }

  it("refuses a header length above the 100 MB cap without reading it (sparse 200 MB file)", async () => {
    const file = craft(ok, data8, 150_000_000n);
    truncateSync(file, 200_000_000);
    const e = await rejection(readSafetensorsHeader(file));
    expect(e.message).toBe(`safetensors: expected header length ≥ 2 and ≤ 100000000 (the 100 MB cap) for ${file}, got 150000000; is this a safetensors file?`);
  });

  it("names a missing file", async () => {
    expect((await rejection(readSafetensorsHeader(join(TMP, "nope.safetensors")))).message).toContain("got ENOENT");
  });

  it("accepts an empty file (no tensors) and zero-size tensors", async () => {
    const file = tmpFile();
    await writeSafetensors(file, { e: { dtype: "F32", shape: [0, 3], data: new Float32Array(0) } });
    expect((await readSafetensors(file)).get("e")!.shape).toEqual([0, 3]);
    expect((await readSafetensors(craft({}))).size).toBe(0);
  });
});

describe("writer errors", () => {
  it("refuses mismatched data and unsupported dtypes, leaving no file and no temp file behind", async () => {
    const dir = mkdtempSync(join(TMP, "w-"));
    const file = join(dir, "m.safetensors");
    const bad: [Record<string, WritableTensor>, string][] = [
      [{ x: { dtype: "F32", shape: [3], data: new Float32Array(2) } }, `expected data Float32Array(3) for tensor "x" (F32, [3]) for ${file}, got Float32Array(2)`],
      [{ x: { dtype: "I64", shape: [1], data: new Float32Array(1) } }, "expected data Int32Array(1) for tensor \"x\" (I64, [1])"],
      [{ x: { dtype: "BF16", shape: [1], data: new Float32Array(1) } }, `expected a dtype we write (F32, F16, I64, I32, U8) for tensor "x" for ${file}, got BF16`],
      [{ x: { dtype: "F16", shape: [1], data: new Float32Array(1) } }, "expected data Uint16Array(1) for tensor \"x\" (F16, [1])"],
      [{ __metadata__: { dtype: "U8", shape: [1], data: new Uint8Array(1) } }, 'expected a tensor name other than "__metadata__"'],
      [{ x: { dtype: "U8", shape: [-1], data: new Uint8Array(1) } }, "expected a shape of non-negative integers"],
    ];
    for (const [tensors, message] of bad) {
      const e = await rejection(writeSafetensors(file, { ok: { dtype: "U8", shape: [1], data: new Uint8Array(1) }, ...tensors }));
      expect(e.message).toContain(message);
      expect(existsSync(file)).toBe(false);
      expect(readdirSync(dir)).toEqual([]);
    }
  });

  it("writes F16 from raw half bits, read back as the halves' values", async () => {
    const file = tmpFile();
    const bits = Uint16Array.from([0x3c00, 0xc000, 0x3555, 0x0001, 0x7bff]); // 1, -2, ≈1/3, smallest subnormal, 65504
    await writeSafetensors(file, { h: { dtype: "F16", shape: [5], data: bits } });
    const back = (await readSafetensors(file)).get("h")!;
    expect(back.dtype).toBe("F16");
    expect(Array.from(back.data)).toEqual([1, -2, 0.333251953125, 2 ** -24, 65504]);
  });

  it("replaces an existing file atomically and keeps it when a write fails", async () => {
    const file = tmpFile();
    await writeSafetensors(file, { a: { dtype: "U8", shape: [1], data: Uint8Array.from([7]) } });
    const before = readFileSync(file);
    await rejection(writeSafetensors(file, { a: { dtype: "F32", shape: [2], data: new Float32Array(1) } }));
    expect(readFileSync(file).equals(before)).toBe(true);
    await writeSafetensors(file, { a: { dtype: "U8", shape: [1], data: Uint8Array.from([9]) } });
    expect((await readSafetensors(file)).get("a")!.data).toEqual(Uint8Array.from([9]));
  });
});
