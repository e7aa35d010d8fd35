// The kernel families, by --only name. Each loads lazily, so one that fails to load (an op
// not built yet) does not stop the others.
import type { Family } from "./bench.js";

export const FAMILIES: Record<string, () => Promise<Family>> = {
  probes: async () => (await import("./probes.js")).family,
  matmul: async () => (await import("./matmul.js")).family,
  attention: async () => (await import("./attention.js")).family,
  layernorm: async () => (await import("./layernorm.js")).family,
  "cross-entropy": async () => (await import("./cross-entropy.js")).family,
  infonce: async () => (await import("./infonce.js")).family,
  adamw: async () => (await import("./adamw.js")).family,
  "train-step": async () => (await import("./train-step.js")).family,
  load: async () => (await import("./load.js")).family,
  "caption-metrics": async () => (await import("./caption-metrics.js")).family,
  preprocess: async () => (await import("./preprocess.js")).family,
};
