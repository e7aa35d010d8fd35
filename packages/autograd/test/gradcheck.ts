// Central finite differences of a float64 reference against the tape's gradients.
import { init, randnArray, tensor, tidy, type Tensor } from "@llms-eye/tensor";
import { expect } from "vitest";
import { Var, backward, ag } from "../src/index.js";

export const ready = init();

export interface GradCase {
  name: string;
  shapes: number[][];
  /** Positive inputs (for log/div denominators). */
  positive?: boolean[];
  /** Builds the output on the tape. */
  gpu: (xs: Var[]) => Var;
  /** float64 forward of the same output (flat). */
  ref: (xs: Float64Array[]) => ArrayLike<number>;
  tol?: { abs: number; rel: number };
}

/** Loss = Σ out · R with fixed random R; compares d loss / d input for every input. */
export async function gradCheck(c: GradCase, seed = 1): Promise<void> {
  const host = c.shapes.map((s, i) => {
    const n = s.reduce((a, b) => a * b, 1);
    const v = randnArray(n, seed * 31 + i);
    return c.positive?.[i] ? v.map((x) => 0.5 + Math.abs(x)) : v;
  });
  const outLen = c.ref(host.map((h) => Float64Array.from(h))).length;
  const r = randnArray(outLen, seed * 97 + 7);
  const loss64 = (xs: Float64Array[]): number => {
    const o = c.ref(xs);
    let s = 0;
    for (let i = 0; i < o.length; i++) s += o[i]! * r[i]!;
    return s;
  };
  const vars = host.map((h, i) => new Var(tensor(h, c.shapes[i]!).keep(), true));
  tidy(() => {
    const out = c.gpu(vars);
    const rt = tensor(r, [...out.shape]);
    backward(ag.sum(ag.mul(out, rt)));
  });
  const tol = c.tol ?? { abs: 2e-4, rel: 2e-3 };
  for (let i = 0; i < vars.length; i++) {
    const got = await (vars[i]!.grad as Tensor).toArray();
    const xs = host.map((h) => Float64Array.from(h));
    const x = xs[i]!;
    for (let j = 0; j < x.length; j++) {
      const h = 1e-6 * Math.max(1, Math.abs(x[j]!));
      const keep = x[j]!;
      x[j] = keep + h;
      const up = loss64(xs);
      x[j] = keep - h;
      const down = loss64(xs);
      x[j] = keep;
      const want = (up - down) / (2 * h);
      const err = Math.abs(got[j]! - want);
      if (err > tol.abs + tol.rel * Math.abs(want)) {
        expect.fail(`${c.name}: d/dx${i}[${j}] got ${got[j]} want ${want} (shapes ${JSON.stringify(c.shapes)})`);
      }
    }
  }
  for (const v of vars) v.dispose();
}
