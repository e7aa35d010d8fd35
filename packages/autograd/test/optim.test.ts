import { clone, device, randnArray, tensor, tidy, type Tensor } from "@llms-eye/tensor";
import { beforeAll, describe, expect, it } from "vitest";
import {
  AdamW, LayerNorm, Linear, Module, SGD, Var, ag, backward, clipCoef, clipGradNorm, decayGroups, gradNorm, lrAt, lrFactor, optimizerStateFromHost,
  optimizerStateToHost, param,
} from "../src/index.js";
import { ready } from "./gradcheck.js";

beforeAll(async () => {
  await ready;
});

const arr = async (t: Tensor): Promise<number[]> => Array.from(await t.toArray());
const close = (got: number[], want: ArrayLike<number>, abs: number, rel: number, what: string): void => {
  got.forEach((v, i) => {
    const w = want[i]!;
    if (!(Math.abs(v - w) <= abs + rel * Math.abs(w))) expect.fail(`${what}[${i}]: got ${v}, want ${w}`);
  });
};

/** loss = Σ c·p²  →  grad = 2·c·p (the same function in float64 below). */
const quadLoss = (p: Var, c: Tensor): Var => ag.sum(ag.mul(ag.mul(p, p), c));

describe("AdamW", () => {
  it("matches torch.optim.AdamW's update computed by hand in float64 (decay, bias correction, eps outside the sqrt)", async () => {
    const hp = { lr: 0.05, beta1: 0.8, beta2: 0.95, eps: 1e-2, weightDecay: 0.3 };
    const shapes = [[5], [3, 2]];
    const p0 = shapes.map((s, i) => Array.from(randnArray(s.reduce((a, b) => a * b, 1), 100 + i)));
    const c = shapes.map((s, i) => Array.from(randnArray(s.reduce((a, b) => a * b, 1), 200 + i), (x) => 0.05 * x)); // small grads: eps matters
    const ps = p0.map((h, i) => param(tensor(h, shapes[i]!)));
    const cs = c.map((h, i) => tensor(h, shapes[i]!).keep());
    const opt = new AdamW(ps, hp);
    // by hand, float64, torch's formulas (torch/optim/adamw.py, single-tensor path)
    const ref = p0.map((h) => ({ p: [...h], m: h.map(() => 0), v: h.map(() => 0) }));
    for (let t = 1; t <= 6; t++) {
      tidy(() => ps.forEach((p, i) => backward(quadLoss(p, cs[i]!))));
      opt.step();
      opt.zeroGrad();
      ref.forEach((r, i) => {
        const bc1 = 1 - hp.beta1 ** t;
        const bc2 = 1 - hp.beta2 ** t;
        for (let j = 0; j < r.p.length; j++) {
          const g = 2 * c[i]![j]! * r.p[j]!;
          r.p[j] = r.p[j]! * (1 - hp.lr * hp.weightDecay); // param.mul_(1 - lr * weight_decay)
          r.m[j] = hp.beta1 * r.m[j]! + (1 - hp.beta1) * g; // exp_avg.lerp_(grad, 1 - beta1)
          r.v[j] = hp.beta2 * r.v[j]! + (1 - hp.beta2) * g * g; // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2)
          const denom = Math.sqrt(r.v[j]!) / Math.sqrt(bc2) + hp.eps; // (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
          r.p[j] = r.p[j]! - (hp.lr / bc1) * (r.m[j]! / denom); // param.addcdiv_(exp_avg, denom, value=-lr / bias_correction1)
        }
      });
    }
    for (let i = 0; i < ps.length; i++) close(await arr(ps[i]!.value), ref[i]!.p, 1e-6, 1e-5, `param ${i}`);
    const sd = opt.stateDict();
    expect(sd.state.get(1)!.step).toBe(6);
    close(await arr(sd.state.get(0)!.tensors.m!), ref[0]!.m, 1e-7, 1e-5, "m");
    close(await arr(sd.state.get(0)!.tensors.v!), ref[0]!.v, 1e-9, 1e-5, "v");
    for (const s of sd.state.values()) for (const t of Object.values(s.tensors)) t.dispose();
    opt.dispose();
    for (const p of ps) p.dispose();
    for (const t of cs) t.dispose();
  });

  it("parameter groups: per-group weight decay and lr; decayGroups keeps biases and LayerNorm out of decay", async () => {
    const a = param(tensor([1, 2, 3]));
    const b = param(tensor([4, 5]));
    const opt = new AdamW([{ params: [a], weightDecay: 0.5 }, { params: [b], weightDecay: 0, lr: 0.5 }], { lr: 0.1 });
    expect(opt.groups.map((g) => [g.lr, g.weightDecay, g.initialLr])).toEqual([[0.1, 0.5, 0.1], [0.5, 0, 0.5]]);
    // zero gradients: the Adam term is 0 / (0 + eps) = 0, only the decoupled decay acts
    a.grad = tensor([0, 0, 0]).keep();
    b.grad = tensor([0, 0]).keep();
    opt.step();
    close(await arr(a.value), [0.95, 1.9, 2.85], 1e-7, 1e-7, "a");
    expect(await arr(b.value)).toEqual([4, 5]);
    // a schedule factor scales each group's own lr
    opt.setLrFactor(0.5);
    expect(opt.groups.map((g) => g.lr)).toEqual([0.05, 0.25]);
    expect(() => new AdamW([{ params: [a] }, { params: [a] }])).toThrow(/each parameter in one group/);
    opt.dispose();
    a.dispose();
    b.dispose();

    class M extends Module {
      fc = new Linear(3, 4, { layout: "in_out" });
      ln = new LayerNorm(4);
    }
    const m = new M();
    const [decay, noDecay] = decayGroups(m.namedParameters(), 0.1, { lr: 3e-4 });
    expect(decay!.params).toEqual([m.fc.weight]);
    expect(noDecay!.params).toEqual([m.fc.bias, m.ln.weight, m.ln.bias]);
    expect([decay!.weightDecay, noDecay!.weightDecay, noDecay!.lr]).toEqual([0.1, 0, 3e-4]);
    m.dispose();
  });

  it("skips parameters without a gradient (their step count does not advance)", async () => {
    const a = param(tensor([1, 2]));
    const b = param(tensor([3]));
    const opt = new AdamW([a, b], { lr: 0.1, weightDecay: 0 });
    a.grad = tensor([1, -1]).keep();
    opt.step();
    expect(await arr(b.value)).toEqual([3]);
    const sd = opt.stateDict();
    expect([...sd.state.keys()]).toEqual([0]);
    close(await arr(a.value), [0.9, 2.1], 1e-6, 1e-6, "a"); // first Adam step moves by lr·sign(g)
    for (const s of sd.state.values()) for (const t of Object.values(s.tensors)) t.dispose();
    opt.dispose();
    a.dispose();
    b.dispose();
  });
});

describe("step({ gradScale })", () => {
  it("accumulated gradients stepped with gradScale 1/M equal the averaged gradient", async () => {
    const h = Array.from(randnArray(9, 8));
    const c = tensor(randnArray(9, 9)).keep();
    const [a, b] = [param(tensor(h)), param(tensor(h))];
    const [oa, ob] = [new AdamW([a], { lr: 0.01 }), new AdamW([b], { lr: 0.01 })];
    tidy(() => {
      for (let i = 0; i < 3; i++) backward(quadLoss(a, c)); // 3 micro-batches, unscaled
      backward(quadLoss(b, c));
    });
    oa.step({ gradScale: 1 / 3 });
    ob.step();
    close(await arr(a.value), await arr(b.value), 1e-7, 1e-6, "param");
    for (const x of [oa, ob, a, b, c]) x.dispose();
  });
});

describe("SGD", () => {
  it("momentum and weight decay match torch.optim.SGD computed by hand", async () => {
    const hp = { lr: 0.1, momentum: 0.9, weightDecay: 0.01, dampening: 0.1 };
    const h0 = Array.from(randnArray(7, 5));
    const ch = Array.from(randnArray(7, 6));
    const p = param(tensor(h0));
    const c = tensor(ch).keep();
    const opt = new SGD([p], hp);
    const ref = { p: [...h0], buf: h0.map(() => 0) };
    for (let t = 1; t <= 4; t++) {
      tidy(() => backward(quadLoss(p, c)));
      opt.step();
      opt.zeroGrad();
      for (let j = 0; j < 7; j++) {
        const d = 2 * ch[j]! * ref.p[j]! + hp.weightDecay * ref.p[j]!;
        ref.buf[j] = t === 1 ? d : hp.momentum * ref.buf[j]! + (1 - hp.dampening) * d;
        ref.p[j] = ref.p[j]! - hp.lr * ref.buf[j]!;
      }
    }
    close(await arr(p.value), ref.p, 1e-5, 1e-5, "sgd param");
    opt.dispose();
    p.dispose();
    c.dispose();
  });

  it("plain SGD (no momentum buffer) and nesterov", async () => {
    const a = param(tensor([1, -2]));
    const b = param(tensor([1, -2]));
    const plain = new SGD([a], { lr: 0.5, weightDecay: 0.1 });
    const nest = new SGD([b], { lr: 0.5, momentum: 0.5, nesterov: true });
    for (let t = 0; t < 2; t++) {
      a.grad = tensor([0.5, 1]).keep();
      b.grad = tensor([0.5, 1]).keep();
      plain.step();
      nest.step();
      plain.zeroGrad();
      nest.zeroGrad();
    }
    // plain: p ← p − 0.5(g + 0.1p), twice
    const want = [1, -2].map((p0, i) => {
      let p = p0;
      for (let t = 0; t < 2; t++) p -= 0.5 * ([0.5, 1][i]! + 0.1 * p);
      return p;
    });
    close(await arr(a.value), want, 1e-6, 1e-6, "plain");
    // nesterov: buf₁ = g, step g + 0.5g; buf₂ = 0.5g + g, step g + 0.5·1.5g
    close(await arr(b.value), [0.5, 1].map((g, i) => [1, -2][i]! - 0.5 * (1.5 * g) - 0.5 * (1.75 * g)), 1e-6, 1e-6, "nesterov");
    for (const x of [plain, nest, a, b]) x.dispose();
  });
});

describe("clipGradNorm", () => {
  it("scales every gradient by min(1, maxNorm / (norm + 1e-6)) on the GPU and returns the norm", async () => {
    const a = param(tensor([3, 0], [1, 2]));
    const b = param(tensor([4, 0, 12]));
    const frozen = param(tensor([100])); // no grad: ignored
    a.grad = tensor([3, 0], [1, 2]).keep();
    b.grad = tensor([4, 0, 12]).keep();
    const n1 = clipGradNorm([a, b, frozen], 100);
    expect(await n1.item()).toBeCloseTo(13, 5);
    expect(await arr(a.grad)).toEqual([3, 0]); // coef clamped to 1
    const n2 = clipGradNorm([a, b, frozen], 6.5);
    expect(await n2.item()).toBeCloseTo(13, 5);
    close(await arr(a.grad), [1.5, 0], 1e-6, 1e-6, "a.grad");
    close(await arr(b.grad), [2, 0, 6], 1e-6, 1e-6, "b.grad");
    expect(a.grad.shape).toEqual([1, 2]);
    expect(() => clipGradNorm([frozen], 1)).toThrow(/at least one parameter with a gradient/);
    // the host-side form: the norm alone, and the coefficient for step({ gradScale })
    const n3 = gradNorm([a, b, frozen]);
    expect(await n3.item()).toBeCloseTo(6.5, 5);
    expect(clipCoef(13, 6.5)).toBeCloseTo(0.5, 6);
    expect(clipCoef(13, 100)).toBe(1);
    expect(() => clipCoef(13, 0)).toThrow(/clipCoef: expected maxNorm > 0, got 0/);
    expect(() => gradNorm([frozen])).toThrow(/at least one parameter with a gradient/);
    for (const t of [n1, n2, n3]) t.dispose();
    for (const p of [a, b, frozen]) p.dispose();
  });
});

describe("schedules", () => {
  it("linear warmup, then cosine or linear decay to minRatio", () => {
    const s = { warmupSteps: 10, totalSteps: 110 };
    for (const decay of ["cosine", "linear"] as const) {
      expect(lrAt(0, 0.5, { ...s, decay })).toBe(0); // warmup start
      expect(lrAt(5, 0.5, { ...s, decay })).toBe(0.25);
      expect(lrAt(10, 0.5, { ...s, decay })).toBe(0.5); // warmup end = peak
      expect(lrAt(110, 0.5, { ...s, decay })).toBeCloseTo(0, 12); // decay end
      expect(lrAt(500, 0.5, { ...s, decay })).toBeCloseTo(0, 12); // stays
      expect(lrFactor(110, { ...s, decay, minRatio: 0.1 })).toBeCloseTo(0.1, 12);
    }
    expect(lrFactor(60, { ...s, decay: "cosine" })).toBeCloseTo(0.5, 12); // half-way
    expect(lrFactor(35, { ...s, decay: "cosine" })).toBeCloseTo(0.5 * (1 + Math.cos(Math.PI / 4)), 12);
    expect(lrFactor(35, { ...s, decay: "linear" })).toBeCloseTo(0.75, 12);
    expect(lrFactor(60, { ...s, decay: "linear", minRatio: 0.2 })).toBeCloseTo(0.6, 12);
    expect(lrFactor(3, { warmupSteps: 0, totalSteps: 0, decay: "cosine" })).toBe(0);
    expect(lrFactor(50, { ...s, decay: "constant" })).toBe(1);
    expect(() => lrFactor(0, { warmupSteps: 5, totalSteps: 2, decay: "linear" })).toThrow(/warmupSteps/);
  });
});

class Net extends Module {
  fc1: Linear;
  ln: LayerNorm;
  fc2: Linear;
  constructor(seed: number) {
    super();
    this.fc1 = new Linear(6, 8, { seed, std: 0.5 });
    this.ln = new LayerNorm(8);
    this.fc2 = new Linear(8, 3, { seed: seed + 1, std: 0.5, layout: "in_out" });
  }
  forward(x: Tensor): Var {
    return this.fc2.forward(ag.gelu(this.ln.forward(this.fc1.forward(x))));
  }
}

describe("training loop", () => {
  const xs = [0, 1, 2, 3].map((i) => randnArray(4 * 6, 50 + i));
  const ys = [0, 1, 2, 3].map((i) => randnArray(4 * 3, 60 + i));
  const sched = { warmupSteps: 2, totalSteps: 8, decay: "cosine" as const, minRatio: 0.1 };

  /** One step: two micro-batches (loss scaled by 1/2), clip, schedule, AdamW. */
  const trainStep = (net: Net, opt: AdamW, step: number): void => {
    tidy(() => {
      for (let mb = 0; mb < 2; mb++) {
        const i = (2 * step + mb) % 4;
        const diff = ag.sub(net.forward(tensor(xs[i]!, [4, 6])), tensor(ys[i]!, [4, 3]));
        backward(ag.mul(ag.mean(ag.mul(diff, diff)), tensor([0.5])));
      }
      clipGradNorm(net.parameters(), 0.5);
      opt.setLrFactor(lrFactor(step + 1, sched));
      opt.step();
      opt.zeroGrad();
    });
  };
  const makeOpt = (net: Net): AdamW => new AdamW(decayGroups(net.namedParameters(), 0.1), { lr: 0.05 });

  it("a resumed run (model + optimizer state restored into fresh objects) continues bit-for-bit", async () => {
    const straight = new Net(1);
    const o1 = makeOpt(straight);
    for (let s = 0; s < 6; s++) trainStep(straight, o1, s);

    const first = new Net(1);
    const o2 = makeOpt(first);
    for (let s = 0; s < 3; s++) trainStep(first, o2, s);
    const modelSnap = new Map([...first.stateDict()].map(([k, t]) => [k, clone(t).keep()]));
    const gpuSnap = o2.stateDict();
    const host = await optimizerStateToHost(gpuSnap); // as a checkpoint file would hold it
    for (const st of gpuSnap.state.values()) for (const t of Object.values(st.tensors)) t.dispose();
    const optSnap = optimizerStateFromHost(host);
    o2.dispose();
    first.dispose();

    const resumed = new Net(99); // different init: everything must come from the snapshots
    resumed.loadStateDict(modelSnap);
    const o3 = makeOpt(resumed);
    o3.loadStateDict(optSnap);
    expect(o3.groups.map((g) => g.lr)).toEqual(optSnap.groups.map((g) => g.lr));
    for (let s = 3; s < 6; s++) trainStep(resumed, o3, s);

    const want = straight.stateDict();
    let moved = 0;
    for (const [k, t] of resumed.stateDict()) {
      const got = await arr(t);
      expect(got, k).toEqual(await arr(want.get(k)!));
      moved += got.length;
    }
    expect(moved).toBe(6 * 8 + 8 + 8 + 8 + 8 * 3 + 3);
    expect(host.state.map((x) => x.step)).toEqual([3, 3, 3, 3, 3, 3]);
    for (const t of modelSnap.values()) t.dispose();
    for (const s of optSnap.state.values()) for (const t of Object.values(s.tensors)) t.dispose();
    for (const [n, o] of [[straight, o1], [resumed, o3]] as const) {
      o.dispose();
      n.dispose();
    }
  });

  it("gradient accumulation: two half-batches with the loss scaled by 1/2 equal one full batch", async () => {
    const net = new Net(3);
    const x = randnArray(8 * 6, 70);
    const y = randnArray(8 * 3, 71);
    const lossOf = (xh: Float32Array, yh: Float32Array, rows: number, scale: number): Var => {
      const diff = ag.sub(net.forward(tensor(xh, [rows, 6])), tensor(yh, [rows, 3]));
      return ag.mul(ag.mean(ag.mul(diff, diff)), tensor([scale]));
    };
    tidy(() => backward(lossOf(x, y, 8, 1)));
    const full = await Promise.all(net.parameters().map((p) => arr(p.grad!)));
    net.zeroGrad();
    tidy(() => {
      backward(lossOf(x.subarray(0, 24), y.subarray(0, 12), 4, 0.5));
      backward(lossOf(x.subarray(24), y.subarray(12), 4, 0.5));
    });
    const acc = await Promise.all(net.parameters().map((p) => arr(p.grad!)));
    acc.forEach((g, i) => close(g, full[i]!, 1e-6, 1e-4, `grad ${i}`));
    net.dispose();
  });

  it("keeps live GPU bytes flat across steps", async () => {
    const net = new Net(5);
    const opt = makeOpt(net);
    trainStep(net, opt, 0); // creates the optimizer state
    await device().sync();
    const before = device().stats().liveBytes;
    for (let s = 1; s < 6; s++) trainStep(net, opt, s);
    await device().sync();
    expect(device().stats().liveBytes).toBe(before);
    opt.dispose();
    net.dispose();
  });
});
