// The built engine package used as a library: one pre-LN GPT-2 block (layernorm, fused
// QKV matmul, causal attention, projection, GELU MLP, residuals), a tied LM head and the
// cross-entropy loss, against a float64 reference written here from the math alone.
import { beforeAll, expect, it } from "vitest";
import {
  add, attention, crossEntropy, device, init, layerNorm, matmul, permute, randnArray, tensor, tidy, type Tensor,
} from "@llms-eye/tensor";

const [B, T, C, H, V] = [2, 7, 24, 3, 37]; // shape letters as llm.c: batch, time, channels, heads, vocab
const D = C / H;

beforeAll(async () => {
  await init();
});

type F = Float64Array;
const f64 = (a: Float32Array): F => Float64Array.from(a);

function lnRef(x: F, w: F, b: F, rows: number): F {
  const out = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let c = 0; c < C; c++) mean += x[r * C + c]!;
    mean /= C;
    let vr = 0;
    for (let c = 0; c < C; c++) vr += (x[r * C + c]! - mean) ** 2;
    const rstd = 1 / Math.sqrt(vr / C + 1e-5);
    for (let c = 0; c < C; c++) out[r * C + c] = (x[r * C + c]! - mean) * rstd * w[c]! + b[c]!;
  }
  return out;
}

function mmRef(a: F, w: F, bias: F | null, m: number, k: number, n: number, act = false): F {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = bias ? bias[j]! : 0;
      for (let p = 0; p < k; p++) s += a[i * k + p]! * w[p * n + j]!;
      out[i * n + j] = act ? 0.5 * s * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (s + 0.044715 * s ** 3))) : s;
    }
  return out;
}

it("a GPT-2 block + tied head + cross-entropy matches float64", async () => {
  const p = (n: number, seed: number, std = 0.3) => randnArray(n, seed, std);
  const w = {
    wte: p(V * C, 1), ln1w: p(C, 2, 0.1).map((v) => 1 + v), ln1b: p(C, 3, 0.1), attnW: p(C * 3 * C, 4), attnB: p(3 * C, 5, 0.1),
    projW: p(C * C, 6), projB: p(C, 7, 0.1), ln2w: p(C, 8, 0.1).map((v) => 1 + v), ln2b: p(C, 9, 0.1),
    fcW: p(C * 4 * C, 10), fcB: p(4 * C, 11, 0.1), fc2W: p(4 * C * C, 12), fc2B: p(C, 13, 0.1),
  };
  const x0 = p(B * T * C, 14, 1);
  const targets = Int32Array.from({ length: B * T }, (_, i) => (i * 7) % V);
  targets[3] = -100; // ignored position

  const live0 = device().stats().liveBytes;
  const g = Object.fromEntries(Object.entries(w).map(([k, v]) => [k, tensor(v)])) as Record<keyof typeof w, Tensor>;
  const { loss, logits } = tidy(() => {
    const x = tensor(x0, [B, T, C]);
    const qkv = matmul(layerNorm(x, g.ln1w, g.ln1b), g.attnW.reshape([C, 3 * C]), { bias: g.attnB }); // (B, T, 3C)
    const heads = permute(qkv.reshape([B, T, 3, H, D]), [2, 0, 3, 1, 4]); // (3, B, H, T, D)
    const [q, k, v] = [0, 1, 2].map((i) => heads.reshape([3, B * H * T * D]).rowsView(i, i + 1)!.reshape([B, H, T, D]));
    const y = permute(attention(q!, k!, v!, { causal: true }).out, [0, 2, 1, 3]).reshape([B, T, C]); // (B, T, C)
    const x1 = add(x, matmul(y, g.projW.reshape([C, C]), { bias: g.projB }));
    const hidden = matmul(layerNorm(x1, g.ln2w, g.ln2b), g.fcW.reshape([C, 4 * C]), { bias: g.fcB, activation: "gelu" });
    const x2 = add(x1, matmul(hidden, g.fc2W.reshape([4 * C, C]), { bias: g.fc2B })); // (B, T, C)
    const logits = matmul(x2.reshape([B * T, C]), g.wte.reshape([V, C]), { transB: true }); // (B*T, V)
    return { loss: crossEntropy(logits, tensor(targets, [B * T], "i32")).loss, logits };
  });

  // float64 reference
  const r = Object.fromEntries(Object.entries(w).map(([k, v]) => [k, f64(v)])) as Record<keyof typeof w, F>;
  const x = f64(x0);
  const qkv = mmRef(lnRef(x, r.ln1w, r.ln1b, B * T), r.attnW, r.attnB, B * T, C, 3 * C);
  const y = new Float64Array(B * T * C);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let t = 0; t < T; t++) {
        const at = (tt: number, part: number, d: number) => qkv[(b * T + tt) * 3 * C + part * C + h * D + d]!;
        const scores = Array.from({ length: t + 1 }, (_, s) => {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += at(t, 0, d) * at(s, 1, d);
          return dot / Math.sqrt(D);
        });
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((u, v) => u + v, 0);
        for (let d = 0; d < D; d++) y[(b * T + t) * C + h * D + d] = e.reduce((acc, ei, s) => acc + (ei / z) * at(s, 2, d), 0);
      }
  const x1 = mmRef(y, r.projW, r.projB, B * T, C, C).map((v, i) => v + x[i]!);
  const hid = mmRef(lnRef(x1, r.ln2w, r.ln2b, B * T), r.fcW, r.fcB, B * T, C, 4 * C, true);
  const x2 = mmRef(hid, r.fc2W, r.fc2B, B * T, 4 * C, C).map((v, i) => v + x1[i]!);
  const wteT = new Float64Array(C * V);
  for (let vv = 0; vv < V; vv++) for (let c = 0; c < C; c++) wteT[c * V + vv] = r.wte[vv * C + c]!;
  const lg = mmRef(x2, wteT, null, B * T, C, V);
  let total = 0;
  let count = 0;
  for (let i = 0; i < B * T; i++) {
    if (targets[i] === -100) continue;
    const row = lg.subarray(i * V, (i + 1) * V);
    const m = Math.max(...row);
    total += Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0)) + m - row[targets[i]!]!;
    count++;
  }

  const gotLogits = await logits.toArray();
  let worst = 0;
  for (let i = 0; i < lg.length; i++) worst = Math.max(worst, Math.abs(gotLogits[i]! - lg[i]!));
  expect(worst, "max |logit error|").toBeLessThan(2e-4);
  expect(Math.abs((await loss.item()) - total / count)).toBeLessThan(1e-4);

  loss.dispose();
  logits.dispose();
  for (const t of Object.values(g)) t.dispose();
  expect(device().stats().liveBytes, "every tensor released").toBe(live0);
});
