// cross-entropy: softmax cross-entropy forward over GPT-2's vocabulary, logits [N, 50257]
// with i32 targets [N] -> mean loss (and each row's lse); and softmax over the same rows.
// N = 1600 (B 8 x T 200: the logits are 321 MB, above one storage binding) and N = 400
// (80 MB: a shape tfjs can run). Shape keys are N x V. Work (napkin bytes, memory-bound):
// cross-entropy reads the logits once (4·N·V); softmax reads and writes them (8·N·V).
// Validation: odd small shapes in full, then sampled rows of each timed shape against
// crossEntropyRef / softmaxRef, and the mean against our per-row losses.
import { type Tensor, crossEntropy, crossEntropyRef, device, randArray, randnArray, softmax, softmaxRef, tensor } from "@llms-eye/tensor";
import type { Family, OurCase, Preset } from "./bench.js";
import { compare, pickRows, sampleIndices, shapeKey } from "./harness.js";

type Rows = { n: number; v: number };

const SHAPES: Record<Preset, Rows[]> = {
  full: [
    { n: 1600, v: 50257 },
    { n: 400, v: 50257 },
  ],
  quick: [],
  tiny: [{ n: 7, v: 101 }],
};
SHAPES.quick = SHAPES.full;

/** lse and losses are sums of V exponentials in f32 (values ~ log V). */
const CE_TOL = { abs: 1e-4, rel: 1e-5 };
/** probabilities ~ 1/V: relative error of one exp and one division. */
const SOFTMAX_TOL = { abs: 1e-9, rel: 1e-4 };

function inputs(c: Rows, seed: number) {
  const logits = randnArray(c.n * c.v, seed, 2);
  const targets = Int32Array.from(randArray(c.n, seed + 1, 0, c.v), Math.floor);
  return { logits, targets };
}

type Inputs = ReturnType<typeof inputs>;

/** Runs reduction "none" and "mean" on the uploaded `x`; checks `rows` against the reference. */
async function checkCrossEntropy(c: Rows, x: Inputs, logits: Tensor, targets: Tensor, rows: number[], impl = crossEntropy): Promise<void> {
  const none = impl(logits, targets, { reduction: "none" });
  const mean = impl(logits, targets);
  try {
    const what = `crossEntropy ${shapeKey(c.n, c.v)}`;
    const loss = await none.loss.toArray();
    const lse = await none.lse.toArray();
    const want = crossEntropyRef(pickRows(x.logits, c.v, rows), rows.map((r) => x.targets[r]!), rows.length, c.v, { reduction: "none" });
    compare(`${what} row losses [${rows.join(", ")}]`, rows.map((r) => loss[r]!), want.loss, CE_TOL);
    compare(`${what} lse [${rows.join(", ")}]`, rows.map((r) => lse[r]!), want.lse, CE_TOL);
    let sum = 0;
    for (const l of loss) sum += l;
    compare(`${what} mean loss (against the mean of the row losses)`, [await mean.loss.item()], [sum / c.n], CE_TOL);
  } finally {
    for (const t of [none.loss, none.lse, mean.loss, mean.lse]) t.dispose();
  }
}

async function checkSoftmax(c: Rows, x: Inputs, logits: Tensor, rows: number[], impl = softmax): Promise<void> {
  const out = impl(logits);
  try {
    const got = await out.toArray();
    const want = softmaxRef(pickRows(x.logits, c.v, rows), [rows.length, c.v]);
    compare(`softmax ${shapeKey(c.n, c.v)} rows [${rows.join(", ")}]`, pickRows(got, c.v, rows), want, SOFTMAX_TOL);
  } finally {
    out.dispose();
  }
}

export function crossEntropyCase(c: Rows, impl = crossEntropy): OurCase {
  return {
    op: "cross-entropy",
    shape: shapeKey(c.n, c.v),
    work: { bytes: 4 * c.n * c.v + 12 * c.n },
    note: "forward, mean",
    spec: { op: "cross-entropy", ...c },
    setup(keep) {
      let x: Inputs | undefined = inputs(c, 21);
      const logits = keep(tensor(x.logits, [c.n, c.v]));
      const targets = keep(tensor(x.targets, [c.n]));
      return {
        async validate() {
          await checkCrossEntropy(c, x!, logits, targets, sampleIndices(c.n, 4), impl);
          x = undefined;
        },
        async step() {
          const r = impl(logits, targets);
          await device().sync();
          r.loss.dispose();
          r.lse.dispose();
        },
      };
    },
  };
}

export function softmaxCase(c: Rows, impl = softmax): OurCase {
  return {
    op: "softmax",
    shape: shapeKey(c.n, c.v),
    work: { bytes: 8 * c.n * c.v },
    spec: { op: "softmax", ...c },
    setup(keep) {
      let x: Inputs | undefined = inputs(c, 31);
      const logits = keep(tensor(x.logits, [c.n, c.v]));
      return {
        async validate() {
          await checkSoftmax(c, x!, logits, sampleIndices(c.n, 4), impl);
          x = undefined;
        },
        async step() {
          const out = impl(logits);
          await device().sync();
          out.dispose();
        },
      };
    },
  };
}

export const family: Family = {
  name: "cross-entropy",
  async validate() {
    for (const c of [
      { n: 5, v: 33 },
      { n: 17, v: 1029 },
    ]) {
      const x = inputs(c, 5);
      const [logits, targets] = [tensor(x.logits, [c.n, c.v]), tensor(x.targets, [c.n])];
      try {
        const all = [...Array(c.n).keys()];
        await checkCrossEntropy(c, x, logits, targets, all);
        await checkSoftmax(c, x, logits, all);
      } finally {
        logits.dispose();
        targets.dispose();
      }
    }
  },
  cases: (preset) => SHAPES[preset].flatMap((c) => [crossEntropyCase(c), softmaxCase(c)]),
};
