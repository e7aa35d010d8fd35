// Tokenizers: GPT-2 ids/tokens/decodes identical to HF's slow GPT2Tokenizer on every fixture case (both the
// vocab.json + merges.txt and the tokenizer.json paths), "<image>" never produced by plain text, round trips,
// a hand-derived CLIP vocabulary, clear errors for broken files, and encode speed on ~1 MB of text.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  buildTokenizerJson, loadTokenizer, parseMerges, parseVocab, TokenizerError, IMAGE_TOKEN, type Tokenizer,
} from "../src/tokenizer.js";
import { HF_PARITY } from "./fixtures.js";

const GPT2_DIR = join(HF_PARITY, "gpt2");
interface Case { text: string; ids: number[]; tokens: string[]; decoded: string; decoded_no_cleanup: string }
const CASES: Case[] = JSON.parse(readFileSync(join(HF_PARITY, "tokenizer", "cases.json"), "utf8")).cases;
const dirs: string[] = [];
const tmp = (): string => {
  dirs.push(mkdtempSync(join(tmpdir(), "eye-tok-")));
  return dirs[dirs.length - 1] as string;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function checkCases(tok: Tokenizer): void {
  expect(CASES.length).toBe(61);
  for (const c of CASES) {
    const what = JSON.stringify(c.text);
    expect(tok.encode(c.text), what).toEqual(c.ids);
    expect(tok.tokens(c.text), what).toEqual(c.tokens);
    expect(tok.decode(c.ids), what).toBe(c.decoded);
    expect(tok.decode(c.ids, { cleanUpTokenizationSpaces: false }), what).toBe(c.decoded_no_cleanup);
  }
}

describe("GPT-2 tokenizer (vocab.json + merges.txt)", () => {
  let tok: Tokenizer;
  beforeAll(async () => {
    tok = await loadTokenizer(GPT2_DIR);
  });

  it("matches HF's slow GPT2Tokenizer on every fixture case: ids, tokens, decode with and without cleanup", () => {
    expect(tok.kind).toBe("gpt2");
    expect([tok.vocabSize, tok.eosId, tok.bosId, tok.padId, tok.imageId]).toEqual([50257, 50256, 50256, 50256, null]);
    checkCases(tok);
  });

  it("splits on Unicode White_Space like Python's regex module, not JavaScript's \\s", () => {
    // Expected ids from transformers' GPT2Tokenizer.bpe run with the `regex` module (U+0085 is \s there, U+FEFF
    // and U+001C are not); the library's own ByteLevel regex gives [1587, 227, 87] for the first.
    expect(tok.encode(" \u0085x")).toEqual([220, 126, 227, 87]);
    expect(tok.encode("\u0085\u0085a")).toEqual([126, 227, 126, 227, 64]);
    expect(tok.encode("\u001c\u001ca")).toEqual([216, 216, 64]);
    expect(tok.encode("x \ufeff\ufeff y")).toEqual([87, 27332, 119, 123, 171, 119, 123, 331]);
  });

  it("decodes with skipSpecialTokens, and rejects ids outside the vocabulary", () => {
    expect(tok.decode([15496, 50256, 10603], { skipSpecialTokens: true })).toBe("HelloWorld");
    expect(tok.decode([])).toBe("");
    expect(() => tok.decode([50257])).toThrow(/expected token ids in \[0, 50257\) for decode, got 50257 at position 0/);
    expect(() => tok.decode([1.5])).toThrow(TokenizerError);
  });

  it("adds <image> as id 50257, which plain text never produces", () => {
    const before = tok.encode("look: <image> here");
    const id = tok.addImageToken();
    expect(id).toBe(50257);
    expect(tok.addImageToken()).toBe(50257); // idempotent
    expect([tok.imageId, tok.vocabSize]).toEqual([50257, 50258]);
    expect(tok.encode("look: <image> here")).toEqual(before);
    expect(tok.tokens(IMAGE_TOKEN)).toEqual(["<", "image", ">"]);
    const ids = tok.encode("<image><image> a cat", { allowSpecial: true });
    expect(ids).toEqual([50257, 50257, ...tok.encode(" a cat")]);
    expect(tok.decode(ids)).toBe("<image><image> a cat");
    expect(tok.decode([...ids, 50256], { skipSpecialTokens: true })).toBe(" a cat");
    expect(tok.decode([50258 - 1, 15496])).toBe("<image>Hello");
  });

  it("round-trips any text exactly without cleanup, never producing <image> (fast-check)", () => {
    tok.addImageToken();
    const piece = fc.oneof(
      fc.string({ unit: "binary", maxLength: 12 }),
      fc.constantFrom(IMAGE_TOKEN, "<|endoftext|>", " ", "\n", "  ", "'s", "é", "🍕", "\u0085", "\ufeff"),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 6 }), (parts) => {
        const text = parts.join("");
        const ids = tok.encode(text);
        expect(ids).not.toContain(tok.imageId);
        expect(tok.decode(ids, { cleanUpTokenizationSpaces: false })).toBe(text);
      }),
      { numRuns: 300, seed: 4 },
    );
  });

  it("encodes ~1 MB of text at a measured speed", () => {
    // Words drawn (seeded LCG) from the vocabulary itself: more varied than prose, so BPE's cache helps less.
    const vocab = Object.keys(JSON.parse(readFileSync(join(GPT2_DIR, "vocab.json"), "utf8")) as Record<string, number>);
    const words = vocab.filter((w) => /^Ġ[a-zA-Z]+$/.test(w)).map((w) => w.slice(1));
    let seed = 12345;
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    const parts: string[] = [];
    let len = 0;
    while (len < 1 << 20) {
      const w = words[next() % words.length] as string;
      const sep = ["", ",", ".", "'s", "!\n", " 1984", ""][next() % 7] as string;
      parts.push(w + sep + " ");
      len += w.length + sep.length + 1;
    }
    const text = parts.join("");
    const t0 = performance.now();
    const ids = tok.encode(text);
    const s = (performance.now() - t0) / 1000;
    console.log(`tokenizer: encoded ${(text.length / 1e6).toFixed(2)} MB into ${ids.length} tokens in ${s.toFixed(2)} s: ${(ids.length / s / 1e3).toFixed(0)}k tokens/s, ${(text.length / s / 1e6).toFixed(2)} MB/s`);
    expect(ids.length).toBeGreaterThan(150_000);
    expect(ids.length / s).toBeGreaterThan(20_000); // a floor against pathologies, far below the measured rate
  });
});

describe("GPT-2 tokenizer (tokenizer.json)", () => {
  it("loads a tokenizer.json written from the fixture's vocab.json + merges.txt and matches every case", async () => {
    const dir = tmp();
    const vocab = parseVocab(JSON.parse(readFileSync(join(GPT2_DIR, "vocab.json"), "utf8")), "vocab.json");
    const merges = parseMerges(readFileSync(join(GPT2_DIR, "merges.txt"), "utf8"), vocab, "merges.txt");
    expect(merges.length).toBe(50000);
    const special = { single_word: false, lstrip: false, rstrip: false, normalized: true, special: true };
    const json = buildTokenizerJson("gpt2", vocab, merges, [
      { id: 50256, content: "<|endoftext|>", ...special },
      { id: 50257, content: IMAGE_TOKEN, ...special, normalized: false },
    ]);
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(json));
    const tok = await loadTokenizer(dir);
    expect([tok.kind, tok.vocabSize, tok.eosId, tok.imageId]).toEqual(["gpt2", 50258, 50256, 50257]);
    checkCases(tok);
    expect(tok.encode("a <image>")).toEqual([64, 1279, 9060, 29]);
    expect(tok.encode("a <image>", { allowSpecial: true })).toEqual([64, 220, 50257]);
  });
});

// A CLIP-format vocabulary as CLIPTokenizer builds it: 256 byte symbols, the same with "</w>", one entry per
// merge, then <|startoftext|> and <|endoftext|>.
const BYTES: string[] = (() => {
  const bs: number[] = [];
  for (let b = 0; b < 256; b++) if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) bs.push(b);
  const cs = bs.map((b) => String.fromCharCode(b));
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) cs.push(String.fromCharCode(256 + n++));
  return cs;
})();
const CLIP_MERGES = ["p h", "ph o", "pho t", "phot o</w>", "o f</w>", "c a", "ca t</w>", "d o", "do g</w>", "t h", "th e</w>"];

function writeClip(dir: string, mergesText = `#version: 0.2\n${CLIP_MERGES.join("\n")}\n`): Record<string, number> {
  const tokens = [...BYTES, ...BYTES.map((c) => c + "</w>"), ...CLIP_MERGES.map((m) => m.replace(" ", "")), "<|startoftext|>", "<|endoftext|>"];
  const vocab = Object.fromEntries(tokens.map((t, i) => [t, i]));
  writeFileSync(join(dir, "vocab.json"), JSON.stringify(vocab));
  writeFileSync(join(dir, "merges.txt"), mergesText);
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ tokenizer_class: "CLIPTokenizer", pad_token: "<|endoftext|>" }));
  return vocab;
}

describe("CLIP tokenizer (hand-built vocabulary)", () => {
  let tok: Tokenizer;
  let V: Record<string, number>;
  const ids = (...ts: string[]): number[] => ts.map((t) => V[t] as number);
  beforeAll(async () => {
    const dir = tmp();
    V = writeClip(dir);
    tok = await loadTokenizer(dir);
  });

  it("has CLIP's special tokens", () => {
    expect(tok.kind).toBe("clip");
    expect([tok.vocabSize, tok.bosId, tok.eosId, tok.padId]).toEqual([525, 523, 524, 524]);
  });

  it("lower-cases, collapses whitespace, ends words with </w>, wraps in start/end tokens", () => {
    const [bos, eos] = [tok.bosId, tok.eosId];
    expect(tok.encode("A  Photo\tof\n the   CAT")).toEqual([bos, ...ids("a</w>", "photo</w>", "of</w>", "the</w>", "cat</w>"), eos]);
    expect(tok.encode("a photo", { addSpecialTokens: false })).toEqual(ids("a</w>", "photo</w>"));
    // "cat" merges to one token only at the end of a word: "cats" keeps ca + t + s</w>.
    expect(tok.tokens("cats photos dogs!")).toEqual(["ca", "t", "s</w>", "phot", "o", "s</w>", "do", "g", "s</w>", "!</w>"]);
    expect(tok.tokens("12 the cat's")).toEqual(["1</w>", "2</w>", "the</w>", "cat</w>", "'", "s</w>"]);
    // NFC: a decomposed é is the same two byte tokens as the precomposed one.
    expect(tok.tokens("E\u0301")).toEqual(["Ã", "©</w>"]);
    expect(tok.encode("e\u0301")).toEqual(tok.encode("\u00e9"));
    expect(tok.encode("cat<|endoftext|>dog")).toEqual([bos, V["cat</w>"], eos, V["dog</w>"], eos]);
    expect(tok.encode("")).toEqual([bos, eos]);
  });

  it("decodes: </w> becomes a space, outer spaces stripped, cleanup as transformers 4.31", () => {
    const e = tok.encode("A photo of the CAT");
    expect(tok.decode(e)).toBe("<|startoftext|>a photo of the cat <|endoftext|>");
    expect(tok.decode(e, { skipSpecialTokens: true })).toBe("a photo of the cat");
    const s = tok.encode("the cat's dogs!", { addSpecialTokens: false });
    expect(tok.decode(s)).toBe("the cat's dogs!");
    expect(tok.decode(s, { cleanUpTokenizationSpaces: false })).toBe("the cat 's dogs !");
  });

  it("gives the same ids from a tokenizer.json with CLIPConverter's structure", async () => {
    const dir = tmp();
    const vocab = writeClip(dir);
    const merges = CLIP_MERGES.map((m) => m.split(" ") as [string, string]);
    const special = { single_word: false, lstrip: false, rstrip: false, normalized: true, special: true };
    const json = buildTokenizerJson("clip", vocab, merges, [
      { id: 523, content: "<|startoftext|>", ...special },
      { id: 524, content: "<|endoftext|>", ...special },
    ]);
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(json));
    const fromJson = await loadTokenizer(dir);
    for (const t of ["A  Photo\tof\n the   CAT", "cats photos dogs!", "12 the cat's", "E\u0301", "cat<|endoftext|>dog"]) {
      expect(fromJson.encode(t)).toEqual(tok.encode(t));
    }
    expect(fromJson.decode(tok.encode("the CAT's"))).toBe(tok.decode(tok.encode("the CAT's")));
  });
});

describe("tokenizer errors", () => {
  const expectError = async (dir: string, re: RegExp): Promise<void> => {
    const err = await loadTokenizer(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenizerError);
    expect((err as Error).message).toMatch(re);
  };

  it("names the missing or broken file", async () => {
    const empty = tmp();
    await expectError(empty, /expected tokenizer\.json or vocab\.json \+ merges\.txt in .*eye-tok-.*, got neither/);
    const noMerges = tmp();
    copyFileSync(join(GPT2_DIR, "vocab.json"), join(noMerges, "vocab.json"));
    await expectError(noMerges, /expected .*merges\.txt beside .*vocab\.json, got no such file/);
    const corrupt = tmp();
    writeFileSync(join(corrupt, "vocab.json"), '{"a": 0, "b": ');
    writeFileSync(join(corrupt, "merges.txt"), "#version: 0.2\n");
    await expectError(corrupt, /expected valid JSON in .*vocab\.json, got /);
    const badId = tmp();
    writeFileSync(join(badId, "vocab.json"), '{"a": 0, "b": "1"}');
    writeFileSync(join(badId, "merges.txt"), "#version: 0.2\n");
    await expectError(badId, /expected a non-negative integer id for token "b" in .*vocab\.json, got "1"/);
    const dupId = tmp();
    writeFileSync(join(dupId, "vocab.json"), '{"a": 0, "b": 0}');
    writeFileSync(join(dupId, "merges.txt"), "#version: 0.2\n");
    await expectError(dupId, /expected unique ids in .*vocab\.json, got id 0 for both "a" and "b"/);
    const badMerge = tmp();
    writeClip(badMerge, "#version: 0.2\np h\nph o x\n");
    await expectError(badMerge, /expected "left right" on line 3 of .*merges\.txt, got "ph o x"/);
    const foreign = tmp();
    writeClip(foreign, "#version: 0.2\nq z\n");
    await expectError(foreign, /expected the tokens of merge "q z" \(line 2 of .*merges\.txt\) in vocab\.json, got "qz" missing/);
    const badJson = tmp();
    writeFileSync(join(badJson, "tokenizer.json"), "not json");
    await expectError(badJson, /expected valid JSON in .*tokenizer\.json/);
    const wordPiece = tmp();
    writeFileSync(join(wordPiece, "tokenizer.json"), JSON.stringify({ added_tokens: [], model: { type: "WordPiece", vocab: { a: 0 } } }));
    await expectError(wordPiece, /expected a BPE model with vocab and merges in .*tokenizer\.json, got model type WordPiece/);
    const bert = tmp();
    copyFileSync(join(GPT2_DIR, "vocab.json"), join(bert, "vocab.json"));
    copyFileSync(join(GPT2_DIR, "merges.txt"), join(bert, "merges.txt"));
    writeFileSync(join(bert, "tokenizer_config.json"), JSON.stringify({ tokenizer_class: "BertTokenizer" }));
    await expectError(bert, /expected tokenizer_class GPT2Tokenizer or CLIPTokenizer in .*tokenizer_config\.json, got BertTokenizer/);
  });
});
