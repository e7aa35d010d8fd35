// Element types: f32 for values, i32/u32 for ids and indices. All are 4 bytes wide.

export type DType = "f32" | "i32" | "u32";
export type TypedArrayFor<D extends DType> = D extends "f32" ? Float32Array : D extends "i32" ? Int32Array : Uint32Array;
export type AnyTypedArray = Float32Array | Int32Array | Uint32Array;

export const BYTES_PER_ELEMENT = 4;

export function typedArrayFor(dtype: DType, buf: ArrayBuffer | number): AnyTypedArray {
  const b = typeof buf === "number" ? new ArrayBuffer(buf * BYTES_PER_ELEMENT) : buf;
  switch (dtype) {
    case "f32": return new Float32Array(b);
    case "i32": return new Int32Array(b);
    case "u32": return new Uint32Array(b);
  }
}

export function dtypeOf(a: AnyTypedArray): DType {
  if (a instanceof Float32Array) return "f32";
  if (a instanceof Int32Array) return "i32";
  return "u32";
}

/** The WGSL scalar type of a dtype. */
export const wgslType = (d: DType): string => d;
