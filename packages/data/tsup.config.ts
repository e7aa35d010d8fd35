// The data package's build: packageBuild's options (../../tsup.package.ts) with a second entry,
// the worker of the image preprocessing pool (src/image/worker.ts → dist/image/worker.js), which
// pool.ts starts by path.
import { defineConfig } from "tsup";

export default defineConfig({
  entry: { index: "src/index.ts", "image/worker": "src/image/worker.ts" },
  format: ["esm"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
  external: ["webgpu", "sharp", "@llms-eye/tensor", "@llms-eye/autograd", "@llms-eye/models"],
});
