import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/index.ts"],
  format: ["esm"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
  external: ["webgpu", "@llms-eye/tensor", "@llms-eye/autograd", "@huggingface/tokenizers", "cli-progress"],
});
