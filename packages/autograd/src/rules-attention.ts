// Gradient rules of the fused attention, CLIP's InfoNCE and the patch embedding (entries of
// the table in rules.ts).
// - attention: the engine's memory-efficient attentionBackward (recomputes P per block from
//   the saved lse; nothing [Tq, Tk] is stored).
// - infoNCE: with logits L = e^s · â b̂ᵀ (â, b̂ the unit rows, s = min(logScale, max)),
//   d loss / d L = g · (softmax_rows(L) + softmax_cols(L) − 2I) / (2B) =: G;
//   d(e^s â) = G b̂, d b̂ = Gᵀ (e^s â), d s = Σ G ∘ L (zero when logScale > max, like
//   torch.clamp), and through the normalisation dx = (dŷ − ŷ (ŷ·dŷ)) / max(‖x‖, 1e-12).
// - patchEmbed: with cols = im2col(pixels) [B·Np, C·P·P] (a permutation: patches do not
//   overlap) and g [B·Np, D]: dW = gᵀ cols, db = Σ_rows g, dcols = g W, dPixels = the inverse
//   permutation of dcols.
import {
  type AttentionOptions, type Tensor, add, attention, attentionBackward, div, exp, infoNCE, l2Normalize, matmul, maximum,
  minimum, mul, permute, softmax, sqrt, sub, sum, tensor, patchEmbed,
} from "@llms-eye/tensor";
import type { Rule } from "./rules.js";

export interface AttentionAttrs {
  causal: boolean;
  keyPaddingMask: Tensor | null;
  scale: number | null;
}
export interface InfoNCEAttrs {
  maxLogScale: number;
}
export interface PatchEmbedAttrs {
  patch: number;
}

const view = (t: Tensor): Tensor => t.reshape(t.shape);

const attnOpts = (a: AttentionAttrs): AttentionOptions => ({
  causal: a.causal,
  ...(a.keyPaddingMask ? { keyPaddingMask: a.keyPaddingMask } : {}),
  ...(a.scale !== null ? { scale: a.scale } : {}),
});

export const attentionRule: Rule<AttentionAttrs> = {
  forward: ([q, k, v], attrs) => {
    const { out, lse } = attention(q!, k!, v!, attnOpts(attrs));
    return { out, save: [view(q!), view(k!), view(v!), view(out), lse] };
  },
  backward: (g, [q, k, v, out, lse], attrs, needs) => {
    const { dq, dk, dv } = attentionBackward(q!, k!, v!, out!, lse!, g, attnOpts(attrs));
    return [dq, dk, dv].map((d, i) => (needs[i] ? d : (d.dispose(), null)));
  },
};

const L2_EPS = 1e-12;

/** Collects temporaries to release together. */
function scope(): { k: <T extends Tensor>(t: T) => T; done: () => void } {
  const tmp: Tensor[] = [];
  return { k: (t) => (tmp.push(t), t), done: () => tmp.forEach((t) => t.dispose()) };
}

/** d loss / d x from d loss / d l2Normalize(x) (rows of the last axis). */
function l2NormalizeGrad(dy: Tensor, x: Tensor): Tensor {
  const { k, done } = scope();
  const norm = k(maximum(k(sqrt(k(sum(k(mul(x, x)), [-1], true)))), L2_EPS));
  const y = k(div(x, norm));
  const dot = k(sum(k(mul(dy, y)), [-1], true));
  const dx = div(k(sub(dy, k(mul(y, dot)))), norm);
  done();
  return dx;
}

export const infoNCERule: Rule<InfoNCEAttrs> = {
  forward: ([img, txt, logScale], { maxLogScale }) => {
    const { loss, logits } = infoNCE(img!, txt!, logScale!, { maxLogScale });
    return { out: loss, save: [view(img!), view(txt!), view(logScale!), logits] };
  },
  backward: (g, [img, txt, logScale, logits], { maxLogScale }, needs, shapes) => {
    const { k, done } = scope();
    const B = img!.shape[0]!;
    const eye = new Float32Array(B * B);
    for (let i = 0; i < B; i++) eye[i * B + i] = 2;
    const rows = k(softmax(logits!));
    const cols = k(permute(k(softmax(k(permute(logits!, [1, 0])))), [1, 0]));
    const gs = k(mul(k(reshapeTo(g, [1, 1])), 1 / (2 * B)));
    const G = k(mul(k(sub(k(add(rows, cols)), k(tensor(eye, [B, B])))), gs)); // d loss / d logits
    const s = k(minimum(logScale!, maxLogScale));
    const e = k(exp(s)); // [1]
    let dImg: Tensor | null = null;
    let dTxt: Tensor | null = null;
    if (needs[0]) {
      const txtN = k(l2Normalize(txt!));
      const dImgN = k(mul(k(matmul(G, txtN)), e)); // d â = e^s G b̂
      dImg = l2NormalizeGrad(dImgN, img!);
    }
    if (needs[1]) {
      const imgN = k(l2Normalize(img!));
      const dTxtN = k(mul(k(matmul(G, imgN, { transA: true })), e)); // d b̂ = e^s Gᵀ â
      dTxt = l2NormalizeGrad(dTxtN, txt!);
    }
    let dLog: Tensor | null = null;
    if (needs[2]) {
      // d min(s, max) / ds = 1 where s <= max (torch.clamp), else 0: clamp((max − s)·1e30 + 1, 0, 1)
      const pass = k(minimum(k(maximum(k(add(k(mul(k(sub(maxLogScale, logScale!)), 1e30)), 1)), 0)), 1));
      const d = k(sum(k(mul(G, logits!))));
      const dl = mul(k(reshapeTo(d, [1])), pass);
      dLog = reshapeTo(dl, shapes[2]!);
      if (dLog !== dl) dl.dispose();
    }
    done();
    return [dImg, dTxt, dLog];
  },
};

const reshapeTo = (t: Tensor, shape: readonly number[]): Tensor => t.reshape([...shape]);

export const patchEmbedRule: Rule<PatchEmbedAttrs> = {
  forward: ([pixels, weight, bias], { patch }) => ({
    out: patchEmbed(pixels!, weight!, bias, patch),
    save: [view(pixels!), view(weight!)],
  }),
  backward: (g, [pixels, weight], { patch: P }, needs, shapes) => {
    const { k, done } = scope();
    const [B, C, H, W] = pixels!.shape as [number, number, number, number];
    const D = weight!.shape[0]!;
    const [gh, gw] = [H / P, W / P];
    const kk = C * P * P;
    const g2 = k(g.reshape([B * gh * gw, D]));
    let dPix: Tensor | null = null;
    let dW: Tensor | null = null;
    let dB: Tensor | null = null;
    if (needs[0]) {
      const w2 = k(weight!.reshape([D, kk]));
      const dcols = k(matmul(g2, w2)); // [B·Np, C·P·P]
      const d6 = k(dcols.reshape([B, gh, gw, C, P, P]));
      const back = k(permute(d6, [0, 3, 1, 4, 2, 5])); // [B, C, Gh, P, Gw, P]
      dPix = back.reshape([B, C, H, W]);
    }
    if (needs[1]) {
      const p6 = k(pixels!.reshape([B, C, gh, P, gw, P]));
      const cols6 = k(permute(p6, [0, 2, 4, 1, 3, 5])); // [B, Gh, Gw, C, P, P]
      const cols = k(cols6.reshape([B * gh * gw, kk]));
      const dw = k(matmul(g2, cols, { transA: true })); // [D, C·P·P]
      dW = dw.reshape([...shapes[1]!]);
    }
    if (needs[2]) dB = sum(g2, [0], false);
    done();
    return [dPix, dW, dB];
  },
};
