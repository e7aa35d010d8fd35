// Captioning with the eye model: the K image tokens are the prompt (their <image> placeholders
// replaced, DESIGN.md step 2), then KV-cached greedy / beam / top-k-top-p decoding through
// generate.ts, stopping at <|endoftext|>. The <image> token and padding rows are never generated
// (their logits are -∞).
// Embeddings for retrieval: image and text embeddings, L2-normalised, one pass per item.
import { type Tensor, indexSelect, l2Normalize, tensor, tidy } from "@llms-eye/tensor";
import { noGrad } from "@llms-eye/autograd";
import type { EyeModel } from "./eye.js";
import { eyeVocab } from "./eye-config.js";
import { type GenerateOptions, type NextTokenModel, generate } from "./generate.js";

/** A NextTokenModel whose prompt rows are K <image> placeholders each, read from `tokens` (n, K, D). */
export function eyeDecoder(model: EyeModel, tokens: Tensor): NextTokenModel {
  const lm = model.language_model;
  const cache = lm.newCache();
  const { imageTokenId } = model._cfg;
  const V = lm.config.vocabSize;
  const n = tokens.shape[0]!;
  const realRows = Math.min(eyeVocab(model._cfg), V);
  let rows = 0;
  const read = async (logits: Tensor): Promise<Float32Array[]> => {
    try {
      const data = (await logits.toArray()) as Float32Array;
      return Array.from({ length: rows }, (_, b) => {
        const row = data.subarray(b * V, (b + 1) * V);
        row[imageTokenId] = -Infinity;
        row.fill(-Infinity, realRows);
        return row;
      });
    } finally {
      logits.dispose();
    }
  };
  return {
    begin(ids) {
      rows = ids.length;
      if (rows % n !== 0) throw new RangeError(`eyeDecoder: expected a multiple of ${n} prompt rows (beams per image), got ${rows}`);
      const per = rows / n;
      const T = model.K;
      const logits = noGrad(() =>
        tidy(() => {
          const pick = tensor(Int32Array.from({ length: rows }, (_, r) => Math.floor(r / per)), [rows], "i32");
          const prompt = indexSelect(tokens, 0, pick); // (R, K, D)
          const inputsEmbeds = model.embedWithImages(ids, prompt); // (R, K, D)
          const out = lm.forward({ inputsEmbeds, cache, logitsAt: tensor(Int32Array.from({ length: rows }, (_, b) => b * T + T - 1), [rows], "i32") });
          return out.logits!.value; // (R, V)
        }),
      );
      return read(logits);
    },
    next(next) {
      const logits = noGrad(() =>
        tidy(() => lm.forward({ ids: tensor(Int32Array.from(next), [rows, 1], "i32"), cache }).logits!.value.reshape([rows, V])),
      );
      return read(logits);
    },
    reorder(index) {
      tidy(() => cache.reorder(tensor(Int32Array.from(index), [index.length], "i32")));
    },
    dispose() {
      cache.dispose();
    },
  };
}

export type CaptionOptions = Omit<GenerateOptions, "eosId" | "attentionMask" | "useCache" | "padId">;

/** Token ids of a caption for each image, from features (n, K, Dv); <|endoftext|> stripped. */
export async function captionIds(model: EyeModel, features: Tensor, opts: CaptionOptions): Promise<number[][]> {
  const K = model.K;
  const room = model._cfg.gpt2.nPositions - K;
  const maxNewTokens = Math.min(opts.maxNewTokens, room);
  const tokens = noGrad(() => tidy(() => model.imageTokens(features).value)); // (n, K, D)
  try {
    const n = features.shape[0]!;
    const prompts = Array.from({ length: n }, () => Array<number>(K).fill(model._cfg.imageTokenId));
    const out = await generate(eyeDecoder(model, tokens), prompts, { ...opts, maxNewTokens, eosId: model._cfg.eosTokenId });
    return out.map((r) => {
      const gen = r.slice(K);
      const end = gen.indexOf(model._cfg.eosTokenId);
      return end >= 0 ? gen.slice(0, end) : gen;
    });
  } finally {
    tokens.dispose();
  }
}

/** L2-normalised image embeddings (n, E) from features (n, K, Dv). */
export function imageEmbeddings(model: EyeModel, features: Tensor): Tensor {
  return noGrad(() => tidy(() => l2Normalize(model.imageEmbeds(model.imageTokens(features)).value)));
}

/** L2-normalised text embeddings (n, E) of tokenised captions. */
export function textEmbeddings(model: EyeModel, captions: readonly (readonly number[])[]): Tensor {
  return noGrad(() =>
    tidy(() => {
      const { textIds, textRows } = model.batchIds(captions);
      return l2Normalize(model.textEmbeds(textIds, textRows).value);
    }),
  );
}
