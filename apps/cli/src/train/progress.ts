// The live progress of `eye train`: a cli-progress bar on a terminal (step, epoch, losses, lr,
// tokens/s, ETA); on a pipe, one plain line every 10 steps and at the end, its ETA from the
// pace of the last 50 steps (so the first steps' shader compiles and evaluations fade out).
import cliProgress from "cli-progress";
import type { StepRecord } from "@llms-eye/train";

export interface Progress {
  step(r: StepRecord, total: number): void;
  features(done: number, total: number): void;
  log(message: string): void;
  stop(): void;
}

const fmt = (r: StepRecord) => ({
  epoch: r.epoch.toFixed(2), loss: r.loss.toFixed(4), lm: r.lm.toFixed(4), nce: r.infoNCE.toFixed(4),
  lr: r.lr.toExponential(2), tps: Math.round(r.tokensPerSec), ips: r.imagesPerSec.toFixed(1),
});

/** "45s", "3m05s", "1h02m". */
export function formatEta(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

export function progress(stream: NodeJS.WriteStream = process.stderr, now: () => number = () => performance.now()): Progress {
  const tty = stream.isTTY === true;
  /** (step, ms) at the plain lines written so far, the last 6 (50 steps). */
  const pace: [number, number][] = [];
  let bar: cliProgress.SingleBar | null = null;
  let featBar: cliProgress.SingleBar | null = null;
  const stopFeat = () => {
    featBar?.stop();
    featBar = null;
  };
  return {
    features(done, total) {
      if (!tty) {
        if (done === total || done % 1024 < 32) stream.write(`features ${done}/${total}\n`);
        return;
      }
      featBar ??= new cliProgress.SingleBar({ stream, format: "features |{bar}| {value}/{total} images | ETA {eta_formatted}", hideCursor: true }, cliProgress.Presets.shades_classic);
      if (done <= 32) featBar.start(total, 0);
      featBar.update(done);
      if (done === total) stopFeat();
    },
    step(r, total) {
      if (!tty) {
        if (r.step % 10 === 0 || r.step === total || r.step === 1) {
          const f = fmt(r);
          const t = now();
          pace.push([r.step, t]);
          if (pace.length > 6) pace.shift();
          const [s0, t0] = pace[0]!;
          const eta = r.step > s0 && r.step < total ? ` ETA ${formatEta((((t - t0) / (r.step - s0)) * (total - r.step)) / 1000)}` : "";
          stream.write(`step ${r.step}/${total} epoch ${f.epoch} loss ${f.loss} lm ${f.lm} nce ${f.nce} lr ${f.lr} ${f.tps} tok/s${eta}\n`);
        }
        return;
      }
      stopFeat();
      if (!bar) {
        bar = new cliProgress.SingleBar(
          { stream, hideCursor: true, etaBuffer: 20, format: "step {value}/{total} |{bar}| epoch {epoch} | loss {loss} (lm {lm}, nce {nce}) | lr {lr} | {tps} tok/s | ETA {eta_formatted}" },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, r.step - 1, fmt(r));
      }
      bar.update(r.step, fmt(r));
    },
    log(message) {
      bar?.stop(); // the next step starts a fresh bar below the message
      bar = null;
      stopFeat();
      stream.write(`${message}\n`);
    },
    stop() {
      bar?.stop();
      stopFeat();
    },
  };
}
