// One shard of the feature cache on disk: a safetensors file holding one tensor "features"
// [n, K, D] in F32 or F16, written atomically by the models package's writeSafetensors (temp
// file, fsync, rename). Reading picks rows with positional reads on an open handle and
// widens F16 to f32 (round to nearest even on the way in, exact on the way out).
import { type FileHandle, open } from "node:fs/promises";
import { readSafetensorsHeader, writeSafetensors } from "@llms-eye/models";

export type FeatureDType = "f32" | "f16";

export class FeatureCacheError extends Error {
  override name = "FeatureCacheError";
}
export const FEATURE_TENSOR = "features";
const BYTES: Record<FeatureDType, number> = { f32: 4, f16: 2 };

/** Writes `data` [n, K, D] as the shard `file` in `dtype` (atomically, through the models package's writer). */
export async function writeShard(file: string, data: Float32Array, shape: [number, number, number], dtype: FeatureDType): Promise<void> {
  const tensor = dtype === "f32" ? { dtype: "F32" as const, shape, data } : { dtype: "F16" as const, shape, data: toF16(data) };
  await writeSafetensors(file, { [FEATURE_TENSOR]: tensor });
}

/** Where a valid shard's rows start, or why the shard cannot be served. */
export async function checkShard(file: string, rows: number, K: number, D: number, dtype: FeatureDType): Promise<{ dataStart: number } | { problem: string }> {
  let header;
  try {
    header = await readSafetensorsHeader(file);
  } catch (e) {
    return { problem: (e as Error).message };
  }
  const t = header.tensors.get(FEATURE_TENSOR);
  const want = `${FEATURE_TENSOR} ${dtype.toUpperCase()} [${rows}, ${K}, ${D}]`;
  const shape = t?.shape.join(", ");
  if (!t || header.tensors.size !== 1 || t.dtype !== dtype.toUpperCase() || shape !== `${rows}, ${K}, ${D}`) {
    const got = [...header.tensors].map(([n, i]) => `${n} ${i.dtype} [${i.shape.join(", ")}]`).join("; ") || "no tensors";
    return { problem: `expected only the tensor ${want}, got ${got}` };
  }
  return { dataStart: header.dataOffset + t.begin };
}

/**
 * Copies rows `rows` (ascending) of a shard into `out` at `outRows[i] * rowLen` (in f32).
 * Consecutive rows are read in one positional read.
 */
export async function readRows(fh: FileHandle, file: string, dataStart: number, rowLen: number, dtype: FeatureDType, rows: number[], outRows: number[], out: Float32Array): Promise<void> {
  const rowBytes = rowLen * BYTES[dtype];
  for (let i = 0; i < rows.length; ) {
    let j = i + 1;
    while (j < rows.length && rows[j] === rows[j - 1]! + 1) j++;
    const buf = new Uint8Array((j - i) * rowBytes);
    const pos = dataStart + rows[i]! * rowBytes;
    for (let done = 0; done < buf.length; ) {
      const { bytesRead } = await fh.read(buf, done, buf.length - done, pos + done);
      if (bytesRead === 0) throw new FeatureCacheError(`feature cache: expected ${buf.length} bytes at offset ${pos} of ${file}, got end of file after ${done}; the shard was changed on disk, delete it and rebuild`);
      done += bytesRead;
    }
    const vals = dtype === "f32" ? new Float32Array(buf.buffer) : fromF16(new Uint16Array(buf.buffer));
    for (let k = i; k < j; k++) out.set(vals.subarray((k - i) * rowLen, (k - i + 1) * rowLen), outRows[k]! * rowLen);
    i = j;
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** f32 → IEEE half bits, round to nearest even; overflow → ±inf, NaN kept NaN. */
export function f16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 112; // rebias 127 → 15
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry rolls into the exponent (up to inf)
  return sign | h;
}

export function toF16(data: Float32Array): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = f16Bits(data[i]!);
  return out;
}

let table: Float32Array | undefined;
/** IEEE half bits → f32, through a 65536-entry table. */
export function fromF16(half: Uint16Array): Float32Array {
  if (!table) {
    table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const s = h & 0x8000 ? -1 : 1;
      const e = (h >> 10) & 0x1f;
      const m = h & 0x3ff;
      table[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
    }
  }
  const out = new Float32Array(half.length);
  for (let i = 0; i < half.length; i++) out[i] = table[half[i]!]!;
  return out;
}
