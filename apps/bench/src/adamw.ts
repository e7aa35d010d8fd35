// adamw: one fused AdamW step (in place) over distilgpt2's parameter set: 76 tensors,
// 81,912,576 parameters (wte [50257, 768] alone is 154 MB, above one storage binding).
// The shape key is the parameter count. Work (napkin bytes, memory-bound): param, grad, m,
// v read and param, m, v written: 28 bytes a parameter. Validation: the first step against
// adamwRef on sampled rows of wte, a weight, a bias and ln_f (host values are known: every
// tensor cycles through one seeded pool of values per role).
import { type Tensor, adamw, adamwRef, device, randArray, randnArray, tensor } from "@llms-eye/tensor";
import type { Family, OurCase, Preset } from "./bench.js";
import { compare } from "./harness.js";

/** distilgpt2 (Hugging Face GPT2LMHeadModel, 6 layers, 768 wide), without the tied lm_head. */
export function distilgpt2Shapes(): number[][] {
  const C = 768;
  const layer = [[C], [C], [C, 3 * C], [3 * C], [C, C], [C], [C], [C], [C, 4 * C], [4 * C], [4 * C, C], [C]];
  return [[50257, C], [1024, C], ...Array.from({ length: 6 }, () => layer).flat(), [C], [C]];
}

const SHAPES: Record<Preset, number[][]> = {
  full: distilgpt2Shapes(),
  quick: [],
  tiny: [[33, 7], [5], [129]],
};
SHAPES.quick = SHAPES.full;

const HYPER = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };
/** elementwise f32 math, one sqrt and one division. */
const TOL = { abs: 1e-6, rel: 1e-5 };

const POOL = 65_521; // prime, so tensors start at different phases
const pools = {
  param: randnArray(POOL, 61, 0.02),
  grad: randnArray(POOL, 62, 0.01),
  m: randnArray(POOL, 63, 0.001),
  v: randArray(POOL, 64, 0, 1e-5),
};
type Role = keyof typeof pools;
const ROLES: Role[] = ["param", "grad", "m", "v"];

/** The values of `role` for the tensor whose first element is global index `start`. */
function hostValues(role: Role, start: number, n: number): Float32Array {
  const out = new Float32Array(n);
  const pool = pools[role];
  for (let i = 0; i < n; ) {
    const at = (start + i) % POOL;
    const len = Math.min(POOL - at, n - i);
    out.set(pool.subarray(at, at + len), i);
    i += len;
  }
  return out;
}

const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);

interface Slot {
  shape: number[];
  start: number;
  t: Record<Role, Tensor>;
}

/** Checks the first and last rows (all of a small tensor) of param, m and v after step 1. */
async function checkSlot(s: Slot): Promise<void> {
  const n = size(s.shape);
  const width = s.shape.length > 1 ? size(s.shape.slice(1)) : 1;
  const rows = s.shape[0]!;
  const ranges = n <= 1 << 16 ? [[0, rows]] : [[0, 2], [rows - 2, rows]];
  for (const [r0, r1] of ranges as [number, number][]) {
    const [a, len] = [r0 * width, (r1 - r0) * width];
    const before = Object.fromEntries(ROLES.map((r) => [r, hostValues(r, s.start + a, len)])) as Record<Role, Float32Array>;
    const want = adamwRef(before.param, before.grad, before.m, before.v, { ...HYPER, step: 1 });
    for (const [role, w] of [["param", want.param], ["m", want.m], ["v", want.v]] as const) {
      const view = s.t[role].rowsView(r0, r1);
      const got = view ? await view.toArray() : (await s.t[role].toArray()).subarray(a, a + len);
      view?.dispose();
      compare(`adamw ${role} of [${s.shape.join(", ")}] rows ${r0}..${r1}`, got, w, TOL);
    }
  }
}

export function adamwCase(shapes: number[][], impl = adamw): OurCase {
  const n = shapes.reduce((acc, s) => acc + size(s), 0);
  return {
    op: "adamw",
    shape: String(n),
    work: { bytes: 28 * n },
    note: `${shapes.length} tensors${shapes.length === 76 ? " (distilgpt2)" : ""}`,
    spec: { op: "adamw", shapes },
    setup(keep) {
      let start = 0;
      const slots: Slot[] = shapes.map((shape) => {
        const t = Object.fromEntries(ROLES.map((r) => [r, keep(tensor(hostValues(r, start, size(shape)), shape))])) as Record<Role, Tensor>;
        const slot = { shape, start, t };
        start += size(shape);
        return slot;
      });
      let step = 0;
      const update = (): void => {
        step++;
        for (const { t } of slots) impl(t.param, t.grad, t.m, t.v, { ...HYPER, step });
      };
      return {
        async validate() {
          update();
          const last = slots.length - 1;
          for (const i of new Set([0, Math.min(2, last), Math.min(5, last), last])) await checkSlot(slots[i]!);
        },
        async step() {
          update();
          await device().sync();
        },
      };
    },
  };
}

export const family: Family = {
  name: "adamw",
  async validate() {
    const held: Tensor[] = [];
    try {
      const p = await adamwCase([[45, 65], [13], [129, 3]]).setup((t) => (held.push(t), t));
      await p.validate();
    } finally {
      for (const t of held) t.dispose();
    }
  },
  cases: (preset) => [adamwCase(SHAPES[preset])],
};
