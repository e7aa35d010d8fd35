// The vitest config of every package that talks to the GPU (each package's vitest.config.ts
// re-exports it). One forked process runs the files one after another: each process owns one
// Dawn device, and lavapipe already spreads a dispatch over every core.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    pool: "forks",
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ["default", ["json", { outputFile: "test-results.json" }]],
  },
});
