// <run>/report.html: one self-contained page that works offline — Chart.js inlined, sample
// images embedded as small JPEG data URIs. Loss curves (total, LM, InfoNCE) and learning rate
// per step, evaluation metrics over time, and each evaluation's sample images with their
// generated and reference captions. Rewritten after every evaluation (atomically).
import { readFile, rename, stat, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import sharp from "sharp";
import { CheckpointError } from "./checkpoint.js";
import { type EvalRecord, LOG_FILE, type StepRecord, readRunLogs } from "./run-log.js";

export const REPORT_FILE = "report.html";

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
/** JSON for a <script> block: `<` escaped so no caption can close the tag. */
const scriptJson = (v: unknown): string => JSON.stringify(v).replace(/</g, "\\u003c");

let chartJs: string | null = null;
async function chartLibrary(): Promise<string> {
  // the UMD bundle (not in chart.js's exports map): beside the package's CommonJS entry, dist/chart.cjs
  chartJs ??= await readFile(join(dirname(createRequire(import.meta.url).resolve("chart.js")), "chart.umd.min.js"), "utf8");
  return chartJs;
}

/** A ≤160 px JPEG data URI of an image file, or null when it cannot be read (shown as missing). */
async function thumbnail(file: string): Promise<string | null> {
  try {
    const buf = await sharp(file).resize(160, 160, { fit: "inside" }).flatten({ background: "#ffffff" }).jpeg({ quality: 80 }).toBuffer();
    return `data:image/jpeg;base64,${buf.toString("base64")}`;
  } catch {
    return null;
  }
}

/** Every k-th point so a long run's curve stays a few thousand points. */
function thin<T>(xs: T[], max = 2000): T[] {
  const k = Math.ceil(xs.length / max);
  return k <= 1 ? xs : xs.filter((_, i) => i % k === 0 || i === xs.length - 1);
}

function metricsTable(evals: EvalRecord[]): string {
  if (evals.length === 0) return "<p>No evaluation yet.</p>";
  const head = ["step", "images", "BLEU-1", "BLEU-4", "ROUGE-L", "CIDEr", "R@1 i→t", "R@5 i→t", "R@1 t→i", "R@5 t→i"];
  const rows = evals.map((e) =>
    [e.step, e.images, e.metrics.Bleu_1, e.metrics.Bleu_4, e.metrics.ROUGE_L, e.metrics.CIDEr, e.retrieval.i2t[1], e.retrieval.i2t[5], e.retrieval.t2i[1], e.retrieval.t2i[5]]
      .map((v, i) => `<td>${i < 2 ? v : (v as number).toFixed(3)}</td>`)
      .join(""),
  );
  return `<table><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr>${rows.map((r) => `<tr>${r}</tr>`).join("")}</table>`;
}

async function samplesHtml(evals: EvalRecord[]): Promise<string> {
  const parts: string[] = [];
  for (const e of [...evals].reverse()) {
    const cards = await Promise.all(
      e.samples.map(async (s) => {
        const src = await thumbnail(s.image);
        const img = src ? `<img class="sample" src="${src}" alt="${esc(s.caption)}">` : `<div class="missing">image not found: ${esc(s.image)}</div>`;
        return `<figure>${img}<figcaption><b>${esc(s.caption || "(empty)")}</b><br><small>${s.references.slice(0, 2).map(esc).join("<br>")}</small></figcaption></figure>`;
      }),
    );
    parts.push(`<h3>step ${e.step}</h3><div class="grid">${cards.join("")}</div>`);
  }
  return parts.join("\n");
}

/** The page for a run's logs. */
export async function renderReport(title: string, steps: StepRecord[], evals: EvalRecord[]): Promise<string> {
  const s = thin(steps);
  const data = {
    steps: s.map((r) => r.step),
    loss: s.map((r) => r.loss),
    lm: s.map((r) => r.lm),
    nce: s.map((r) => r.infoNCE),
    lr: s.map((r) => r.lr),
    evalSteps: evals.map((e) => e.step),
    cider: evals.map((e) => e.metrics.CIDEr),
    bleu4: evals.map((e) => e.metrics.Bleu_4),
    rouge: evals.map((e) => e.metrics.ROUGE_L),
    i2t: evals.map((e) => e.retrieval.i2t[1]),
    t2i: evals.map((e) => e.retrieval.t2i[1]),
  };
  const last = steps[steps.length - 1];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:24px;max-width:1200px;color:#222}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(360px,1fr));gap:16px}
.chart{position:relative;height:280px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
.grid{display:flex;flex-wrap:wrap;gap:12px}figure{width:170px;margin:0}img.sample{width:160px;border:1px solid #ddd}
figcaption{font-size:12px}.missing{width:160px;height:100px;background:#eee;font-size:11px}
</style></head><body>
<h1>${esc(title)}</h1>
<p>${last ? `step ${last.step}, epoch ${last.epoch.toFixed(2)}, ${(last.elapsed / 60).toFixed(1)} min of training, last loss ${last.loss.toFixed(4)}` : "no steps yet"}</p>
<div class="charts">
<div class="chart"><canvas id="loss"></canvas></div>
<div class="chart"><canvas id="lr"></canvas></div>
<div class="chart"><canvas id="captioning"></canvas></div>
<div class="chart"><canvas id="retrieval"></canvas></div>
</div>
<h2>Evaluations</h2>
${metricsTable(evals)}
<h2>Samples</h2>
${await samplesHtml(evals)}
<script>${await chartLibrary()}</script>
<script>
const D = ${scriptJson(data)};
Chart.defaults.animation = false;
const line = (id, labels, sets, title, xTitle) => new Chart(document.getElementById(id), {
  type: "line",
  data: { labels, datasets: sets.map(([label, data]) => ({ label, data, pointRadius: labels.length > 50 ? 0 : 2, borderWidth: 1.5 })) },
  options: { responsive: true, maintainAspectRatio: false, plugins: { title: { display: true, text: title } }, scales: { x: { title: { display: true, text: xTitle } } } },
});
line("loss", D.steps, [["total", D.loss], ["LM", D.lm], ["InfoNCE", D.nce]], "Training loss", "step");
line("lr", D.steps, [["GPT-2 lr", D.lr]], "Learning rate", "step");
line("captioning", D.evalSteps, [["CIDEr-D", D.cider], ["BLEU-4", D.bleu4], ["ROUGE-L", D.rouge]], "Caption metrics (validation)", "step");
line("retrieval", D.evalSteps, [["R@1 image→text", D.i2t], ["R@1 text→image", D.t2i]], "Retrieval (validation)", "step");
// what rendered, for readers and for the headless-browser test: charts with painted pixels, images decoded
const charts = Object.values(Chart.instances);
document.body.dataset.charts = String(charts.length);
document.body.dataset.paintedCharts = String(charts.filter((c) => {
  const d = c.canvas.getContext("2d").getImageData(0, 0, c.canvas.width, c.canvas.height).data;
  let n = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) n++;
  return n > 500;
}).length);
window.addEventListener("load", () => {
  const imgs = [...document.images];
  document.body.dataset.imagesLoaded = String(imgs.filter((i) => i.complete && i.naturalWidth > 0).length);
  document.body.dataset.images = String(imgs.length);
});
</script>
</body></html>
`;
}

/** Writes <runDir>/report.html from the run's logs; returns its path. */
export async function writeReport(runDir: string, title = `llm's eye — ${runDir}`): Promise<string> {
  if (!(await stat(join(runDir, LOG_FILE)).then((s) => s.isFile(), () => false))) {
    throw new CheckpointError(`report: expected a run directory with ${LOG_FILE} at ${runDir}, got none; train one with \`pnpm eye train --size tiny --out ${runDir}\``);
  }
  const { steps, evals } = await readRunLogs(runDir);
  const file = join(runDir, REPORT_FILE);
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, await renderReport(title, steps, evals));
  await rename(tmp, file);
  return file;
}
