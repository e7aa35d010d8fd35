// The composite check: a 2-block GPT-2 (token + position embedding, pre-LN attention and GELU
// MLP, final layernorm, LM head tied to wte, cross-entropy with an ignored target) built from
// the tape's ops; every parameter's gradient against central differences of a float64
// forward written here from the math alone. Then the same model trained for 500 steps with
// AdamW and clipping: live GPU bytes stay flat, command buffers per step stay bounded, and
// the steady loop creates no new bind groups.
import { device, randnArray, tensor, tidy } from "@llms-eye/tensor";
import { beforeAll, expect, it } from "vitest";
import { AdamW, Var, ag, backward, clipGradNorm } from "../src/index.js";
import { ready } from "./gradcheck.js";

const [B, T, C, H, V, L] = [2, 4, 8, 2, 11, 2]; // batch, time, channels, heads, vocab, layers
const D = C / H;
const ids = [3, 1, 4, 1, 5, 9, 2, 6];
const targets = [1, 4, 1, 5, 9, 2, 6, -100];

beforeAll(async () => {
  await ready;
});

type P = Record<string, { shape: number[]; data: Float64Array }>;
function makeParams(): P {
  const p: P = {};
  let seed = 1;
  const add = (name: string, shape: number[], std = 0.4, base = 0) => {
    const n = shape.reduce((a, b) => a * b, 1);
    p[name] = { shape, data: Float64Array.from(randnArray(n, seed++, std), (v) => base + v) };
  };
  add("wte", [V, C]);
  add("wpe", [T, C]);
  for (let l = 0; l < L; l++) {
    add(`h.${l}.ln_1.weight`, [C], 0.1, 1);
    add(`h.${l}.ln_1.bias`, [C], 0.1);
    add(`h.${l}.attn.c_attn.weight`, [C, 3 * C]);
    add(`h.${l}.attn.c_attn.bias`, [3 * C], 0.1);
    add(`h.${l}.attn.c_proj.weight`, [C, C]);
    add(`h.${l}.attn.c_proj.bias`, [C], 0.1);
    add(`h.${l}.ln_2.weight`, [C], 0.1, 1);
    add(`h.${l}.ln_2.bias`, [C], 0.1);
    add(`h.${l}.mlp.c_fc.weight`, [C, 4 * C]);
    add(`h.${l}.mlp.c_fc.bias`, [4 * C], 0.1);
    add(`h.${l}.mlp.c_proj.weight`, [4 * C, C]);
    add(`h.${l}.mlp.c_proj.bias`, [C], 0.1);
  }
  add("ln_f.weight", [C], 0.1, 1);
  add("ln_f.bias", [C], 0.1);
  // round to f32 so both sides see the same values
  for (const v of Object.values(p)) v.data = Float64Array.from(Float32Array.from(v.data));
  return p;
}

// ---- float64 forward -------------------------------------------------------------------
const R = B * T;
function ln(x: Float64Array, w: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / C; r++) {
    const row = x.subarray(r * C, (r + 1) * C);
    const mean = row.reduce((a, v) => a + v, 0) / C;
    const vr = row.reduce((a, v) => a + (v - mean) ** 2, 0) / C;
    const rstd = 1 / Math.sqrt(vr + 1e-5);
    for (let c = 0; c < C; c++) out[r * C + c] = (row[c]! - mean) * rstd * w[c]! + b[c]!;
  }
  return out;
}
function mm(a: Float64Array, w: Float64Array, bias: Float64Array | null, k: number, n: number): Float64Array {
  const m = a.length / k;
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = bias ? bias[j]! : 0;
      for (let q = 0; q < k; q++) s += a[i * k + q]! * w[q * n + j]!;
      out[i * n + j] = s;
    }
  return out;
}
const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

function loss64(p: P): number {
  const g = (n: string) => p[n]!.data;
  let x = new Float64Array(R * C);
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) x[r * C + c] = g("wte")[ids[r]! * C + c]! + g("wpe")[(r % T) * C + c]!;
  for (let l = 0; l < L; l++) {
    const pre = `h.${l}.`;
    const qkv = mm(ln(x, g(pre + "ln_1.weight"), g(pre + "ln_1.bias")), g(pre + "attn.c_attn.weight"), g(pre + "attn.c_attn.bias"), C, 3 * C);
    const y = new Float64Array(R * C);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++)
        for (let t = 0; t < T; t++) {
          const at = (tt: number, part: number, d: number) => qkv[(b * T + tt) * 3 * C + part * C + h * D + d]!;
          const s = Array.from({ length: t + 1 }, (_, j) => {
            let dot = 0;
            for (let d = 0; d < D; d++) dot += at(t, 0, d) * at(j, 1, d);
            return dot / Math.sqrt(D);
          });
          const mx = Math.max(...s);
          const e = s.map((v) => Math.exp(v - mx));
          const z = e.reduce((a, v) => a + v, 0);
          for (let d = 0; d < D; d++) y[(b * T + t) * C + h * D + d] = e.reduce((a, ei, j) => a + (ei / z) * at(j, 2, d), 0);
        }
    const x1 = mm(y, g(pre + "attn.c_proj.weight"), g(pre + "attn.c_proj.bias"), C, C).map((v, i) => v + x[i]!);
    const hid = mm(ln(x1, g(pre + "ln_2.weight"), g(pre + "ln_2.bias")), g(pre + "mlp.c_fc.weight"), g(pre + "mlp.c_fc.bias"), C, 4 * C).map(gelu);
    x = mm(hid, g(pre + "mlp.c_proj.weight"), g(pre + "mlp.c_proj.bias"), 4 * C, C).map((v, i) => v + x1[i]!);
  }
  const xf = ln(x, g("ln_f.weight"), g("ln_f.bias"));
  let total = 0;
  let count = 0;
  for (let r = 0; r < R; r++) {
    if (targets[r] === -100) continue;
    const logits = Array.from({ length: V }, (_, v) => {
      let s = 0;
      for (let c = 0; c < C; c++) s += xf[r * C + c]! * g("wte")[v * C + c]!;
      return s;
    });
    const mx = Math.max(...logits);
    total += Math.log(logits.reduce((a, v) => a + Math.exp(v - mx), 0)) + mx - logits[targets[r]!]!;
    count++;
  }
  return total / count;
}

// ---- the same model on the tape ----------------------------------------------------------
function lossTape(w: Record<string, Var>, idsT: ReturnType<typeof tensor>, tgt: ReturnType<typeof tensor>): Var {
  let x = ag.add(ag.embedding(w.wte!, idsT), w.wpe!); // (B, T, C)
  for (let l = 0; l < L; l++) {
    const v = (n: string) => w[`h.${l}.${n}`]!;
    const qkv = ag.add(ag.matmul(ag.layerNorm(x, v("ln_1.weight"), v("ln_1.bias")), v("attn.c_attn.weight")), v("attn.c_attn.bias")); // (B, T, 3C)
    const heads = ag.permute(ag.reshape(qkv, [B, T, 3, H, D]), [2, 0, 3, 1, 4]); // (3, B, H, T, D)
    const [q, k, vv] = [0, 1, 2].map((i) => ag.reshape(ag.slice(heads, [i], [i + 1]), [B, H, T, D]));
    const y = ag.reshape(ag.permute(ag.attention(q!, k!, vv!, { causal: true }), [0, 2, 1, 3]), [B, T, C]);
    const x1 = ag.add(x, ag.add(ag.matmul(y, v("attn.c_proj.weight")), v("attn.c_proj.bias")));
    const hid = ag.gelu(ag.add(ag.matmul(ag.layerNorm(x1, v("ln_2.weight"), v("ln_2.bias")), v("mlp.c_fc.weight")), v("mlp.c_fc.bias")));
    x = ag.add(x1, ag.add(ag.matmul(hid, v("mlp.c_proj.weight")), v("mlp.c_proj.bias")));
  }
  const xf = ag.reshape(ag.layerNorm(x, w["ln_f.weight"]!, w["ln_f.bias"]!), [R, C]);
  const logits = ag.matmul(xf, w.wte!, { transB: true }); // tied LM head (R, V)
  return ag.crossEntropy(logits, tgt);
}

it("every parameter's gradient of a 2-block GPT-2 matches central differences", async () => {
  const p = makeParams();
  const w = Object.fromEntries(Object.entries(p).map(([n, v]) => [n, new Var(tensor(Float32Array.from(v.data), v.shape).keep(), true)]));
  const idsT = tensor(ids, [B, T], "i32");
  const tgt = tensor(targets, [R], "i32");
  const loss = lossTape(w, idsT, tgt);
  expect(Math.abs((await loss.value.item()) - loss64(p))).toBeLessThan(1e-4);
  backward(loss);
  const failures: string[] = [];
  for (const [name, v] of Object.entries(p)) {
    const got = await w[name]!.grad!.toArray();
    for (let i = 0; i < v.data.length; i++) {
      const keep = v.data[i]!;
      const h = 1e-5;
      v.data[i] = keep + h;
      const up = loss64(p);
      v.data[i] = keep - h;
      const down = loss64(p);
      v.data[i] = keep;
      const want = (up - down) / (2 * h);
      if (Math.abs(got[i]! - want) > 2e-4 + 5e-3 * Math.abs(want)) failures.push(`${name}[${i}] got ${got[i]} want ${want}`);
    }
  }
  expect(failures.slice(0, 5), `${failures.length} gradient mismatches`).toEqual([]);
  for (const v of Object.values(w)) v.dispose();
  idsT.dispose();
  tgt.dispose();
});

it("500 training steps keep live GPU bytes flat and submit a bounded number of command buffers", async () => {
  const p = makeParams();
  const w = Object.fromEntries(Object.entries(p).map(([n, v]) => [n, new Var(tensor(Float32Array.from(v.data), v.shape).keep(), true)]));
  const params = Object.values(w);
  const opt = new AdamW(params, { lr: 3e-3, weightDecay: 0.01 });
  // two batches, uploaded afresh every step as a data loader would
  const batches = [
    { ids, targets },
    { ids: [...ids].reverse(), targets: [...targets.slice(0, -1)].reverse().concat([-100]) },
  ];
  const lossOf = async (b: (typeof batches)[number]): Promise<number> => {
    const l = tidy(() => lossTape(w, tensor(b.ids, [B, T], "i32"), tensor(b.targets, [R], "i32")).value);
    const v = await l.item();
    l.dispose();
    return v;
  };
  const step = (i: number): void => {
    const b = batches[i % 2]!;
    tidy(() => {
      backward(lossTape(w, tensor(b.ids, [B, T], "i32"), tensor(b.targets, [R], "i32")));
      clipGradNorm(params, 1.0).dispose();
      opt.step();
    });
    opt.zeroGrad();
  };
  for (let i = 0; i < 10; i++) step(i); // optimizer moments and pooled buffers settle
  const startLoss = [await lossOf(batches[0]!), await lossOf(batches[1]!)];
  const start = device().stats();
  const live: number[] = [];
  for (let i = 0; i < 500; i++) {
    step(i);
    if (i % 50 === 49) live.push(device().stats().liveBytes);
  }
  await device().sync();
  const end = device().stats();
  expect(new Set(live).size, `live bytes every 50 steps: ${live.join(", ")}`).toBe(1);
  expect(end.liveBytes).toBe(start.liveBytes);
  expect(end.liveBuffers).toBe(start.liveBuffers);
  expect(end.pooledBuffers).toBeLessThanOrEqual(start.pooledBuffers + 8);
  const dispatchesPerStep = (end.dispatches - start.dispatches) / 500;
  const submitsPerStep = (end.submits - start.submits) / 500;
  expect(dispatchesPerStep).toBeGreaterThan(200); // the whole step ran on the GPU
  expect(submitsPerStep, "command buffers per step").toBeLessThanOrEqual(Math.ceil(dispatchesPerStep / device().recorder.maxDispatches) + 1);
  // uploads take buffers by batch, so a few bind groups may be new; the step's own ops are not
  expect((end.bindGroups - start.bindGroups) / 500, "new bind groups per step").toBeLessThan(10);
  const endLoss = [await lossOf(batches[0]!), await lossOf(batches[1]!)];
  expect(endLoss[0]!).toBeLessThan(startLoss[0]! * 0.25);
  expect(endLoss[1]!).toBeLessThan(startLoss[1]! * 0.25);
  opt.dispose();
  for (const v of params) v.dispose();
}, 120_000);
