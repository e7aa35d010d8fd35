// The run's JSON Lines logs: log.jsonl (one line per optimizer step) and evals.jsonl (one line
// per evaluation: metrics, retrieval and sample captions). On resume, lines after the
// checkpoint's step are dropped, since those steps run again.
import { appendFile, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface StepRecord {
  step: number;
  epoch: number;
  loss: number;
  lm: number;
  infoNCE: number;
  /** GPT-2's and the projector's current learning rates. */
  lr: number;
  projectorLr: number;
  gradNorm: number;
  tokensPerSec: number;
  imagesPerSec: number;
  seconds: number;
  /** Seconds of `seconds` spent waiting for the batch's images (0 when prefetching keeps up). */
  dataWait: number;
  elapsed: number;
}

export interface EvalSample {
  /** Image path relative to the run directory's parent-free absolute path (as the dataset resolves it). */
  image: string;
  caption: string;
  references: string[];
}

export interface EvalRecord {
  step: number;
  split: string;
  images: number;
  metrics: { Bleu_1: number; Bleu_2: number; Bleu_3: number; Bleu_4: number; ROUGE_L: number; CIDEr: number };
  retrieval: { i2t: Record<1 | 5 | 10, number>; t2i: Record<1 | 5 | 10, number> };
  clipScore?: number;
  /** Shapes data: single-object images whose caption names the object's color and shape. */
  singleObject?: { images: number; correct: number };
  samples: EvalSample[];
}

export const LOG_FILE = "log.jsonl";
export const EVALS_FILE = "evals.jsonl";

export class RunLog {
  constructor(readonly dir: string) {}

  async reset(): Promise<void> {
    await writeFile(join(this.dir, LOG_FILE), "");
    await writeFile(join(this.dir, EVALS_FILE), "");
  }

  /** Keeps only the lines of steps ≤ step (resume). */
  async truncateAfter(step: number): Promise<void> {
    for (const f of [LOG_FILE, EVALS_FILE]) {
      const file = join(this.dir, f);
      const lines = (await readFile(file, "utf8").catch(() => "")).split("\n").filter((l) => l.trim() !== "");
      const kept = lines.filter((l) => {
        try {
          return (JSON.parse(l) as { step: number }).step <= step;
        } catch {
          return false;
        }
      });
      await writeFile(file, kept.map((l) => `${l}\n`).join(""));
    }
  }

  step(r: StepRecord): Promise<void> {
    return appendFile(join(this.dir, LOG_FILE), `${JSON.stringify(r)}\n`);
  }

  eval(r: EvalRecord): Promise<void> {
    return appendFile(join(this.dir, EVALS_FILE), `${JSON.stringify(r)}\n`);
  }

  async close(): Promise<void> {}
}

/** Reads a run's logs (for the report and tests); unparsable lines are reported, not skipped silently. */
export async function readRunLogs(dir: string): Promise<{ steps: StepRecord[]; evals: EvalRecord[] }> {
  const read = async <T>(f: string): Promise<T[]> => {
    const text = await readFile(join(dir, f), "utf8").catch(() => "");
    return text.split("\n").flatMap((l, i) => {
      if (l.trim() === "") return [];
      try {
        return [JSON.parse(l) as T];
      } catch {
        throw new Error(`run log: expected one JSON object per line in ${join(dir, f)}:${i + 1}, got ${l.slice(0, 60)}`);
      }
    });
  };
  return { steps: await read<StepRecord>(LOG_FILE), evals: await read<EvalRecord>(EVALS_FILE) };
}
