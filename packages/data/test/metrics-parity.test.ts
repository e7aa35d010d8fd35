// Parity with pycocoevalcap on ../shared/fixtures/caption-metrics: every corpus and per-image value
// of scores.json (pre-tokenized) and scores.ptb.json (raw text through the PTB tokenizer) within
// 1e-9, the BLEU count sums, and tokenized.json (refs, preds, probes) token for token.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FIXTURES } from "../../models/test/fixtures.js";
import { METRIC_NAMES, evaluateCaptions } from "../src/metrics/coco-eval.js";
import { readPredictions, readReferences } from "../src/metrics/coco-format.js";
import { PTB_PUNCTUATIONS, dropPunctuation, ptbLexLines } from "../src/metrics/ptb-tokenizer.js";

const DIR = join(FIXTURES, "caption-metrics");
const TOL = 1e-9; // the README's safe tolerance (we observe ≤ 5e-16)
const json = (f: string): any => JSON.parse(readFileSync(join(DIR, f), "utf8"));

describe.each([
  ["scores.json", ".pretok", false],
  ["scores.ptb.json", "", true],
] as const)("%s", (scoresFile, suffix, tokenize) => {
  it("matches every corpus and per-image value, the BLEU sums and ln(#images)", async () => {
    const expected = json(scoresFile);
    const res = evaluateCaptions(await readReferences(join(DIR, `refs${suffix}.json`)), await readPredictions(join(DIR, `preds${suffix}.json`)), { tokenize });
    for (const m of METRIC_NAMES) expect(Math.abs(res.scores[m] - expected[m]), m).toBeLessThanOrEqual(TOL);
    expect([...res.perImage.keys()].sort()).toEqual(Object.keys(expected.per_image).sort());
    for (const [id, s] of res.perImage) for (const m of METRIC_NAMES) expect(Math.abs(s[m] - expected.per_image[id][m]), `${id} ${m}`).toBeLessThanOrEqual(TOL);
    expect(res.bleuStats).toEqual(expected.bleu_stats);
    expect(Math.abs(res.ciderLogNumImages - expected.cider_log_num_images)).toBeLessThanOrEqual(1e-15);
  });
});

describe("PTB tokenizer vs tokenized.json", () => {
  const t = json("tokenized.json");
  it("uses pycocoevalcap's punctuation list", () => {
    expect([...PTB_PUNCTUATIONS]).toEqual(t.punctuations_dropped);
  });
  it.each(["refs", "preds", "probes"])("reproduces the Java output line and the kept tokens of every %s caption", (group) => {
    const items = t[group] as { raw: string; ptb: string; tokenized: string }[];
    const lines = ptbLexLines(items.map((x) => x.raw)); // one tokenizer call per group, as pycocoevalcap
    expect(lines).toEqual(items.map((x) => x.ptb));
    expect(lines.map(dropPunctuation)).toEqual(items.map((x) => x.tokenized));
  });
});
