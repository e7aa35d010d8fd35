// layernorm: y = (x - mean) / sqrt(var + 1e-5) · weight + bias over the last axis of
// x [N, C]; GPT-2's [1600, 768] (B 8 x T 200, C 768). Shape keys are N x C. Work (napkin
// bytes, memory-bound): x read once, y written once (8·N·C; weight and bias are cached).
// Validation: odd small shapes in full, then sampled rows of the timed shape against
// layerNormRef.
import { type Tensor, device, layerNorm, layerNormRef, randnArray, tensor } from "@llms-eye/tensor";
import type { Family, OurCase, Preset } from "./bench.js";
import { compare, pickRows, sampleIndices, shapeKey } from "./harness.js";

type Ln = { n: number; c: number };

const SHAPES: Record<Preset, Ln[]> = {
  full: [{ n: 1600, c: 768 }],
  quick: [],
  tiny: [{ n: 5, c: 33 }],
};
SHAPES.quick = SHAPES.full;

/** mean and variance over C terms in f32, outputs of O(1). */
const TOL = { abs: 1e-4, rel: 1e-4 };

function inputs(c: Ln, seed: number) {
  return { x: randnArray(c.n * c.c, seed, 3), w: randnArray(c.c, seed + 1), b: randnArray(c.c, seed + 2) };
}
type Inputs = ReturnType<typeof inputs>;

async function checkLayerNorm(c: Ln, x: Inputs, t: { x: Tensor; w: Tensor; b: Tensor }, rows: number[], impl = layerNorm): Promise<void> {
  const out = impl(t.x, t.w, t.b);
  try {
    const got = await out.toArray();
    const want = layerNormRef(pickRows(x.x, c.c, rows), [rows.length, c.c], x.w, x.b);
    compare(`layerNorm ${shapeKey(c.n, c.c)} rows [${rows.join(", ")}]`, pickRows(got, c.c, rows), want, TOL);
  } finally {
    out.dispose();
  }
}

const uploadAll = (c: Ln, x: Inputs) => ({ x: tensor(x.x, [c.n, c.c]), w: tensor(x.w, [c.c]), b: tensor(x.b, [c.c]) });

export function layerNormCase(c: Ln, impl = layerNorm): OurCase {
  return {
    op: "layernorm",
    shape: shapeKey(c.n, c.c),
    work: { bytes: 8 * c.n * c.c },
    spec: { op: "layernorm", ...c },
    setup(keep) {
      const x = inputs(c, 41);
      const t = uploadAll(c, x);
      for (const v of Object.values(t)) keep(v);
      return {
        validate: () => checkLayerNorm(c, x, t, sampleIndices(c.n, 4), impl),
        async step() {
          const out = impl(t.x, t.w, t.b);
          await device().sync();
          out.dispose();
        },
      };
    },
  };
}

export const family: Family = {
  name: "layernorm",
  async validate() {
    for (const c of [
      { n: 7, c: 33 },
      { n: 3, c: 1029 },
    ]) {
      const x = inputs(c, 5);
      const t = uploadAll(c, x);
      try {
        await checkLayerNorm(c, x, t, [...Array(c.n).keys()]);
      } finally {
        for (const v of Object.values(t)) v.dispose();
      }
    }
  },
  cases: (preset) => SHAPES[preset].map((c) => layerNormCase(c)),
};
