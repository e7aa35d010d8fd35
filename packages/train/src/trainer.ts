// `eye train` / `eye retrain`: the training loop of the eye model. Each optimizer step runs
// `accum` micro-batches (forward + backward, loss / accum), clips the gradient norm, sets the
// scheduled learning rates and updates with AdamW; it appends one line to log.jsonl. Every
// evalEvery steps the validation split is captioned and scored (evals.jsonl, report.html);
// every ckptEvery steps, at the end and on abort (Ctrl-C) a checkpoint is written atomically.
// `resume` continues a run exactly: weights, optimizer moments, step, and the loader position
// (the data order), so the resumed loss curve equals the uninterrupted one.
import { mkdir, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { type Tensor, concat, full, slice, tidy } from "@llms-eye/tensor";
import { AdamW, type Var, ag, backward, clipCoef, gradNorm, lrFactor } from "@llms-eye/autograd";
import { type EyeModel, buildEyeModel, eyeTokenizer, loadEyeModel, type ResolveOptions } from "@llms-eye/models";
import { Loader, type Batch } from "@llms-eye/data";
import { type TrainInput, type TrainOptions, OptionsError, resolveTrainOptions, SIZE_DEFAULTS } from "./options.js";
import { CheckpointError, pruneCheckpoints, readLatest, readTrainState, resolveCheckpoint, saveTrainCheckpoint, loadOptimizerState, LATEST_FILE, type TrainState } from "./checkpoint.js";
import { openDataset } from "./dataset.js";
import { imageInputs } from "./features.js";
import { evaluate } from "./evaluate.js";
import { writeReport } from "./report.js";
import { type StepRecord, RunLog } from "./run-log.js";

export interface TrainHooks {
  /** Messages for the user (stderr in the CLI). */
  log?: (message: string) => void;
  /** Called after every step (the CLI's progress bar). */
  onStep?: (r: StepRecord, total: number) => void;
  /** Called while features are extracted before training. */
  onFeatures?: (done: number, total: number) => void;
  /** When aborted, the current step finishes, a checkpoint is written and train returns. */
  signal?: AbortSignal;
  hub?: ResolveOptions;
}

export interface TrainResult {
  runDir: string;
  step: number;
  totalSteps: number;
  checkpoint: string;
  stopped: boolean;
  seconds: number;
}

export type TrainRequest = TrainInput & {
  resume?: boolean;
  /** retrain: start from this run or checkpoint's weights (a new optimizer and data order). */
  from?: string;
  /** Generate the shapes dataset at `data` when it is missing (tiny with no --data). */
  builtinShapes?: boolean;
};

/** Param groups: GPT-2 / projector + heads / vision, each with and without weight decay. */
function paramGroups(model: EyeModel, o: TrainOptions): { groups: ConstructorParameters<typeof AdamW>[0]; named: [string, Var][] } {
  const named = model.namedParameters().filter(([, p]) => p.requiresGrad);
  const groups = [
    { prefix: "language_model.", lr: o.lr },
    { prefix: "vision_model.", lr: o.visionLr },
    { prefix: "", lr: o.projectorLr },
  ].flatMap(({ prefix, lr }) => {
    const mine = named.filter(([n]) => (prefix ? n.startsWith(prefix) : !n.startsWith("language_model.") && !n.startsWith("vision_model.")));
    return [
      { params: mine.filter(([, p]) => p.shape.length >= 2).map(([, p]) => p), lr, weightDecay: o.weightDecay },
      { params: mine.filter(([, p]) => p.shape.length < 2).map(([, p]) => p), lr, weightDecay: 0 },
    ];
  });
  const order = groups.flatMap((g) => g.params);
  const name = new Map(named.map(([n, p]) => [p, n]));
  return { groups, named: order.map((p) => [name.get(p)!, p]) };
}

const isDefaultShapes = (o: TrainOptions, req: TrainRequest) => req.builtinShapes ?? (o.size === "tiny" && o.data === SIZE_DEFAULTS.tiny.data);

/** Trains (or resumes, or retrains) and returns where the run stands. */
export async function train(req: TrainRequest, hooks: TrainHooks = {}): Promise<TrainResult> {
  const log = hooks.log ?? (() => {});
  const started = performance.now();
  let o: TrainOptions;
  let model: EyeModel;
  let preprocessor: Record<string, unknown>;
  let resumeFrom: string | null = null;
  let resumeState: TrainState | null = null;
  if (req.resume) {
    const runDir = req.out ?? `runs/${req.size}`;
    resumeFrom = await readLatest(runDir);
    const state = (resumeState = await readTrainState(resumeFrom));
    if (req.size && req.size !== state.options.size) {
      throw new CheckpointError(`train: expected --size ${state.options.size} to resume ${runDir} (its checkpoints are that size), got --size ${req.size}; drop --size or pass another --out`);
    }
    o = { ...state.options, ...(req.steps ? { steps: req.steps } : {}) };
  } else {
    const { resume: _r, from: _f, builtinShapes: _b, ...input } = req;
    o = resolveTrainOptions(input);
    if (await stat(join(o.out, LATEST_FILE)).then(() => true, () => false)) {
      throw new OptionsError(`train: ${o.out} already holds a run (${LATEST_FILE}); continue it with \`pnpm eye train --resume --out ${o.out}\` or pass another --out`);
    }
  }
  // the data first: a missing dataset is reported before any weights are downloaded
  const dataset = await openDataset(o.data, { builtinShapes: !req.resume && isDefaultShapes(o, req), log });
  if (resumeFrom) ({ model, preprocessor } = await loadEyeModel(resumeFrom));
  else if (req.from) {
    const ckpt = await resolveCheckpoint(req.from);
    ({ model, preprocessor } = await loadEyeModel(ckpt));
    if (model._cfg.size !== o.size) throw new CheckpointError(`retrain: expected a ${o.size} checkpoint, got a ${model._cfg.size} one in ${ckpt}; pass --size ${model._cfg.size}`);
    log(`retraining from ${ckpt}`);
  } else ({ model, preprocessor } = await buildEyeModel(o.size, { seed: o.seed, ...hooks.hub }));
  model.setVisionTrainable(o.unfreezeVision);
  model.language_model.requiresGrad(!o.freezeLlm);
  model.train();
  const runDir = o.out;
  await mkdir(runDir, { recursive: true });
  await writeFile(join(runDir, "train.json"), `${JSON.stringify(o, null, 2)}\n`);

  const tok = await eyeTokenizer();
  const trainIdx = dataset.split("train");
  if (trainIdx.length === 0) throw new OptionsError(`train: expected records with split "train" in ${dataset.file}, got none`);
  const evalIdx = (dataset.split("val").length ? dataset.split("val") : dataset.split("test")).slice(0, o.evalImages);
  if (evalIdx.length === 0) log(`no val or test images in ${dataset.file}: evaluations are skipped`);
  const maxTokens = Math.min(o.maxTokens ?? Infinity, model._cfg.gpt2.nPositions - model.K - 1);
  const loader = new Loader(trainIdx.map((i) => dataset.records[i]!), {
    batchSize: o.batchSize, seed: o.seed, captions: o.captions, tokenize: (s) => tok.encode(s), padId: model._cfg.eosTokenId, maxTokens, dropLast: true,
  });
  const totalSteps = o.steps ?? Math.max(1, Math.ceil(o.epochs * loader.stepsPerEpoch));
  const { groups, named } = paramGroups(model, o);
  const opt = new AdamW(groups, { lr: o.lr, beta2: 0.98 });
  const runLog = new RunLog(runDir);
  let step = 0;
  let elapsed = 0;
  if (resumeFrom && resumeState) {
    const state = resumeState;
    await loadOptimizerState(resumeFrom, state, opt, named);
    loader.restore(state.loader);
    step = state.step;
    elapsed = state.elapsed;
    await runLog.truncateAfter(step);
    log(`resuming ${runDir} at step ${step} of ${totalSteps}`);
  } else await runLog.reset();

  const inputs = await imageInputs(model, dataset, preprocessor, { ...(o.workers ? { workers: o.workers } : {}), ...(hooks.onFeatures ? { onProgress: hooks.onFeatures } : {}) });
  let checkpoint = resumeFrom ?? "";
  let stopped = false;
  try {
    if (!inputs.live) {
      const t = performance.now();
      await inputs.prepare([...trainIdx, ...evalIdx]);
      log(`image features: ${trainIdx.length + evalIdx.length} images ready in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    }
    const save = async () => {
      checkpoint = await saveTrainCheckpoint({
        runDir, model, preprocessor, optimizer: opt, named,
        state: { step, totalSteps, loader: consumed, options: o, elapsed },
      });
      await pruneCheckpoints(runDir, o.keep);
    };
    const doEval = async () => {
      if (evalIdx.length === 0) return;
      const t = performance.now();
      const r = await evaluate(model, tok, dataset, evalIdx, inputs, { samples: 8 });
      await runLog.eval({ step, ...r.summary });
      await writeReport(runDir).catch((e: Error) => log(`report: ${e.message}`));
      const so = r.summary.singleObject;
      log(`eval @${step}: CIDEr ${r.summary.metrics.CIDEr.toFixed(3)}  BLEU-4 ${r.summary.metrics.Bleu_4.toFixed(3)}  R@1 i→t ${r.summary.retrieval.i2t[1].toFixed(3)}${so ? `  single objects named ${so.correct}/${so.images}` : ""}  (${((performance.now() - t) / 1000).toFixed(1)} s)`);
    };
    // the loader position after the last batch a completed step consumed (a checkpoint stores
    // this one, not the position after the batch already prefetched for the next step)
    let consumed = loader.position();
    let next: Promise<{ batch: Batch; x: Tensor; after: ReturnType<typeof loader.position> }> | null = null;
    const fetch = () => {
      const batch = loader.next();
      const after = loader.position();
      return inputs.get(batch.items.map((i) => trainIdx[i]!)).then((x) => ({ batch, x, after }));
    };
    while (step < totalSteps && !hooks.signal?.aborted) {
      const t0 = performance.now();
      const { batch, x, after } = await (next ?? fetch());
      const dataWait = (performance.now() - t0) / 1000;
      next = step + 1 < totalSteps ? fetch() : null; // the next batch's images decode while this step runs
      const rows = Array.from({ length: batch.shape[0] }, (_, b) => Array.from(batch.tokens.subarray(b * batch.shape[1], b * batch.shape[1] + batch.lengths[b]!)));
      opt.setLrFactor(lrFactor(step, { warmupSteps: Math.min(o.warmup, totalSteps), totalSteps, decay: o.schedule, minRatio: o.minLrRatio }));
      const micro = o.batchSize / o.accum;
      const parts: Tensor[] = [];
      for (let a = 0; a < o.accum; a++) {
        parts.push(
          tidy(() => {
            const xs = o.accum === 1 ? x : slice(x, [a * micro], [(a + 1) * micro]);
            const feats = inputs.live ? model.imageFeatures(xs) : xs;
            const out = model.forward(feats, rows.slice(a * micro, (a + 1) * micro), { lambda: o.lambda });
            backward(o.accum === 1 ? out.loss : ag.mul(out.loss, full([1], 1 / o.accum)));
            return concat([out.loss.value, out.lm.value, out.infoNCE?.value ?? full([1], 0)], 0);
          }),
        );
      }
      // the gradient norm is read here, so clipping is a factor of the update kernel (no pass over the gradients)
      const figures = tidy(() => concat([...parts, gradNorm(named.map(([, p]) => p))], 0));
      parts.forEach((t) => t.dispose());
      const v = (await figures.toArray()) as Float32Array;
      figures.dispose();
      x.dispose();
      const mean = (k: number) => Array.from({ length: o.accum }, (_, a) => v[a * 3 + k]!).reduce((s, y) => s + y, 0) / o.accum;
      const norm = v[3 * o.accum]!;
      // checked before the update, so the weights stay as they were
      if (!Number.isFinite(mean(0)) || !Number.isFinite(norm)) {
        throw new Error(`train: the loss became ${mean(0)} (gradient norm ${norm}) at step ${step + 1}; lower --lr (now ${o.lr}) or --projector-lr (now ${o.projectorLr})`);
      }
      opt.step({ gradScale: clipCoef(norm, o.clipNorm) });
      opt.zeroGrad();
      step++;
      consumed = after;
      const dt = (performance.now() - t0) / 1000;
      elapsed += dt;
      const tokens = batch.lengths.reduce((s, l) => s + l + 1, 0);
      const rec: StepRecord = {
        step, epoch: after.epoch + after.index / Math.max(1, after.units),
        loss: mean(0), lm: mean(1), infoNCE: mean(2), lr: opt.groups[0]!.lr, projectorLr: opt.groups[opt.groups.length - 2]!.lr, gradNorm: norm,
        tokensPerSec: tokens / dt, imagesPerSec: batch.shape[0] / dt, seconds: dt, dataWait, elapsed,
      };
      await runLog.step(rec);
      hooks.onStep?.(rec, totalSteps);
      const last = step === totalSteps;
      if ((o.evalEvery > 0 && step % o.evalEvery === 0) || last) await doEval();
      if ((o.ckptEvery > 0 && step % o.ckptEvery === 0) || last) await save();
    }
    if (next) (await next).x.dispose();
    if (hooks.signal?.aborted && step < totalSteps) {
      stopped = true;
      await save();
      log(`stopped at step ${step}; continue with \`pnpm eye train --resume --out ${runDir}\``);
    }
  } finally {
    await inputs.close();
    await runLog.close();
    opt.dispose();
  }
  return { runDir: resolve(runDir), step, totalSteps, checkpoint, stopped, seconds: (performance.now() - started) / 1000 };
}
