import { packageBuild } from "../../tsup.package.js";

export default packageBuild(["webgpu", "sharp", "chart.js", "cli-progress", "zod", "@llms-eye/tensor", "@llms-eye/autograd", "@llms-eye/models", "@llms-eye/data"]);
