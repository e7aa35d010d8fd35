// The worker-thread side of pool.ts: one task = one image (path or bytes) through
// CLIPImageProcessor; the float32 pixel values go back by transfer, not by copy. Built as its
// own entry (dist/image/worker.js); from sources it runs under tsx (pool.ts passes --import).
import { move } from "piscina";
import { type ClipImageConfig, CLIPImageProcessor } from "./clip-processor.js";

export interface PreprocessTask {
  input: string | Uint8Array;
  config: ClipImageConfig;
}

// Processors by settings: a pool serves one config, but a worker may outlive it.
const processors = new Map<string, CLIPImageProcessor>();

export default async function preprocessTask({ input, config }: PreprocessTask): Promise<Float32Array> {
  const key = JSON.stringify(config);
  let p = processors.get(key);
  if (!p) processors.set(key, (p = new CLIPImageProcessor(config)));
  return move(await p.preprocess(input)) as Float32Array;
}
