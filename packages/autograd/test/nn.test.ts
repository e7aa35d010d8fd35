import { layerNormRef, matmulRef, randnArray, tensor, tidy, type Tensor } from "@llms-eye/tensor";
import { beforeAll, describe, expect, it } from "vitest";
import { Dropout, Embedding, GELU, LayerNorm, Linear, Module, StateDictError, Var, ag, backward, param } from "../src/index.js";
import { gradCheck, ready } from "./gradcheck.js";

beforeAll(async () => {
  await ready;
});

class Attention extends Module {
  c_attn: Linear;
  c_proj: Linear;
  constructor(d: number, seed: number) {
    super();
    this.c_attn = new Linear(d, 3 * d, { layout: "in_out", seed });
    this.c_proj = new Linear(d, d, { layout: "in_out", seed: seed + 1 });
  }
}
class Block extends Module {
  ln_1: LayerNorm;
  attn: Attention;
  ln_2: LayerNorm;
  drop: Dropout;
  constructor(d: number, seed: number) {
    super();
    this.ln_1 = new LayerNorm(d);
    this.attn = new Attention(d, seed);
    this.ln_2 = new LayerNorm(d);
    this.drop = new Dropout(0.1, seed);
  }
}
class Tiny extends Module {
  h: Block[];
  ln_f: LayerNorm;
  _notAParam: Var;
  constructor(d = 4, layers = 2, seed = 0) {
    super();
    this.h = Array.from({ length: layers }, (_, i) => new Block(d, seed + 10 * i));
    this.ln_f = new LayerNorm(d);
    this._notAParam = param(tensor([1]));
  }
}

const arr = async (t: Tensor): Promise<number[]> => Array.from(await t.toArray());

describe("Module", () => {
  it("names parameters in Hugging Face's dotted form, children and lists in field order", () => {
    const m = new Tiny();
    const names = m.namedParameters().map(([k]) => k);
    expect(names.slice(0, 10)).toEqual([
      "h.0.ln_1.weight", "h.0.ln_1.bias",
      "h.0.attn.c_attn.weight", "h.0.attn.c_attn.bias", "h.0.attn.c_proj.weight", "h.0.attn.c_proj.bias",
      "h.0.ln_2.weight", "h.0.ln_2.bias",
      "h.1.ln_1.weight", "h.1.ln_1.bias",
    ]);
    expect(names.at(-1)).toBe("ln_f.bias");
    expect(names).toHaveLength(2 * 8 + 2);
    expect(m.parameters()).toHaveLength(18);
    const sd = m.stateDict();
    expect(sd.get("h.1.attn.c_attn.weight")!.shape).toEqual([4, 12]); // Conv1D: [in, out]
    expect(sd.has("_notAParam")).toBe(false);
    m._notAParam.dispose();
    m.dispose();
  });

  it("a tied parameter is one parameter under two names; stateDict keeps both names", () => {
    class Tied extends Module {
      wte = new Linear(3, 5, { bias: false });
      lm_head = new Linear(5, 3, { bias: false, layout: "in_out" });
      constructor() {
        super();
        this.lm_head.weight.dispose();
        this.lm_head.weight = this.wte.weight; // [5, 3] both ways
      }
    }
    const m = new Tied();
    expect(m.namedParameters().map(([k]) => k)).toEqual(["wte.weight"]);
    expect(m.parameters()).toHaveLength(1);
    expect([...m.stateDict().keys()]).toEqual(["wte.weight", "lm_head.weight"]);
    expect(m.loadStateDict(m.stateDict())).toEqual({ missing: [], unexpected: [] });
    m.requiresGrad(false);
    expect(m.lm_head.weight).toBe(m.wte.weight); // still tied
    expect(m.wte.weight.requiresGrad).toBe(false);
    m.dispose();
  });

  it("train() / eval() reach every module", () => {
    const m = new Tiny();
    expect(m.training).toBe(true);
    m.eval();
    expect(m.modules().every((x) => !x.training)).toBe(true);
    expect(m.h[1]!.drop.training).toBe(false);
    m.train();
    expect(m.modules().every((x) => x.training)).toBe(true);
    m._notAParam.dispose();
    m.dispose();
  });

  it("loadStateDict copies values in place; stateDict round-trips", async () => {
    const a = new Tiny(4, 2, 1);
    const b = new Tiny(4, 2, 2);
    const before = b.parameters()[2]!.value;
    expect(await arr(a.parameters()[2]!.value)).not.toEqual(await arr(before));
    expect(b.loadStateDict(a.stateDict())).toEqual({ missing: [], unexpected: [] });
    expect(b.parameters()[2]!.value).toBe(before); // same tensor, new values
    for (const [k, t] of a.stateDict()) expect(await arr(b.stateDict().get(k)!)).toEqual(await arr(t));
    for (const m of [a, b]) {
      m._notAParam.dispose();
      m.dispose();
    }
  });

  it("loadStateDict lists every missing, unexpected and mis-shaped key in one error", () => {
    const m = new Tiny();
    const sd = new Map(m.stateDict());
    sd.delete("h.0.ln_1.bias");
    sd.delete("ln_f.weight");
    const extra = tensor([1, 2, 3, 4]);
    const bad = tensor(new Float32Array(4 * 4), [4, 4]);
    sd.set("lm_head.weight", extra);
    sd.set("h.1.attn.c_attn.weight", bad);
    let err: unknown;
    try {
      m.loadStateDict(sd);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StateDictError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/^loadStateDict: expected the keys and shapes of Tiny/);
    expect(msg).toContain("missing keys: h.0.ln_1.bias, ln_f.weight");
    expect(msg).toContain("unexpected keys: lm_head.weight");
    expect(msg).toContain("mis-shaped keys: h.1.attn.c_attn.weight (expected [4, 12] f32, got [4, 4] f32)");
    const e = err as StateDictError;
    expect([e.missing, e.unexpected, e.mismatched.length]).toEqual([["h.0.ln_1.bias", "ln_f.weight"], ["lm_head.weight"], 1]);
    // non-strict: missing / unexpected are returned, mis-shaped still throws
    expect(() => m.loadStateDict(sd, { strict: false })).toThrow(/mis-shaped keys: h\.1\.attn\.c_attn\.weight/);
    sd.delete("h.1.attn.c_attn.weight");
    expect(m.loadStateDict(sd, { strict: false })).toEqual({
      missing: ["h.0.ln_1.bias", "h.1.attn.c_attn.weight", "ln_f.weight"],
      unexpected: ["lm_head.weight"],
    });
    extra.dispose();
    bad.dispose();
    m._notAParam.dispose();
    m.dispose();
  });

  it("requiresGrad(false) freezes a subtree: same tensors, kept in stateDict, no gradient", async () => {
    const m = new Tiny();
    const w = m.h[0]!.attn.c_attn.weight.value;
    m.h[0]!.requiresGrad(false);
    expect(m.h[0]!.attn.c_attn.weight.value).toBe(w);
    expect(m.h[0]!.parameters().every((p) => !p.requiresGrad)).toBe(true);
    expect(m.h[1]!.parameters().every((p) => p.requiresGrad)).toBe(true);
    expect(m.stateDict().size).toBe(18);
    tidy(() => {
      const x = tensor(randnArray(2 * 4, 1), [2, 4]);
      const y = m.h[1]!.attn.c_attn.forward(m.h[0]!.attn.c_proj.forward(x));
      backward(ag.sum(y));
    });
    expect(m.h[0]!.attn.c_proj.weight.grad).toBeNull();
    expect(m.h[1]!.attn.c_attn.weight.grad).not.toBeNull();
    m.requiresGrad(true);
    expect(m.parameters().every((p) => p.requiresGrad)).toBe(true);
    expect(m.h[0]!.attn.c_attn.weight.value).toBe(w);
    m._notAParam.dispose();
    m.dispose();
  });
});

describe("layers", () => {
  it("init like GPT-2: N(0, 0.02²) weights from a seed, zero bias, LayerNorm ones/zeros", async () => {
    const l = new Linear(64, 32, { seed: 7 });
    const w = await arr(l.weight.value);
    const mean = w.reduce((a, b) => a + b, 0) / w.length;
    const std = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / w.length);
    expect(Math.abs(mean)).toBeLessThan(0.002);
    expect(std).toBeGreaterThan(0.019);
    expect(std).toBeLessThan(0.021);
    expect(await arr(l.bias!.value)).toEqual(new Array(32).fill(0));
    const same = new Linear(64, 32, { seed: 7 });
    const other = new Linear(64, 32, { seed: 8 });
    expect(await arr(same.weight.value)).toEqual(w);
    expect(await arr(other.weight.value)).not.toEqual(w);
    const ln = new LayerNorm(5);
    expect(await arr(ln.weight.value)).toEqual([1, 1, 1, 1, 1]);
    expect(await arr(ln.bias.value)).toEqual([0, 0, 0, 0, 0]);
    expect(new Linear(3, 2, { bias: false }).bias).toBeNull();
    for (const m of [l, same, other, ln]) m.dispose();
  });

  for (const layout of ["out_in", "in_out"] as const) {
    it(`Linear ${layout}: forward vs the float64 matmul reference, gradients vs finite differences`, async () => {
      const [I, O] = [5, 3];
      const wShape = layout === "out_in" ? [O, I] : [I, O];
      const lin = new Linear(I, O, { layout, seed: 3 });
      expect(lin.weight.shape).toEqual(wShape);
      const xh = randnArray(2 * 4 * I, 11);
      const bh = randnArray(O, 12);
      lin.bias!.value.write(bh);
      const y = tidy(() => lin.forward(tensor(xh, [2, 4, I])).value.keep());
      const wh = await lin.weight.value.toArray();
      const want = matmulRef(xh, [2, 4, I], wh, wShape, { transB: layout === "out_in" }).map((v, i) => v + bh[i % O]!);
      const got = await arr(y);
      got.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-5 + 1e-5 * Math.abs(want[i]!)));
      y.dispose();
      lin.dispose();
      await gradCheck({
        name: `Linear ${layout}`,
        shapes: [[2, 4, I], wShape, [O]],
        gpu: ([x, w, b]) => {
          const l = new Linear(I, O, { layout });
          l.dispose();
          l.weight = w!;
          l.bias = b!;
          return l.forward(x!);
        },
        ref: ([x, w, b]) => matmulRef(x!, [2, 4, I], w!, wShape, { transB: layout === "out_in" }).map((v, i) => v + b![i % O]!),
        tol: { abs: 5e-4, rel: 2e-3 },
      });
    });
  }

  it("LayerNorm matches the float64 reference", async () => {
    const ln = new LayerNorm(8);
    ln.weight.value.write(randnArray(8, 1));
    ln.bias.value.write(randnArray(8, 2));
    const xh = randnArray(3 * 8, 3);
    const y = tidy(() => ln.forward(tensor(xh, [3, 8])).value.keep());
    const want = layerNormRef(xh, [3, 8], await ln.weight.value.toArray(), await ln.bias.value.toArray());
    (await arr(y)).forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-4));
    y.dispose();
    ln.dispose();
  });

  it("Dropout: drop rate and 1/(1-p) scaling, seeded, gradient through the mask, identity in eval", async () => {
    const p = 0.25;
    const n = 20000;
    const x = new Var(tensor(new Float32Array(n).fill(2)).keep(), true);
    const d = new Dropout(p, 42);
    const out = tidy(() => {
      const o = d.forward(x);
      backward(ag.sum(o));
      return o.value.keep();
    });
    const y = await arr(out);
    out.dispose();
    expect(y).toHaveLength(n);
    const zeros = y.filter((v) => v === 0).length;
    expect(Math.abs(zeros / n - p)).toBeLessThan(0.015); // 5σ of a binomial(20000, 0.25) rate is 0.015
    expect(y.every((v) => v === 0 || Math.abs(v - 2 / (1 - p)) < 1e-6)).toBe(true);
    expect(Math.abs(y.reduce((a, b) => a + b, 0) / n - 2)).toBeLessThan(0.06); // mean preserved
    const g = await arr(x.grad!); // d Σ(x·mask) / dx = mask
    g.forEach((v, i) => expect(v).toBeCloseTo(y[i]! / 2, 6));
    // same seed, same stream of masks; a fresh mask each call
    const a = new Dropout(p, 9);
    const b = new Dropout(p, 9);
    const m1 = a.mask(64);
    expect(Array.from(b.mask(64))).toEqual(Array.from(m1));
    expect(Array.from(a.mask(64))).not.toEqual(Array.from(m1));
    // eval: identity (the same Var, no mask)
    d.eval();
    expect(d.forward(x)).toBe(x);
    expect(new Dropout(0).forward(x)).toBe(x);
    expect(() => new Dropout(1)).toThrow(/p in \[0, 1\)/);
    x.dispose();
  });

  it("Embedding: rows of the weight by id, gradient scatter-added over repeated ids", async () => {
    const e = new Embedding(5, 3, { seed: 4 });
    const ids = tensor([1, 4, 1, 0], [2, 2], "i32");
    const y = tidy(() => {
      const out = e.forward(ids);
      backward(ag.sum(out));
      return out.value.keep();
    });
    expect(y.shape).toEqual([2, 2, 3]);
    const w = await arr(e.weight.value);
    expect(await arr(y)).toEqual([1, 4, 1, 0].flatMap((i) => w.slice(3 * i, 3 * i + 3)));
    expect(await arr(e.weight.grad!)).toEqual([1, 1, 1, 2, 2, 2, 0, 0, 0, 0, 0, 0, 1, 1, 1]);
    y.dispose();
    ids.dispose();
    e.dispose();
  });

  it("GELU modules wrap the tape's activations", async () => {
    const xh = randnArray(6, 5);
    const x = tensor(xh);
    const a = tidy(() => new GELU().forward(x).value.keep());
    const b = tidy(() => ag.gelu(new Var(x)).value.keep());
    expect(await arr(a)).toEqual(await arr(b));
    const q = tidy(() => new GELU("quick").forward(x).value.keep());
    const want = Array.from(xh, (v) => v / (1 + Math.exp(-1.702 * v)));
    (await arr(q)).forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-5));
    q.dispose();
    for (const t of [a, b, x]) t.dispose();
  });
});

describe("skipInit", () => {
  it("builds the same parameters as zeros, without drawing, and restores normal init after", async () => {
    const { skipInit, initParam } = await import("../src/index.js");
    const skipped = skipInit(() => [new Linear(5, 3), new LayerNorm(4), new Embedding(6, 2), initParam([3], { std: 1 })] as const);
    const [lin, ln, emb, p] = skipped;
    expect(lin.weight.shape).toEqual([3, 5]);
    for (const v of [lin.weight, lin.bias!, ln.weight, ln.bias, emb.weight, p]) expect(Array.from(await v.value.toArray()).every((x) => x === 0)).toBe(true);
    const after = new Linear(5, 3, { seed: 1 });
    expect(Array.from(await after.weight.value.toArray()).some((x) => x !== 0)).toBe(true);
    expect(Array.from(await new LayerNorm(4).weight.value.toArray())).toEqual([1, 1, 1, 1]);
    for (const m of [lin, ln, emb]) for (const v of m.parameters()) v.dispose();
    p.dispose();
    for (const v of after.parameters()) v.dispose();
  });
});
