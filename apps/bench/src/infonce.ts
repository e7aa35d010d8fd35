// infonce: CLIP's symmetric InfoNCE over cosine similarities, img [B, E], txt [B, E],
// logScale [1] -> loss and logits [B, B] = exp(logScale) · norm(img) norm(txt)ᵀ; batch 256,
// dim 256. Shape keys are B x E. Work: 2·B²·E flops (the similarity matmul; the norms and
// both cross-entropies are O(B·E + B²)); items: B pairs. Validation: in full, against
// infoNCERef, on an odd small shape and on the timed shape.
import { type Tensor, device, infoNCE, infoNCERef, randnArray, tensor } from "@llms-eye/tensor";
import type { Family, OurCase, Preset } from "./bench.js";
import { compare, shapeKey } from "./harness.js";

type Nce = { b: number; e: number };

const SHAPES: Record<Preset, Nce[]> = {
  full: [{ b: 256, e: 256 }],
  quick: [],
  tiny: [{ b: 9, e: 16 }],
};
SHAPES.quick = SHAPES.full;

/** cosine logits scaled by up to 100, then log-sum-exps over B terms. */
const TOL = { abs: 2e-4, rel: 1e-4 };
const LOG_SCALE = Math.log(1 / 0.07);

function inputs(c: Nce, seed: number) {
  return { img: randnArray(c.b * c.e, seed), txt: randnArray(c.b * c.e, seed + 1), logScale: Float32Array.of(LOG_SCALE) };
}
type Inputs = ReturnType<typeof inputs>;
type Uploaded = { img: Tensor; txt: Tensor; logScale: Tensor };

async function checkInfoNCE(c: Nce, x: Inputs, t: Uploaded, impl = infoNCE): Promise<void> {
  const r = impl(t.img, t.txt, t.logScale);
  try {
    const want = infoNCERef(x.img, x.txt, c.b, c.e, LOG_SCALE);
    const what = `infoNCE ${shapeKey(c.b, c.e)}`;
    compare(`${what} logits`, await r.logits.toArray(), want.logits, TOL);
    compare(`${what} loss`, await r.loss.toArray(), [want.loss], TOL);
  } finally {
    r.loss.dispose();
    r.logits.dispose();
  }
}

const uploadAll = (c: Nce, x: Inputs): Uploaded => ({
  img: tensor(x.img, [c.b, c.e]),
  txt: tensor(x.txt, [c.b, c.e]),
  logScale: tensor(x.logScale, [1]),
});

export function infoNCECase(c: Nce, impl = infoNCE): OurCase {
  return {
    op: "infonce",
    shape: shapeKey(c.b, c.e),
    work: { flops: 2 * c.b * c.b * c.e, items: c.b },
    note: "forward; items = pairs",
    spec: { op: "infonce", ...c },
    setup(keep) {
      const x = inputs(c, 51);
      const t = uploadAll(c, x);
      for (const v of Object.values(t)) keep(v);
      return {
        validate: () => checkInfoNCE(c, x, t, impl),
        async step() {
          const r = impl(t.img, t.txt, t.logScale);
          await device().sync();
          r.loss.dispose();
          r.logits.dispose();
        },
      };
    },
  };
}

export const family: Family = {
  name: "infonce",
  async validate() {
    const c = { b: 13, e: 33 };
    const x = inputs(c, 5);
    const t = uploadAll(c, x);
    try {
      await checkInfoNCE(c, x, t);
    } finally {
      for (const v of Object.values(t)) v.dispose();
    }
  },
  cases: (preset) => SHAPES[preset].map((c) => infoNCECase(c)),
};
