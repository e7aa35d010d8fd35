// @llms-eye/train: training, evaluation, captioning and the report of the eye model — the
// functions behind `eye train | retrain | caption | eval | report`.
export { TrainOptionsSchema, SIZE_DEFAULTS, OptionsError, resolveTrainOptions, type TrainOptions, type TrainInput } from "./options.js";
export {
  CheckpointError, STATE_FILE, OPTIMIZER_FILE, LATEST_FILE, checkpointName, saveTrainCheckpoint, pruneCheckpoints, readLatest, resolveCheckpoint,
  readTrainState, loadOptimizerState, type TrainState,
} from "./checkpoint.js";
export { DataError, datasetFile, openDataset, type Dataset } from "./dataset.js";
export { imageInputs, pixelsOf, visionFingerprint, type ImageInputs, type FeatureOptions } from "./features.js";
export { LOG_FILE, EVALS_FILE, RunLog, readRunLogs, type StepRecord, type EvalRecord, type EvalSample } from "./run-log.js";
export { evaluate, captionOptions, captionFeatures, featuresOf, singleObjectGrounding, type EvalOptions, type EvalOutput } from "./evaluate.js";
export { REPORT_FILE, renderReport, writeReport } from "./report.js";
export { train, type TrainHooks, type TrainResult, type TrainRequest } from "./trainer.js";
export { loadRun, runSize, captionImages, evalRun, type LoadedRun, type EvalRunOptions, type EvalRunResult } from "./caption.js";
