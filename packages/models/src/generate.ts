// Text generation for causal LMs, as Hugging Face transformers 4.31's generate():
//   greedy  argmax each step (ties: the lowest id)
//   beam    BeamSearchScorer: each step keeps the best 2·K of the K·V continuations, a
//           continuation ending in eos (among the top K) becomes a finished hypothesis scored
//           sum logprobs / len^lengthPenalty, len = its tokens INCLUDING the (padded) prompt and
//           EXCLUDING eos; the other best K continue. earlyStopping: true = stop once K
//           hypotheses are finished; false (default) = once the best running score divided by
//           cur_len^lengthPenalty cannot beat the worst finished one; "never" = the exact bound
//           (max_length^lengthPenalty when lengthPenalty > 0). At max length the running beams
//           become hypotheses; the best is returned, + eos when shorter than max length.
//   sample  temperature, then top-k (HF's default 50; 0 = off; ties at the k-th value kept),
//           then top-p (the smallest set of top tokens whose probability exceeds topP; the top
//           one always kept), then one draw from a seeded host RNG (the engine's mulberry32).
// Prompts of different lengths are left-padded with padId (mask 0, position ids from the mask,
// as HF). Each output row is its prompt as given followed by the new tokens, up to and
// including eos; rows are not padded to a common length (HF pads with pad_token_id).
// Logits of the last position are read back to the host every step (V floats a row).
import { type Tensor, ShapeError, rng, tensor, tidy } from "@llms-eye/tensor";
import { noGrad } from "@llms-eye/autograd";
import type { GPT2LMHeadModel } from "./gpt2.js";

/**
 * What generation needs from a model: next-token logits (one Float32Array of V per row) of
 * the last position, given the tokens so far. A decoder holds its state (a KV cache).
 */
export interface NextTokenModel {
  /** Rectangular rows (left-padded) and their mask (1 token, 0 pad). */
  begin(ids: number[][], mask: number[][]): Promise<Float32Array[]>;
  /** One new token per row (mask 1). */
  next(tokens: number[]): Promise<Float32Array[]>;
  /** Beam search: new row i continues old row index[i]. */
  reorder(index: number[]): void;
  /** Releases the decoder's GPU state. */
  dispose(): void;
}

/**
 * A GPT-2 decoder: with `useCache` (default) the prompt runs once and each step feeds one token
 * per row through the KV cache; without, every step re-runs the whole sequence (the reference).
 */
export function gpt2Decoder(model: GPT2LMHeadModel, { useCache = true }: { useCache?: boolean } = {}): NextTokenModel {
  const cache = useCache ? model.newCache() : undefined;
  let seq: number[][] = [];
  let mask: number[][] = [];
  const run = async (ids: number[][]): Promise<Float32Array[]> => {
    const B = ids.length;
    const T = ids[0]!.length;
    const S = mask[0]!.length;
    const V = model.config.vocabSize;
    const pos = positionIdsFromMask(mask).map((r) => r.slice(S - T));
    const padded = mask.some((r) => r.includes(0));
    const logits = noGrad(() =>
      tidy(() => {
        const out = model.forward({
          ids: tensor(Int32Array.from(ids.flat()), [B, T], "i32"),
          positionIds: tensor(Int32Array.from(pos.flat()), [B, T], "i32"),
          logitsAt: tensor(Int32Array.from({ length: B }, (_, b) => b * T + T - 1), [B], "i32"),
          ...(padded ? { attentionMask: tensor(Int32Array.from(mask.flat()), [B, S], "i32") } : {}),
          ...(cache ? { cache } : {}),
        });
        return out.logits!.value; // (B, V)
      }),
    );
    try {
      const data = (await logits.toArray()) as Float32Array;
      return Array.from({ length: B }, (_, b) => data.subarray(b * V, (b + 1) * V));
    } finally {
      logits.dispose();
    }
  };
  return {
    begin(ids, m) {
      seq = ids.map((r) => [...r]);
      mask = m.map((r) => [...r]);
      return run(seq);
    },
    next(tokens) {
      tokens.forEach((t, b) => (seq[b]!.push(t), mask[b]!.push(1)));
      return run(cache ? tokens.map((t) => [t]) : seq);
    },
    reorder(index) {
      seq = index.map((i) => [...seq[i]!]);
      mask = index.map((i) => [...mask[i]!]);
      if (cache) tidy(() => cache.reorder(tensor(Int32Array.from(index), [index.length], "i32")));
    },
    dispose() {
      cache?.dispose();
    },
  };
}

/** HF's position ids for left-padded rows (as generate computes them): cumsum(mask) - 1, 1 at pads. */
export function positionIdsFromMask(mask: readonly (readonly number[])[]): number[][] {
  return mask.map((row) => {
    let n = 0;
    return row.map((m) => (m ? n++ : 1));
  });
}

export type Strategy = "greedy" | "beam" | "sample";

export interface GenerateOptions {
  maxNewTokens: number;
  /** Default "greedy". */
  strategy?: Strategy;
  /** <|endoftext|>: a row stops after it. */
  eosId: number;
  /** Fills left padding and finished rows (default eosId, as GPT-2 has no pad token). */
  padId?: number;
  /** (B, T) 1 token / 0 pad, for prompts already padded to one length; default: left-pad ragged prompts. */
  attentionMask?: number[][];
  /** Beam search: beams per prompt (default 4), lengthPenalty (default 1), earlyStopping (default false). */
  numBeams?: number;
  lengthPenalty?: number;
  earlyStopping?: boolean | "never";
  /** Sampling: defaults as HF's GenerationConfig: topK 50 (0 = off), topP 1, temperature 1, seed 0. */
  topK?: number;
  topP?: number;
  temperature?: number;
  seed?: number;
  /** GPT-2 only: KV cache (default true) or a full forward per step. */
  useCache?: boolean;
}

/** Generates continuations of `promptIds` (rows of token ids); see the file header. */
export async function generate(model: GPT2LMHeadModel | NextTokenModel, promptIds: number[][], opts: GenerateOptions): Promise<number[][]> {
  const { strategy = "greedy", maxNewTokens, eosId } = opts;
  const padId = opts.padId ?? eosId;
  const who = "generate";
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new RangeError(`${who}: expected a positive integer for maxNewTokens, got ${maxNewTokens}`);
  if (promptIds.length === 0 || promptIds.some((r) => r.length === 0)) throw new ShapeError(`${who}: expected at least one prompt of at least one token, got ${JSON.stringify(promptIds.map((r) => r.length))} tokens`);
  const T0 = Math.max(...promptIds.map((r) => r.length));
  let ids: number[][];
  let mask: number[][];
  if (opts.attentionMask) {
    mask = opts.attentionMask;
    const bad = promptIds.findIndex((r, b) => r.length !== T0 || mask[b]?.length !== T0);
    if (mask.length !== promptIds.length || bad >= 0) {
      throw new ShapeError(`${who}: expected promptIds and attentionMask of one shape [${promptIds.length}, ${T0}], got a row of ${promptIds[bad]?.length} tokens and ${mask[bad]?.length} mask values; omit attentionMask to left-pad automatically`);
    }
    ids = promptIds;
  } else {
    ids = promptIds.map((r) => [...Array<number>(T0 - r.length).fill(padId), ...r]);
    mask = promptIds.map((r) => [...Array<number>(T0 - r.length).fill(0), ...Array<number>(r.length).fill(1)]);
  }
  if (!("begin" in model) && T0 + maxNewTokens - 1 > model.config.nPositions) {
    throw new RangeError(`${who}: expected prompt + maxNewTokens - 1 ≤ n_positions = ${model.config.nPositions}, got ${T0} + ${maxNewTokens} - 1; shorten the prompt or lower maxNewTokens`);
  }
  const dec = "begin" in model ? model : gpt2Decoder(model, { useCache: opts.useCache ?? true });
  try {
    const generated =
      strategy === "beam" ? await beamSearch(dec, ids, mask, opts, padId) : await stepwise(dec, ids, mask, opts, padId, strategy);
    return promptIds.map((r, b) => [...r, ...generated[b]!]);
  } finally {
    if (dec !== model) dec.dispose();
  }
}

/** Greedy or sampled decoding: one token a row a step; finished rows are fed padId. */
async function stepwise(dec: NextTokenModel, ids: number[][], mask: number[][], opts: GenerateOptions, padId: number, strategy: Strategy): Promise<number[][]> {
  if (strategy !== "greedy" && strategy !== "sample") throw new RangeError(`generate: expected strategy "greedy", "beam" or "sample", got ${JSON.stringify(strategy)}`);
  const pick = strategy === "greedy" ? argmax : sampler(opts);
  const out = ids.map((): number[] => []);
  const done = ids.map(() => false);
  let logits = await dec.begin(ids, mask);
  for (let step = 0; ; step++) {
    const next = logits.map((row, b) => (done[b] ? padId : pick(row)));
    next.forEach((t, b) => {
      if (done[b]) return;
      out[b]!.push(t);
      if (t === opts.eosId) done[b] = true;
    });
    if (step + 1 >= opts.maxNewTokens || done.every(Boolean)) return out;
    logits = await dec.next(next);
  }
}

/** Index of the largest value (the first one on ties, as torch.argmax). */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/** log_softmax of a row, in float64. */
export function logSoftmax(row: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < row.length; i++) m = Math.max(m, row[i]!);
  let s = 0;
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i]! - m);
  const lse = m + Math.log(s);
  return Float64Array.from(row, (x) => x - lse);
}

/**
 * HF's logits warpers in HF's order: TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper.
 * Returns the processed scores (removed tokens -Infinity), float64.
 */
export function warpLogits(row: ArrayLike<number>, { temperature = 1, topK = 50, topP = 1 }: Pick<GenerateOptions, "temperature" | "topK" | "topP"> = {}): Float64Array {
  if (!(temperature > 0)) throw new RangeError(`generate: expected a positive temperature, got ${temperature}`);
  if (!Number.isInteger(topK) || topK < 0) throw new RangeError(`generate: expected a non-negative integer topK (0 = off), got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`generate: expected topP in (0, 1], got ${topP}`);
  const s = Float64Array.from(row, (x) => x / temperature);
  const V = s.length;
  if (topK > 0 && topK < V) {
    const kth = Float64Array.from(s).sort()[V - topK]!; // the k-th largest
    for (let i = 0; i < V; i++) if (s[i]! < kth) s[i] = -Infinity;
  }
  if (topP < 1) {
    const order = Array.from(s.keys()).sort((a, b) => s[a]! - s[b]! || a - b); // ascending
    const p = softmax(Float64Array.from(order, (i) => s[i]!));
    let cum = 0;
    for (let j = 0; j < V - 1; j++) {
      cum += p[j]!;
      if (cum <= 1 - topP) s[order[j]!] = -Infinity; // the largest (j = V - 1) is always kept
    }
  }
  return s;
}

/** softmax of a row whose removed entries are -Infinity (probability 0). */
function softmax(x: Float64Array): Float64Array {
  let m = -Infinity;
  for (const v of x) m = Math.max(m, v);
  const e = x.map((v) => (v === -Infinity ? 0 : Math.exp(v - m)));
  let z = 0;
  for (const v of e) z += v;
  return e.map((v) => v / z);
}

/** A seeded sampler over warped probabilities. */
function sampler(opts: GenerateOptions): (row: ArrayLike<number>) => number {
  const next = rng(opts.seed ?? 0);
  const warp = { temperature: opts.temperature ?? 1, topK: opts.topK ?? 50, topP: opts.topP ?? 1 };
  warpLogits([0], warp); // validates the options before the first forward
  return (row) => {
    const p = softmax(warpLogits(row, warp));
    const u = next();
    let cum = 0;
    let last = 0;
    for (let i = 0; i < p.length; i++) {
      if (p[i] === 0) continue;
      last = i;
      cum += p[i]!;
      if (u < cum) return i;
    }
    return last; // u ≥ the rounded total
  };
}

interface Hypothesis {
  score: number;
  tokens: number[];
}

/** HF's BeamHypotheses: the best K finished hypotheses of one prompt. */
class BeamHypotheses {
  beams: Hypothesis[] = [];
  worst = 1e9;

  constructor(
    readonly K: number,
    readonly lengthPenalty: number,
    readonly earlyStopping: boolean | "never",
    readonly maxLength: number,
  ) {}

  add(tokens: number[], sumLogprobs: number): void {
    const score = sumLogprobs / tokens.length ** this.lengthPenalty;
    if (this.beams.length < this.K || score > this.worst) {
      this.beams.push({ score, tokens });
      if (this.beams.length > this.K) {
        const sorted = this.beams.map((h, i) => [h.score, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
        this.beams.splice(sorted[0]![1], 1);
        this.worst = sorted[1]![0];
      } else this.worst = Math.min(score, this.worst);
    }
  }

  isDone(bestSumLogprobs: number, curLen: number): boolean {
    if (this.beams.length < this.K) return false;
    if (this.earlyStopping === true) return true;
    const len = this.earlyStopping === "never" && this.lengthPenalty > 0 ? this.maxLength : curLen;
    return this.worst >= bestSumLogprobs / len ** this.lengthPenalty;
  }

  best(): Hypothesis {
    const sorted = [...this.beams].sort((a, b) => a.score - b.score); // stable, as Python's sorted
    return sorted[sorted.length - 1]!;
  }
}

/** Beam search (BeamSearchScorer with one hypothesis kept); returns each prompt's new tokens. */
async function beamSearch(dec: NextTokenModel, ids: number[][], mask: number[][], opts: GenerateOptions, padId: number): Promise<number[][]> {
  const K = opts.numBeams ?? 4;
  if (!Number.isInteger(K) || K < 1) throw new RangeError(`generate: expected a positive integer numBeams, got ${K}`);
  const { eosId } = opts;
  const B = ids.length;
  const T0 = ids[0]!.length;
  const maxLength = T0 + opts.maxNewTokens;
  const hyps = ids.map(() => new BeamHypotheses(K, opts.lengthPenalty ?? 1, opts.earlyStopping ?? false, maxLength));
  const done = ids.map(() => false);
  let seqs = ids.flatMap((r) => Array.from({ length: K }, () => [...r])); // (B·K) rows, beam k of prompt b at b·K + k
  let scores: number[] = seqs.map((_, r) => (r % K === 0 ? 0 : -1e9)); // only beam 0 starts: the K copies are equal
  let logits = await dec.begin(seqs, mask.flatMap((m) => Array.from({ length: K }, () => m)));
  for (;;) {
    const curLen = seqs[0]!.length;
    const nextScores: number[] = [];
    const nextTokens: number[] = [];
    const nextRows: number[] = [];
    for (let b = 0; b < B; b++) {
      if (done[b]) {
        for (let k = 0; k < K; k++) nextScores.push(0), nextTokens.push(padId), nextRows.push(b * K);
        continue;
      }
      const cands = topCandidates(logits.slice(b * K, (b + 1) * K), scores.slice(b * K, (b + 1) * K), 2 * K);
      let kept = 0;
      for (const [rank, c] of cands.entries()) {
        const row = b * K + c.beam;
        if (c.token === eosId) {
          if (rank < K) hyps[b]!.add(seqs[row]!, c.score); // eos itself is not part of the hypothesis
        } else {
          nextScores.push(c.score), nextTokens.push(c.token), nextRows.push(row);
          if (++kept === K) break;
        }
      }
      done[b] = hyps[b]!.isDone(cands[0]!.score, curLen);
    }
    seqs = nextRows.map((r, i) => [...seqs[r]!, nextTokens[i]!]);
    scores = nextScores;
    if (done.every(Boolean) || curLen + 1 >= maxLength) break;
    dec.reorder(nextRows);
    logits = await dec.next(nextTokens);
  }
  return hyps.map((h, b) => {
    if (!done[b]) for (let k = 0; k < K; k++) h.add(seqs[b * K + k]!, scores[b * K + k]!);
    const best = h.best().tokens;
    return [...best.slice(T0), ...(best.length < maxLength ? [eosId] : [])];
  });
}

interface Candidate {
  score: number;
  token: number;
  beam: number;
}

/** The n best (beam score + log_softmax) over the K beams' rows, best first; ties: lower beam, then lower token. */
function topCandidates(rows: Float32Array[], beamScores: number[], n: number): Candidate[] {
  const best: Candidate[] = [];
  rows.forEach((row, beam) => {
    const lp = logSoftmax(row);
    for (let token = 0; token < lp.length; token++) {
      const score = lp[token]! + beamScores[beam]!;
      if (best.length === n && score <= best[n - 1]!.score) continue;
      let i = best.length;
      while (i > 0 && best[i - 1]!.score < score) i--;
      best.splice(i, 0, { score, token, beam });
      if (best.length > n) best.pop();
    }
  });
  return best;
}
