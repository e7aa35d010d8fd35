// Host-side layout of an eye training batch (DESIGN.md "The eye model", steps 2 and 3), built
// from the captions' token ids (no <|endoftext|>, no <image>):
//   caption pass   row b: <image>×K, caption (L_b tokens), <|endoftext|>, padding   (B, Tc)
//                  LM targets: position K-1+j predicts caption[j] (j < L_b), then <|endoftext|>
//   contrastive    row b: caption, <|endoftext|>, <image>, padding                  (B, Tt)
//                  the text embedding is read at the trailing <image> (position L_b + 1)
// Rows are right-padded with <|endoftext|>: causal attention never lets a real position see a
// later pad, so no attention mask is needed. Shape letters: B batch, K image tokens, L caption
// tokens, Tc = K + max L + 1, Tt = max L + 2.
import { type Tensor, ShapeError, tensor } from "@llms-eye/tensor";

export interface EyeBatchIds {
  B: number;
  /** i32 (B, Tc) caption-pass ids, <image> at 0..K-1. */
  captionIds: Tensor;
  /** i32 [N] flat rows b·Tc + t whose logits the LM loss needs, and their targets i32 [N]. */
  lmRows: Tensor;
  lmTargets: Tensor;
  /** i32 (B, Tt) contrastive-pass ids and the flat rows b·Tt + L_b + 1 of the trailing <image>, i32 [B]. */
  textIds: Tensor;
  textRows: Tensor;
  /** The host copies (for checks and tests). */
  captionRows: number[][];
  textRowsHost: number[][];
}

export interface EyeTokens {
  imageId: number;
  eosId: number;
  /** K, image tokens per image. */
  K: number;
  /** n_positions: a caption pass must fit. */
  maxPositions: number;
}

/** The caption and contrastive inputs of a batch of tokenised captions. */
export function eyeBatchIds(captions: readonly (readonly number[])[], tok: EyeTokens): EyeBatchIds {
  const { imageId, eosId, K, maxPositions } = tok;
  const B = captions.length;
  if (B === 0) throw new ShapeError("eye: expected at least one caption in the batch, got 0");
  const maxL = Math.max(...captions.map((c) => c.length));
  const Tc = K + maxL + 1;
  if (Tc > maxPositions) {
    throw new ShapeError(`eye: expected K + caption + 1 ≤ n_positions = ${maxPositions}, got ${K} + ${maxL} + 1; truncate captions to ${maxPositions - K - 1} tokens (the loader's maxTokens)`);
  }
  const Tt = maxL + 2;
  const captionRows: number[][] = [];
  const textRowsHost: number[][] = [];
  const lmRows: number[] = [];
  const lmTargets: number[] = [];
  const textRows: number[] = [];
  captions.forEach((cap, b) => {
    if (cap.some((t) => t === imageId)) throw new ShapeError(`eye: caption ${b} contains the <image> token (${imageId}); captions are plain text`);
    const L = cap.length;
    captionRows.push([...Array<number>(K).fill(imageId), ...cap, eosId, ...Array<number>(maxL - L).fill(eosId)]);
    textRowsHost.push([...cap, eosId, imageId, ...Array<number>(maxL - L).fill(eosId)]);
    for (let j = 0; j <= L; j++) {
      lmRows.push(b * Tc + K - 1 + j);
      lmTargets.push(j < L ? cap[j]! : eosId);
    }
    textRows.push(b * Tt + L + 1);
  });
  const i32 = (a: number[], shape: number[]) => tensor(Int32Array.from(a), shape, "i32");
  return {
    B,
    captionIds: i32(captionRows.flat(), [B, Tc]),
    lmRows: i32(lmRows, [lmRows.length]),
    lmTargets: i32(lmTargets, [lmTargets.length]),
    textIds: i32(textRowsHost.flat(), [B, Tt]),
    textRows: i32(textRows, [B]),
    captionRows,
    textRowsHost,
  };
}

/**
 * The gather index that puts image tokens in place of the <image> placeholders, in order:
 * flat row b·T + t reads row b·T + t of the token embeddings, except the j-th placeholder of
 * row b, which reads image token b·K + j (offset by B·T, the image tokens following the token
 * rows). Every row must hold exactly K placeholders: a mismatch is an error, never truncated.
 */
export function placeholderIndex(rows: readonly (readonly number[])[], imageId: number, K: number): Int32Array {
  const B = rows.length;
  const T = rows[0]?.length ?? 0;
  const index = new Int32Array(B * T);
  rows.forEach((row, b) => {
    if (row.length !== T) throw new ShapeError(`eye: expected rectangular ids, row ${b} has ${row.length} tokens, row 0 ${T}`);
    let j = 0;
    row.forEach((id, t) => {
      index[b * T + t] = id === imageId ? B * T + b * K + j++ : b * T + t;
    });
    if (j !== K) throw new ShapeError(`eye: expected ${K} <image> placeholders in row ${b} (one per image token), got ${j}`);
  });
  return index;
}
