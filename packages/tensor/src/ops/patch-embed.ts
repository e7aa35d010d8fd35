// patchEmbed: CLIP's patch embedding, a convolution with stride = kernel = P and no padding,
// flattened to tokens: out[b, gy·Gw + gx, d] = bias[d] + Σ_{c,ky,kx} w[d, c, ky, kx] ·
// pixels[b, c, gy·P + ky, gx·P + kx], with pixels [B, C, H, W], weight [D, C, P, P],
// Gh = H/P, Gw = W/P, out [B, Gh·Gw, D] (= HF `patch_embedding(x).flatten(2).transpose(1, 2)`).
// Pass 1, im2col: since patches do not overlap, cols [B·Gh·Gw, C·P·P] (columns in the
// weight's (c, ky, kx) order) is a pure permutation of the pixels — pixels viewed as
// [B, C, Gh, P, Gw, P] permuted to [B, Gh, Gw, C, P, P] — run by stridedCopy (copy.ts: one
// element per invocation, one vec4 when P is a multiple of 4; chunked above one binding).
// Pass 2: matmul(cols, weight as [D, C·P·P], { transB, bias }) (matmul.ts).
import { ShapeError, fmtShape } from "../errors.js";
import { stridesOf } from "../shape.js";
import type { Tensor } from "../tensor.js";
import { stridedCopy } from "./copy.js";
import { expectDType, expectLive, expectRank } from "./util.js";
import { matmul } from "./matmul.js";

/** Patch tokens [B, (H/P)·(W/P), D] of pixels [B, C, H, W] under weight [D, C, P, P] (+ bias [D]). */
export function patchEmbed(pixels: Tensor, weight: Tensor, bias?: Tensor, patch: number = weight.shape[2]!): Tensor {
  const op = "patchEmbed";
  expectLive(op, "pixels", pixels);
  expectLive(op, "weight", weight);
  if (bias) expectLive(op, "bias", bias);
  expectRank(op, "pixels", pixels, 4);
  expectRank(op, "weight", weight, 4);
  expectDType(op, "pixels", pixels, "f32");
  expectDType(op, "weight", weight, "f32");
  const [B, C, H, W] = pixels.shape as [number, number, number, number];
  const [D, Cw, Ph, Pw] = weight.shape as [number, number, number, number];
  const ctx = `(pixels=${fmtShape(pixels.shape)}, weight=${fmtShape(weight.shape)})`;
  if (Cw !== C || Ph !== patch || Pw !== patch) {
    throw new ShapeError(`${op}: expected weight of shape [D, ${C}, ${patch}, ${patch}], got ${fmtShape(weight.shape)} ${ctx}`);
  }
  if (H % patch !== 0 || W % patch !== 0) {
    throw new ShapeError(`${op}: expected height and width divisible by the patch size ${patch}, got ${H}x${W} ${ctx}`);
  }
  if (bias) {
    expectDType(op, "bias", bias, "f32");
    if (bias.rank !== 1 || bias.shape[0] !== D) throw new ShapeError(`${op}: expected shape [${D}] for bias, got ${fmtShape(bias.shape)} ${ctx}`);
  }
  const P = patch;
  const gh = H / P;
  const gw = W / P;
  const np = gh * gw;
  const k = C * P * P;
  // im2col: pixels (B, C, Gh, P, Gw, P) -> cols (B, Gh, Gw, C, P, P)
  const [sb, sc, sgh, sy, sgw, sx] = stridesOf([B, C, gh, P, gw, P]) as [number, number, number, number, number, number];
  const im2col = stridedCopy(op, pixels, [B, gh, gw, C, P, P], 0, [sb, sgh, sgw, sc, sy, sx]);
  const flat = im2col.reshape([B * np, k]); // (B·Np, C·P·P)
  im2col.dispose();
  const w2 = weight.reshape([D, k]); // (D, C·P·P)
  const tokens = matmul(flat, w2, bias ? { transB: true, bias } : { transB: true }); // (B·Np, D)
  flat.dispose();
  w2.dispose();
  const out = tokens.reshape([B, np, D]); // (B, Np, D)
  tokens.dispose();
  return out;
}

/** float64 reference: the direct convolution with stride = kernel, flattened to tokens. */
export function patchEmbedRef(
  pixels: ArrayLike<number>,
  pShape: readonly [number, number, number, number],
  weight: ArrayLike<number>,
  wShape: readonly [number, number, number, number],
  bias?: ArrayLike<number>,
): Float64Array {
  const [B, C, H, W] = pShape;
  const [D, , P] = wShape;
  const gh = H / P;
  const gw = W / P;
  const out = new Float64Array(B * gh * gw * D);
  for (let b = 0; b < B; b++) {
    for (let gy = 0; gy < gh; gy++) {
      for (let gx = 0; gx < gw; gx++) {
        for (let d = 0; d < D; d++) {
          let s = bias ? bias[d]! : 0;
          for (let c = 0; c < C; c++) {
            for (let ky = 0; ky < P; ky++) {
              for (let kx = 0; kx < P; kx++) {
                s += weight[((d * C + c) * P + ky) * P + kx]! * pixels[((b * C + c) * H + gy * P + ky) * W + gx * P + kx]!;
              }
            }
          }
          out[((b * gh + gy) * gw + gx) * D + d] = s;
        }
      }
    }
  }
  return out;
}
