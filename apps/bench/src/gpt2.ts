// A GPT-2 language model on the tape, for the training-step benchmark: Hugging Face's
// GPT2LMHeadModel math and parameter names (Conv1D [in, out] weights, pre-LN blocks, tanh
// GELU, tied LM head), randomly initialised as its _init_weights does (N(0, 0.02²), residual
// projections N(0, (0.02/√(2L))²)). No dropout: the benchmark times the arithmetic.
import { type Tensor } from "@llms-eye/tensor";
import { type Var, Embedding, LayerNorm, Linear, Module, ag } from "@llms-eye/autograd";

export interface GPT2Config {
  layers: number;
  width: number;
  heads: number;
  vocab: number;
  positions: number;
}

export const DISTILGPT2: GPT2Config = { layers: 6, width: 768, heads: 12, vocab: 50257, positions: 1024 };

class Attention extends Module {
  c_attn: Linear;
  c_proj: Linear;
  constructor(readonly _cfg: GPT2Config, seed: number) {
    super();
    const { width: C, layers: L } = _cfg;
    this.c_attn = new Linear(C, 3 * C, { layout: "in_out", seed });
    this.c_proj = new Linear(C, C, { layout: "in_out", seed: seed + 1, std: 0.02 / Math.sqrt(2 * L) });
  }

  forward(x: Var): Var {
    const [B, T, C] = x.shape as [number, number, number];
    const H = this._cfg.heads;
    const D = C / H;
    const heads = ag.permute(ag.reshape(this.c_attn.forward(x), [B, T, 3, H, D]), [2, 0, 3, 1, 4]); // (3, B, H, T, D)
    const [q, k, v] = [0, 1, 2].map((i) => ag.reshape(ag.slice(heads, [i], [i + 1]), [B, H, T, D])) as [Var, Var, Var];
    const y = ag.reshape(ag.permute(ag.attention(q, k, v, { causal: true }), [0, 2, 1, 3]), [B, T, C]);
    return this.c_proj.forward(y);
  }
}

class MLP extends Module {
  c_fc: Linear;
  c_proj: Linear;
  constructor(cfg: GPT2Config, seed: number) {
    super();
    const { width: C, layers: L } = cfg;
    this.c_fc = new Linear(C, 4 * C, { layout: "in_out", seed });
    this.c_proj = new Linear(4 * C, C, { layout: "in_out", seed: seed + 1, std: 0.02 / Math.sqrt(2 * L) });
  }

  forward(x: Var): Var {
    return this.c_proj.forward(ag.gelu(this.c_fc.forward(x)));
  }
}

class Block extends Module {
  ln_1: LayerNorm;
  attn: Attention;
  ln_2: LayerNorm;
  mlp: MLP;
  constructor(cfg: GPT2Config, seed: number) {
    super();
    this.ln_1 = new LayerNorm(cfg.width);
    this.attn = new Attention(cfg, seed);
    this.ln_2 = new LayerNorm(cfg.width);
    this.mlp = new MLP(cfg, seed + 2);
  }

  forward(x: Var): Var {
    const x1 = ag.add(x, this.attn.forward(this.ln_1.forward(x)));
    return ag.add(x1, this.mlp.forward(this.ln_2.forward(x1)));
  }
}

export class GPT2 extends Module {
  wte: Embedding;
  wpe: Embedding;
  h: Block[];
  ln_f: LayerNorm;
  constructor(readonly _cfg: GPT2Config, seed = 0) {
    super();
    this.wte = new Embedding(_cfg.vocab, _cfg.width, { seed });
    this.wpe = new Embedding(_cfg.positions, _cfg.width, { seed: seed + 1, std: 0.01 });
    this.h = Array.from({ length: _cfg.layers }, (_, l) => new Block(_cfg, seed + 10 + 4 * l));
    this.ln_f = new LayerNorm(_cfg.width);
  }

  /** Mean next-token cross-entropy of `ids` (B, T) against `targets` (B·T, -100 ignored). */
  loss(ids: Tensor, positions: Tensor, targets: Tensor): Var {
    const [B, T] = ids.shape as [number, number];
    let x = ag.add(this.wte.forward(ids), this.wpe.forward(positions));
    for (const block of this.h) x = block.forward(x);
    const xf = ag.reshape(this.ln_f.forward(x), [B * T, this._cfg.width]);
    return ag.crossEntropy(ag.matmul(xf, this.wte.weight, { transB: true }), targets);
  }
}
