// @llms-eye/autograd: reverse-mode automatic differentiation over @llms-eye/tensor.
export { Var, param, constant } from "./var.js";
export { apply, backward, noGrad, isRecording, type Node } from "./tape.js";
export { rules, unbroadcast, type Attrs, type Primitive, type Rule } from "./rules.js";
export * as ag from "./ops.js";
export { Module, StateDictError, type StateDict } from "./nn/module.js";
export { Linear, LayerNorm, Embedding, Dropout, GELU, skipInit, initParam, type InitOptions, type LinearLayout } from "./nn/layers.js";
export {
  Optimizer, optimizerStateToHost, optimizerStateFromHost, type ParamGroup, type ParamState, type OptimizerState, type HostOptimizerState,
} from "./optim/optimizer.js";
export { AdamW, SGD, decayGroups, type AdamWHyper, type SGDHyper } from "./optim/adamw.js";
export { clipCoef, clipGradNorm, gradNorm } from "./optim/clip.js";
export { lrFactor, lrAt, type Schedule } from "./optim/schedule.js";
