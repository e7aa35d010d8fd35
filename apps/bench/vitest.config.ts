import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// One forked process (it owns one Dawn device). The engine is used from its sources, as
// `pnpm bench` does through tsconfig "paths", so no build is needed (autograd and models likewise).
export default defineConfig({
  resolve: {
    alias: {
      "@llms-eye/tensor": fileURLToPath(new URL("../../packages/tensor/src/index.ts", import.meta.url)),
      "@llms-eye/autograd": fileURLToPath(new URL("../../packages/autograd/src/index.ts", import.meta.url)),
      "@llms-eye/models": fileURLToPath(new URL("../../packages/models/src/index.ts", import.meta.url)),
      "@llms-eye/data": fileURLToPath(new URL("../../packages/data/src/index.ts", import.meta.url)),
    },
  },
  test: {
    include: ["test/**/*.test.ts"],
    pool: "forks",
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ["default", ["json", { outputFile: "test-results.json" }]],
  },
});
