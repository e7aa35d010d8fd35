// Typed errors. Messages follow `<op>: expected <what> for <name>, got <actual> (a=[..], b=[..])`.

export class TensorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Shapes that do not fit an op (mismatch, wrong rank, empty). */
export class ShapeError extends TensorError {}
/** A dtype the op does not accept. */
export class DTypeError extends TensorError {}
/** A tensor used after dispose(). */
export class ReleasedError extends TensorError {}
/** A device limit that the op cannot work around (buffer size, binding count). */
export class LimitError extends TensorError {}
/** An index outside its range, found on the host or by a kernel. */
export class IndexError extends TensorError {}
/** The WebGPU device reported an error or was lost. */
export class DeviceError extends TensorError {}

export const fmtShape = (s: readonly number[]): string => `[${s.join(", ")}]`;
