// safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length N, N bytes of UTF-8 JSON {name: {dtype, shape, data_offsets: [begin, end]}, ...,
// "__metadata__": {string: string}} padded with spaces, then the data section, where every
// tensor is one contiguous little-endian byte span [begin, end) relative to the section start.
// The header is validated completely (length bounds, JSON, fields, dtypes, sizes, offsets
// covering the data section without overlaps or holes) before anything else is allocated.
// Reading goes one tensor at a time through a FileHandle (multi-GB files never sit in memory
// twice); F32/F16/BF16 become Float32Array, I64/I32 Int32Array, U8 Uint8Array.
// Writing is atomic: a temp file in the same folder, fsync, rename.
import { type FileHandle, open, rename, unlink } from "node:fs/promises";
import { endianness } from "node:os";
import { basename, dirname, join } from "node:path";

export type SafeDType = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";
export interface HostTensor {
  dtype: SafeDType;
  shape: number[];
  data: Float32Array | Int32Array | Uint8Array;
}
/** A header entry; begin/end are byte offsets into the data section. */
export interface TensorInfo {
  dtype: SafeDType;
  shape: number[];
  begin: number;
  end: number;
}
export interface SafetensorsHeader {
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  /** Where the data section starts in the file (8 + header length). */
  dataOffset: number;
}

export class SafetensorsError extends Error {
  override name = "SafetensorsError";
}

/** Bytes per element of every dtype of the format we know. */
export const DTYPE_SIZE: Readonly<Record<SafeDType, number>> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const READABLE: readonly SafeDType[] = ["F32", "F16", "BF16", "I64", "I32", "U8"];
const WRITABLE: readonly SafeDType[] = ["F32", "F16", "I64", "I32", "U8"];
/** safetensors' Dtype enum order; files list tensors by dtype descending, then name. */
const DTYPE_RANK: readonly string[] = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"];
/** Upper bound on the JSON header (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;
/** Largest single read or write (Node's limit is 2 GiB). */
const IO_CHUNK = 64 * 1024 * 1024;

const isLE = endianness() === "LE";
function checkHost(file: string): void {
  if (!isLE) throw new SafetensorsError(`safetensors: expected a little-endian host to read or write ${file}, got ${endianness()}`);
}

const describe = (v: unknown): string => (v === undefined ? "nothing" : v === null ? "null" : Array.isArray(v) ? `array ${JSON.stringify(v).slice(0, 80)}` : typeof v === "object" ? "an object" : `${typeof v} ${JSON.stringify(v)}`);
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** Validates a parsed header against a data section of `dataBytes` bytes. */
export function parseHeader(json: unknown, dataBytes: number, file: string): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  const fail = (expected: string, got: string): never => {
    throw new SafetensorsError(`safetensors: expected ${expected} in ${file}, got ${got}`);
  };
  if (!isRecord(json)) fail(`the header to be a JSON object`, describe(json));
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (!isRecord(entry)) fail(`"__metadata__" to be an object of strings`, describe(entry));
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`a string for "__metadata__"."${k}"`, describe(v));
        metadata[k] = v as string;
      }
      continue;
    }
    const at = `tensor "${name}"`;
    if (!isRecord(entry)) fail(`an object {dtype, shape, data_offsets} for ${at}`, describe(entry));
    const { dtype, shape, data_offsets: offsets, ...extra } = entry as Record<string, unknown>;
    const unknownKeys = Object.keys(extra);
    if (unknownKeys.length) fail(`only dtype, shape and data_offsets for ${at}`, `also ${unknownKeys.join(", ")}`);
    if (typeof dtype !== "string" || !(dtype in DTYPE_SIZE)) {
      fail(`dtype one of ${Object.keys(DTYPE_SIZE).join(", ")} for ${at}`, describe(dtype));
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) fail(`shape an array of non-negative integers for ${at}`, describe(shape));
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
      fail(`data_offsets [begin, end] of non-negative integers for ${at}`, describe(offsets));
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) fail(`data_offsets begin ≤ end for ${at}`, `[${begin}, ${end}]`);
    if (end > dataBytes) fail(`data_offsets inside the ${dataBytes}-byte data section for ${at}`, `[${begin}, ${end}]`);
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    const bytes = count * DTYPE_SIZE[dtype as SafeDType];
    if (!Number.isSafeInteger(bytes) || bytes !== end - begin) {
      fail(`shape [${(shape as number[]).join(", ")}] × ${dtype} (${bytes} bytes) to equal the byte span of ${at}`, `${end - begin} bytes ([${begin}, ${end}])`);
    }
    tensors.set(name, { dtype: dtype as SafeDType, shape: [...(shape as number[])], begin, end });
  }
  // The spans must tile the data section exactly: no overlaps, no holes, nothing after.
  const spans = [...tensors].sort(([, a], [, b]) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev = "the start of the data section";
  for (const [name, t] of spans) {
    if (t.begin < pos) fail(`no overlapping tensors`, `"${name}" [${t.begin}, ${t.end}] overlapping ${prev} (ends at ${pos})`);
    if (t.begin > pos) fail(`no holes in the data section`, `bytes [${pos}, ${t.begin}) unused before tensor "${name}"`);
    pos = t.end;
    prev = `tensor "${name}"`;
  }
  if (pos !== dataBytes) fail(`the tensors to cover the ${dataBytes}-byte data section`, `${dataBytes - pos} bytes after the last tensor (ends at ${pos})`);
  return { tensors, metadata };
}

async function readHeaderFrom(fh: FileHandle, file: string): Promise<SafetensorsHeader> {
  const size = (await fh.stat()).size;
  if (size < 8) throw new SafetensorsError(`safetensors: expected at least 8 bytes (the header length) in ${file}, got ${size}`);
  const lenBuf = Buffer.alloc(8);
  await fh.read(lenBuf, 0, 8, 0);
  const n = lenBuf.readBigUInt64LE(0);
  const limit = Math.min(size - 8, MAX_HEADER_BYTES);
  if (n < 2n || n > BigInt(limit)) {
    throw new SafetensorsError(
      `safetensors: expected header length ≥ 2 and ≤ ${limit} (${size - 8 <= MAX_HEADER_BYTES ? "file size - 8" : "the 100 MB cap"}) for ${file}, got ${n}; is this a safetensors file?`,
    );
  }
  const len = Number(n);
  const raw = Buffer.alloc(len);
  await fh.read(raw, 0, len, 8);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(raw);
  } catch {
    throw new SafetensorsError(`safetensors: expected a UTF-8 JSON header in ${file}, got invalid UTF-8`);
  }
  if (!text.startsWith("{")) throw new SafetensorsError(`safetensors: expected the header to start with "{" in ${file}, got ${JSON.stringify(text.slice(0, 20))}`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(`safetensors: expected a JSON header in ${file}, got a parse error: ${(e as Error).message}`);
  }
  const dataOffset = 8 + len;
  return { ...parseHeader(json, size - dataOffset, file), dataOffset };
}

/** The validated header of `file`; reads only the header bytes. */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  const fh = await openFile(file);
  try {
    return await readHeaderFrom(fh, file);
  } finally {
    await fh.close();
  }
}

async function openFile(file: string): Promise<FileHandle> {
  try {
    return await open(file, "r");
  } catch (e) {
    throw new SafetensorsError(`safetensors: expected a readable file at ${file}, got ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Fills `into` from the file at `position` (chunked: one read is at most 2 GiB). */
async function readInto(fh: FileHandle, into: Uint8Array, position: number, file: string): Promise<void> {
  for (let done = 0; done < into.length; ) {
    const n = Math.min(IO_CHUNK, into.length - done);
    const { bytesRead } = await fh.read(into, done, n, position + done);
    if (bytesRead === 0) throw new SafetensorsError(`safetensors: expected ${into.length} bytes at offset ${position} in ${file}, got end of file after ${done}`);
    done += bytesRead;
  }
}

let f16Table: Uint32Array | undefined;
/** float32 bit patterns of all 65536 half-precision values (subnormals, ±inf, NaN payloads kept). */
function f16Bits(): Uint32Array {
  if (f16Table) return f16Table;
  const t = new Uint32Array(65536);
  const f = new Float32Array(t.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) f[h] = (sign ? -1 : 1) * mant * 2 ** -24; // zero and subnormals (exact in f32)
    else if (exp === 31) t[h] = (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf, NaN
    else t[h] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  }
  return (f16Table = t);
}

/** Reads and converts one tensor described by the header. */
async function readTensor(fh: FileHandle, name: string, info: TensorInfo, dataOffset: number, file: string): Promise<HostTensor> {
  const { dtype, shape } = info;
  const count = shape.reduce((a, b) => a * b, 1);
  const pos = dataOffset + info.begin;
  const bytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  switch (dtype) {
    case "F32":
    case "I32":
    case "U8": {
      const data = dtype === "F32" ? new Float32Array(count) : dtype === "I32" ? new Int32Array(count) : new Uint8Array(count);
      await readInto(fh, bytes(data), pos, file);
      return { dtype, shape, data };
    }
    case "F16":
    case "BF16": {
      const half = new Uint16Array(count);
      await readInto(fh, bytes(half), pos, file);
      const out = new Uint32Array(count);
      if (dtype === "BF16") for (let i = 0; i < count; i++) out[i] = half[i]! << 16;
      else {
        const table = f16Bits();
        for (let i = 0; i < count; i++) out[i] = table[half[i]!]!;
      }
      return { dtype, shape, data: new Float32Array(out.buffer) };
    }
    case "I64": {
      const words = new Int32Array(2 * count); // (lo, hi) pairs, little-endian
      await readInto(fh, bytes(words), pos, file);
      const data = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const lo = words[2 * i]!;
        const hi = words[2 * i + 1]!;
        if (hi !== lo >> 31) {
          const v = (BigInt(hi) << 32n) | BigInt(lo >>> 0);
          throw new SafetensorsError(`safetensors: expected I64 values in the int32 range for tensor "${name}" in ${file}, got ${v} at index ${i}`);
        }
        data[i] = lo;
      }
      return { dtype, shape, data };
    }
    default:
      throw new SafetensorsError(`safetensors: expected tensor "${name}" in ${file} to have a dtype we read (${READABLE.join(", ")}), got unsupported dtype ${dtype}`);
  }
}

/** Streams: reads one selected tensor at a time (in file order), converts it, calls fn, then drops the host copy. */
export async function forEachTensor(
  file: string,
  fn: (name: string, t: HostTensor) => void | Promise<void>,
  opts: { select?: (name: string) => boolean } = {},
): Promise<void> {
  checkHost(file);
  const fh = await openFile(file);
  try {
    const { tensors, dataOffset } = await readHeaderFrom(fh, file);
    const order = [...tensors].filter(([name]) => !opts.select || opts.select(name)).sort(([, a], [, b]) => a.begin - b.begin);
    for (const [name, info] of order) await fn(name, await readTensor(fh, name, info, dataOffset, file));
  } finally {
    await fh.close();
  }
}

/** Every selected tensor of `file` (all by default), in file order. */
export async function readSafetensors(file: string, opts: { select?: (name: string) => boolean } = {}): Promise<Map<string, HostTensor>> {
  const out = new Map<string, HostTensor>();
  await forEachTensor(file, (name, t) => void out.set(name, t), opts);
  return out;
}

/** What a tensor's data may be when written: F16 is taken as raw half bits (Uint16Array). */
export type WritableData = HostTensor["data"] | Uint16Array;

/** A tensor to write whose data is produced on demand (one tensor in memory at a time). */
export interface TensorSource {
  name: string;
  dtype: SafeDType;
  shape: number[];
  data: () => WritableData | Promise<WritableData>;
}

const utf8Compare = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));
const arrayKind = (d: WritableData): string => d.constructor.name;

function expectedArray(dtype: SafeDType): string {
  return dtype === "F32" ? "Float32Array" : dtype === "U8" ? "Uint8Array" : dtype === "F16" ? "Uint16Array" : "Int32Array";
}

/**
 * Writes `sources` atomically (temp file in the same folder, fsync, rename), pulling each
 * tensor's data only when it is written. Header as safetensors writes it: `__metadata__`
 * {format: "pt", ...metadata} first, tensors sorted by dtype descending then name, padded
 * with spaces to a multiple of 8 bytes.
 */
export async function writeSafetensorsFrom(file: string, sources: TensorSource[], metadata: Record<string, string> = {}): Promise<void> {
  checkHost(file);
  const seen = new Set<string>();
  for (const s of sources) {
    const at = `tensor "${s.name}" for ${file}`;
    if (s.name === "__metadata__") throw new SafetensorsError(`safetensors: expected a tensor name other than "__metadata__" for ${file}, got "__metadata__"`);
    if (seen.has(s.name)) throw new SafetensorsError(`safetensors: expected unique tensor names for ${file}, got "${s.name}" twice`);
    seen.add(s.name);
    if (!WRITABLE.includes(s.dtype)) throw new SafetensorsError(`safetensors: expected a dtype we write (${WRITABLE.join(", ")}) for ${at}, got ${s.dtype}`);
    if (!s.shape.every((d) => isCount(d))) throw new SafetensorsError(`safetensors: expected a shape of non-negative integers for ${at}, got [${s.shape.join(", ")}]`);
  }
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== "string") throw new SafetensorsError(`safetensors: expected string metadata values for ${file}, got ${describe(v)} for "${k}"`);
  }
  const sorted = [...sources].sort((a, b) => DTYPE_RANK.indexOf(b.dtype) - DTYPE_RANK.indexOf(a.dtype) || utf8Compare(a.name, b.name));
  // The header, built by hand so that keys keep this order (JS objects put integer-like keys first).
  const entries = [`"__metadata__":${JSON.stringify({ format: "pt", ...metadata })}`];
  let offset = 0;
  for (const s of sorted) {
    const n = s.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[s.dtype];
    entries.push(`${JSON.stringify(s.name)}:${JSON.stringify({ dtype: s.dtype, shape: s.shape, data_offsets: [offset, offset + n] })}`);
    offset += n;
  }
  let header = Buffer.from(`{${entries.join(",")}}`);
  const pad = (8 - (header.length % 8)) % 8;
  header = Buffer.concat([header, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));

  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  const fh = await open(tmp, "w");
  try {
    let pos = 0;
    const write = async (buf: Uint8Array): Promise<void> => {
      for (let done = 0; done < buf.length; ) {
        const { bytesWritten } = await fh.write(buf, done, Math.min(IO_CHUNK, buf.length - done), pos);
        done += bytesWritten;
        pos += bytesWritten;
      }
    };
    await write(len);
    await write(header);
    for (const s of sorted) {
      const data = await s.data();
      const count = s.shape.reduce((a, b) => a * b, 1);
      const at = `tensor "${s.name}" (${s.dtype}, [${s.shape.join(", ")}]) for ${file}`;
      if (arrayKind(data) !== expectedArray(s.dtype) || data.length !== count) {
        throw new SafetensorsError(`safetensors: expected data ${expectedArray(s.dtype)}(${count}) for ${at}, got ${arrayKind(data)}(${data.length})`);
      }
      if (s.dtype !== "I64") {
        await write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        continue;
      }
      const step = IO_CHUNK / 8; // I64 from int32: sign-extend chunk by chunk
      for (let i = 0; i < count; i += step) {
        const part = data.subarray(i, Math.min(count, i + step));
        const words = new Int32Array(2 * part.length);
        for (let j = 0; j < part.length; j++) {
          words[2 * j] = part[j]!;
          words[2 * j + 1] = part[j]! < 0 ? -1 : 0;
        }
        await write(new Uint8Array(words.buffer));
      }
    }
    await fh.sync();
    await fh.close();
    await rename(tmp, file);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/** A host tensor to write: as HostTensor, or F16 as raw half bits in a Uint16Array. */
export type WritableTensor = Omit<HostTensor, "data"> & { data: WritableData };

/** Writes host tensors atomically (see writeSafetensorsFrom): F32 (Float32Array), F16 (Uint16Array bits), I64 and I32 (Int32Array), U8 (Uint8Array). */
export async function writeSafetensors(
  file: string,
  tensors: Map<string, WritableTensor> | Record<string, WritableTensor>,
  metadata: Record<string, string> = {},
): Promise<void> {
  const list = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  await writeSafetensorsFrom(
    file,
    list.map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: () => t.data })),
    metadata,
  );
}

