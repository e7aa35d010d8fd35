// @llms-eye/autograd: reverse-mode automatic differentiation over @llms-eye/tensor.
export { Var, param, constant } from "./var.js";
export { apply, backward, noGrad, isRecording, type Node } from "./tape.js";
export { rules, unbroadcast, type Attrs, type Primitive, type Rule } from "./rules.js";
export * as ag from "./ops.js";
