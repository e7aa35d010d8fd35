// caption-metrics: the COCO caption evaluation (PTB tokenisation of references and predictions,
// BLEU-1..4, ROUGE-L, CIDEr-D) on synthetic captions — op `coco_eval`, shape `<images>x<refs>`:
// full 25000x5 (COCO val2017 size; target ≤ 10 s), quick 5000x5, tiny 200x5. Captions are drawn
// from a small vocabulary by a seeded LCG, with capitals, commas, final periods and clitics so the
// tokenizer's slow paths run too; each prediction is a perturbed copy of one of its references.
// Validation: the fixture set ../shared/fixtures/caption-metrics scored through the same code
// must match pycocoevalcap's scores.ptb.json within 1e-9. Work: items = images scored.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type CaptionRefs, METRIC_NAMES, evaluateCaptions, readPredictions, readReferences } from "@llms-eye/data";
import type { Family, OurCase, Preset } from "./bench.js";
import { ValidationError } from "./harness.js";

const SHAPES: Record<Preset, [number, number][]> = { full: [[25000, 5]], quick: [[5000, 5]], tiny: [[200, 5]] };
const SUBJECTS = ["a man", "a woman", "two dogs", "a cat", "a group of people", "a young boy", "an elephant", "a red bus", "the skier", "a giraffe"];
const VERBS = ["riding", "holding", "standing next to", "sitting on", "looking at", "walking down", "eating", "playing with", "flying over", "parked near"];
const OBJECTS = ["a horse", "a surfboard", "the beach", "a wooden table", "a city street", "a frisbee", "a pizza", "the snow", "a kite", "a bench", "his phone", "a tennis racket"];
const TAILS = ["", " in the park", " on a sunny day", ", near the water", " at night", " in front of a building", " with a friend", " while it's raining"];

function fixturesDir(): string {
  const candidates = [process.env.EYE_FIXTURES, fileURLToPath(new URL("../../../../shared/fixtures", import.meta.url)), "/work/shared/fixtures"];
  const hit = candidates.find((p) => p !== undefined && existsSync(join(p, "caption-metrics", "scores.ptb.json")));
  if (!hit) throw new Error(`caption-metrics: expected caption-metrics/scores.ptb.json under one of ${candidates.filter(Boolean).join(", ")}; set EYE_FIXTURES`);
  return join(hit, "caption-metrics");
}

/** Synthetic references (nRefs per image) and one prediction per image, deterministic. */
export function syntheticCaptions(nImages: number, nRefs: number, seed = 1): { refs: CaptionRefs; preds: Map<string, string> } {
  let s = seed >>> 0;
  const next = (n: number): number => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s % n; };
  const pick = <T>(a: readonly T[]): T => a[next(a.length)]!;
  const sentence = (): string => {
    let c = `${pick(SUBJECTS)} ${pick(VERBS)} ${pick(OBJECTS)}${pick(TAILS)}`;
    if (next(2) === 0) c = c[0]!.toUpperCase() + c.slice(1);
    return next(3) === 0 ? c : `${c}.`;
  };
  const refs = new Map<string, string[]>();
  const preds = new Map<string, string>();
  const imageIds: string[] = [];
  for (let i = 0; i < nImages; i++) {
    const id = String(100000 + i);
    const r = Array.from({ length: nRefs }, sentence);
    imageIds.push(id);
    refs.set(id, r);
    const words = pick(r).split(" ");
    words[next(words.length)] = pick(["dog", "street", "tree", "a", "sitting"]);
    preds.set(id, words.join(" "));
  }
  return { refs: { imageIds, refs }, preds };
}

function metricsCase(nImages: number, nRefs: number): OurCase {
  return {
    op: "coco_eval",
    shape: `${nImages}x${nRefs}`,
    work: { items: nImages },
    note: "PTB tokenisation + BLEU-1..4 + ROUGE-L + CIDEr-D, one CPU thread",
    setup() {
      const { refs, preds } = syntheticCaptions(nImages, nRefs);
      return {
        async validate() {
          const dir = fixturesDir();
          const expected = JSON.parse(readFileSync(join(dir, "scores.ptb.json"), "utf8")) as Record<string, number>;
          const got = evaluateCaptions(await readReferences(join(dir, "refs.json")), await readPredictions(join(dir, "preds.json")));
          for (const m of METRIC_NAMES) {
            const d = Math.abs(got.scores[m] - expected[m]!);
            if (!(d <= 1e-9)) throw new ValidationError(`coco_eval: ${m} = ${got.scores[m]} on the fixture set, pycocoevalcap gives ${expected[m]} (|diff| ${d} > 1e-9)`);
          }
        },
        async step() {
          evaluateCaptions(refs, preds);
        },
      };
    },
  };
}

export const family: Family = {
  name: "caption-metrics",
  cases: (preset) => SHAPES[preset].map(([n, r]) => metricsCase(n, r)),
};
