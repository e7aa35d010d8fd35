// Tensor: a shape and dtype over a pooled GPU buffer. Storage is always row-major and
// contiguous; a tensor may be a view (reshape, leading-axis slice) sharing its storage at a
// binding-aligned offset. Memory is released deterministically: dispose(), or tidy() which
// disposes what a function created except what it returns.
import { device, type Device } from "./device.js";
import { type AnyTypedArray, type DType, BYTES_PER_ELEMENT, typedArrayFor } from "./dtype.js";
import { LimitError, ReleasedError, ShapeError, fmtShape } from "./errors.js";
import type { PooledBuffer } from "./pool.js";
import type { BufferBinding } from "./recorder.js";
import { type Shape, checkShape, sizeOf } from "./shape.js";

class Storage {
  refs = 1;
  constructor(
    readonly dev: Device,
    readonly buf: PooledBuffer,
  ) {}
  release(): void {
    if (--this.refs === 0) this.dev.pool.release(this.buf);
  }
}

const scopes: Set<Tensor>[] = [];

export class Tensor {
  readonly shape: readonly number[];
  readonly size: number;
  private storage: Storage | null;

  /** Use `alloc`, `tensor`, `zeros` or an op to make tensors. */
  constructor(
    storage: Storage,
    shape: Shape,
    readonly dtype: DType,
    /** Offset into the storage in elements (binding-aligned). */
    readonly offset: number,
  ) {
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.size = sizeOf(shape);
    scopes[scopes.length - 1]?.add(this);
  }

  get rank(): number {
    return this.shape.length;
  }
  get bytes(): number {
    return this.size * BYTES_PER_ELEMENT;
  }
  get disposed(): boolean {
    return this.storage === null;
  }
  get device(): Device {
    return this.live("device").dev;
  }

  private live(op: string, name = "input"): Storage {
    if (!this.storage) {
      throw new ReleasedError(`${op}: expected a live tensor for ${name}, got one released by dispose() (shape ${fmtShape(this.shape)})`);
    }
    return this.storage;
  }

  /** Releases this tensor's hold on its buffer. Idempotent. */
  dispose(): void {
    if (!this.storage) return;
    this.storage.release();
    this.storage = null;
    for (const s of scopes) s.delete(this);
  }

  /** Takes the tensor out of every enclosing tidy() scope; the caller disposes it. */
  keep(): this {
    for (const s of scopes) s.delete(this);
    return this;
  }

  /** The whole tensor as a storage binding. Throws if it exceeds the per-binding limit. */
  binding(op: string, name = "input"): BufferBinding {
    const s = this.live(op, name);
    const max = s.dev.maxBinding;
    if (this.bytes > max) {
      throw new LimitError(
        `${op}: expected at most ${max} bytes (maxStorageBufferBindingSize) for ${name}, got ${this.bytes} (shape ${fmtShape(this.shape)}); this op does not chunk`,
      );
    }
    return { buffer: s.buf.buffer, offset: this.offset * BYTES_PER_ELEMENT, size: this.bytes };
  }

  /**
   * Elements [start, start+count) as a binding that starts at an aligned offset at or before
   * `start`; `skip` is how many elements precede `start` inside the binding. Used by ops that
   * process tensors larger than one binding in chunks.
   */
  rangeBinding(op: string, name: string, start: number, count: number): { binding: BufferBinding; skip: number } {
    const s = this.live(op, name);
    const alignElems = s.dev.limits.minStorageBufferOffsetAlignment / BYTES_PER_ELEMENT;
    const abs = this.offset + start;
    const first = Math.floor(abs / alignElems) * alignElems;
    const skip = abs - first;
    const bytes = (skip + count) * BYTES_PER_ELEMENT;
    if (bytes > s.dev.maxBinding) {
      throw new LimitError(`${op}: chunk of ${name} needs ${bytes} bytes, above maxStorageBufferBindingSize ${s.dev.maxBinding}`);
    }
    return { binding: { buffer: s.buf.buffer, offset: first * BYTES_PER_ELEMENT, size: bytes }, skip };
  }

  /** A view with another shape of the same size (one dimension may be -1). */
  reshape(shape: Shape): Tensor {
    const s = this.live("reshape");
    const known = shape.filter((d) => d !== -1);
    const free = shape.length - known.length;
    const knownSize = sizeOf(known);
    const full = shape.map((d) => (d === -1 ? this.size / knownSize : d));
    if (free > 1 || !Number.isInteger(full[shape.indexOf(-1)] ?? 0) || sizeOf(full) !== this.size) {
      throw new ShapeError(`reshape: expected a shape of ${this.size} elements, got ${fmtShape(shape)} (from ${fmtShape(this.shape)})`);
    }
    checkShape("reshape", full);
    s.refs++;
    return new Tensor(s, full, this.dtype, this.offset);
  }

  /**
   * Rows [start, end) of the leading axis: a view when the start is binding-aligned,
   * otherwise undefined (the `slice` op then copies).
   */
  rowsView(start: number, end: number): Tensor | undefined {
    const s = this.live("slice");
    const rowSize = this.size / this.shape[0]!;
    const offset = this.offset + start * rowSize;
    const alignElems = s.dev.limits.minStorageBufferOffsetAlignment / BYTES_PER_ELEMENT;
    if (offset % alignElems !== 0) return undefined;
    s.refs++;
    return new Tensor(s, [end - start, ...this.shape.slice(1)], this.dtype, offset);
  }

  /**
   * Overwrites the tensor with `data`. The queue runs an upload before commands still being
   * recorded, so recorded work is submitted first: reads recorded earlier see the old values.
   */
  write(data: AnyTypedArray): void {
    const s = this.live("write");
    if (s.dev.recorder.pending) s.dev.recorder.flush();
    upload(this, s, data);
  }

  /** Downloads the values (waits for all recorded work). */
  async toArray(): Promise<AnyTypedArray> {
    const s = this.live("toArray");
    const data = await s.dev.recorder.read(s.buf.buffer, this.offset * BYTES_PER_ELEMENT, this.bytes);
    return typedArrayFor(this.dtype, data);
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new ShapeError(`item: expected a tensor of one element, got shape ${fmtShape(this.shape)}`);
    return (await this.toArray())[0]!;
  }

  toString(): string {
    return `Tensor(${fmtShape(this.shape)}, ${this.dtype}${this.storage ? "" : ", released"})`;
  }
}

/** An uninitialised tensor (ops write every element of their outputs). */
export function alloc(shape: Shape, dtype: DType = "f32", dev: Device = device(), forUpload = false): Tensor {
  checkShape("alloc", shape);
  const bytes = sizeOf(shape) * BYTES_PER_ELEMENT;
  return new Tensor(new Storage(dev, dev.pool.acquire(bytes, forUpload)), shape, dtype, 0);
}

/** Uploads `data` (copied) as a tensor of `shape` (default: 1-D). */
export function tensor(data: AnyTypedArray | readonly number[], shape?: Shape, dtype?: DType): Tensor {
  const dt: DType = dtype ?? (data instanceof Int32Array ? "i32" : data instanceof Uint32Array ? "u32" : "f32");
  const arr = data instanceof Float32Array || data instanceof Int32Array || data instanceof Uint32Array ? data : Array.from(data);
  const shp = shape ?? [arr.length];
  checkShape("tensor", shp);
  if (sizeOf(shp) !== arr.length) {
    throw new ShapeError(`tensor: expected ${sizeOf(shp)} values for shape ${fmtShape(shp)}, got ${arr.length}`);
  }
  let typed = arr instanceof Float32Array || arr instanceof Int32Array || arr instanceof Uint32Array ? arr : null;
  if (!typed || dtypeName(typed) !== dt) {
    const conv = typedArrayFor(dt, arr.length);
    if (dt !== "f32") {
      for (let i = 0; i < arr.length; i++) {
        const v = arr[i]!;
        if (!Number.isInteger(v) || (dt === "u32" && v < 0)) {
          throw new ShapeError(`tensor: expected integer values for dtype ${dt}, got ${v} at index ${i}`);
        }
      }
    }
    conv.set(arr as ArrayLike<number>);
    typed = conv;
  }
  const dev = device();
  const t = alloc(shp, dt, dev, true); // a buffer no unsubmitted command uses: no flush needed
  upload(t, t["live"]("tensor"), typed);
  return t;
}

function upload(t: Tensor, s: Storage, data: AnyTypedArray): void {
  if (data.length !== t.size || dtypeName(data) !== t.dtype) {
    throw new ShapeError(`write: expected ${t.size} ${t.dtype} values for ${fmtShape(t.shape)}, got ${data.length} ${dtypeName(data)}`);
  }
  s.dev.gpu.queue.writeBuffer(s.buf.buffer, t.offset * BYTES_PER_ELEMENT, data.buffer, data.byteOffset, data.byteLength);
}

const dtypeName = (a: AnyTypedArray): DType => (a instanceof Float32Array ? "f32" : a instanceof Int32Array ? "i32" : "u32");

/**
 * Runs `fn` and disposes every tensor it created except those in its result (a tensor, or
 * an array/object of tensors) and those marked with keep(). Synchronous functions only.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  if (result instanceof Promise) throw new TypeError("tidy: expected a synchronous function, got one returning a Promise");
  const kept = new Set<Tensor>();
  collect(result, kept);
  for (const t of scope) if (!kept.has(t)) t.dispose();
  const parent = scopes[scopes.length - 1];
  if (parent) for (const t of kept) if (scope.has(t)) parent.add(t);
  return result;
}

function collect(v: unknown, out: Set<Tensor>): void {
  if (v instanceof Tensor) out.add(v);
  else if (Array.isArray(v)) for (const x of v) collect(x, out);
  else if (v && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    for (const x of Object.values(v)) collect(x, out);
  }
}

/** Disposes every tensor given (arrays and plain objects are searched). */
export function dispose(...values: unknown[]): void {
  const set = new Set<Tensor>();
  collect(values, set);
  for (const t of set) t.dispose();
}
