// attention: fused causal scaled-dot-product attention, q, k, v [B, H, T, Dh] -> out (and
// lse). GPT-2 small/distilgpt2 shapes: batch 8, 12 heads, head dim 64, seq 64 and 256.
// Shape keys are B x H x T x Dh. Work: 4·Dh flops per visible (query, key) pair (q·k and
// p·v), T(T+1)/2 pairs per head when causal. Validation: odd small shapes in full, then two
// sampled heads of each timed shape against attentionRef.
import { type AnyTypedArray, attention, attentionRef, device, randnArray, tensor } from "@llms-eye/tensor";
import type { Family, OurCase, Preset } from "./bench.js";
import { compare, sampleIndices, shapeKey } from "./harness.js";

type Att = { b: number; h: number; t: number; dh: number; causal: boolean };

const SHAPES: Record<Preset, Att[]> = {
  full: [64, 256].map((t) => ({ b: 8, h: 12, t, dh: 64, causal: true })),
  quick: [],
  tiny: [{ b: 1, h: 2, t: 17, dh: 8, causal: true }],
};
SHAPES.quick = SHAPES.full;

/** f32 online softmax against float64: dot products of Dh terms, sums of T. */
const TOL = { abs: 1e-4, rel: 1e-4 };

export const attentionFlops = (c: Att): number => 4 * c.b * c.h * c.dh * (c.causal ? (c.t * (c.t + 1)) / 2 : c.t * c.t);

function inputs(c: Att, seed: number) {
  const n = c.b * c.h * c.t * c.dh;
  return { q: randnArray(n, seed), k: randnArray(n, seed + 1), v: randnArray(n, seed + 2) };
}

/** Checks heads `heads` (flat b·H + h indices; all when omitted) of our output. */
function checkHeads(c: Att, x: ReturnType<typeof inputs>, got: { out: AnyTypedArray; lse: AnyTypedArray }, heads: number[]) {
  const per = c.t * c.dh;
  for (const hd of heads) {
    const slice = (a: Float32Array) => a.subarray(hd * per, (hd + 1) * per);
    const want = attentionRef(slice(x.q), slice(x.k), slice(x.v), { B: 1, H: 1, Tq: c.t, Tk: c.t, Dh: c.dh }, { causal: c.causal });
    const what = `attention ${shapeKey(c.b, c.h, c.t, c.dh)} head ${hd}`;
    compare(`${what} out`, got.out.subarray(hd * per, (hd + 1) * per), want.out, TOL);
    compare(`${what} lse`, got.lse.subarray(hd * c.t, (hd + 1) * c.t), want.lse, TOL);
  }
}

export function attentionCase(c: Att): OurCase {
  const shape = [c.b, c.h, c.t, c.dh];
  return {
    op: "attention",
    shape: shapeKey(...shape),
    work: { flops: attentionFlops(c) },
    note: c.causal ? "causal" : "",
    spec: { op: "attention", ...c },
    setup(keep) {
      const x = inputs(c, 11);
      const [q, k, v] = [keep(tensor(x.q, shape)), keep(tensor(x.k, shape)), keep(tensor(x.v, shape))];
      return {
        async validate() {
          const r = attention(q, k, v, { causal: c.causal });
          try {
            const got = { out: await r.out.toArray(), lse: await r.lse.toArray() };
            checkHeads(c, x, got, sampleIndices(c.b * c.h, 2));
          } finally {
            r.out.dispose();
            r.lse.dispose();
          }
        },
        async step() {
          const r = attention(q, k, v, { causal: c.causal });
          await device().sync();
          r.out.dispose();
          r.lse.dispose();
        },
      };
    },
  };
}

export const family: Family = {
  name: "attention",
  async validate() {
    for (const c of [
      { b: 2, h: 3, t: 33, dh: 64, causal: true },
      { b: 1, h: 2, t: 45, dh: 13, causal: false },
    ]) {
      const x = inputs(c, 3);
      const shape = [c.b, c.h, c.t, c.dh];
      const [q, k, v] = [tensor(x.q, shape), tensor(x.k, shape), tensor(x.v, shape)];
      const r = attention(q, k, v, { causal: c.causal });
      try {
        const got = { out: await r.out.toArray(), lse: await r.lse.toArray() };
        checkHeads(c, x, got, [...Array(c.b * c.h).keys()]);
      } finally {
        for (const t of [q, k, v, r.out, r.lse]) t.dispose();
      }
    }
  },
  cases: (preset) => SHAPES[preset].map(attentionCase),
};
