// CLIP's side of `runParity` (parity.ts): loads the vision side of clip/ (CLIPVisionModel:
// vision_model.* + visual_projection), runs the stored pixel values, forms the fixture's loss
// L = Σ image_embeds·W + Σ last_hidden_state·V and back-propagates it. Every output comes back
// on the host under its reference.safetensors key; everything on the device is released.
// Shape letters: B batch, T = 1 + patches tokens, C hidden_size, E projection_dim, S image side.
import { type Tensor, ShapeError, tensor, tidy } from "@llms-eye/tensor";
import { ag, backward } from "@llms-eye/autograd";
import { CLIPVisionModel } from "./clip-vision.js";
import type { HostTensor } from "./safetensors.js";
import type { Output } from "./parity.js";

export interface CLIPParityInput {
  /** (B, 3, S, S) F32. */
  pixelValues: HostTensor;
  /** W, like image_embeds (B, E). */
  imageEmbedsWeight: HostTensor;
  /** V, like last_hidden_state (B, T, C). */
  lastHiddenStateWeight: HostTensor;
}

const f32 = (what: string, t: HostTensor): Tensor => {
  if (!(t.data instanceof Float32Array)) throw new ShapeError(`parity: expected ${what} as floats (F32, F16 or BF16), got ${t.dtype}`);
  return tensor(t.data, t.shape);
};
const host = async (t: Tensor, shape: readonly number[] = t.shape): Promise<Output> => ({ shape, data: (await t.toArray()) as Float32Array });
const same = (a: readonly number[], b: readonly number[]): boolean => a.join(",") === b.join(",");

/**
 * Runs the CLIP vision tower of `dir` (config.json + model.safetensors) on `input`: hidden_states.0 …
 * hidden_states.L, last_hidden_state, pooler_output, image_embeds, loss [1] and grad.<parameter>.
 */
export async function clipOutputs(dir: string, input: CLIPParityInput): Promise<Map<string, Output>> {
  const model = await CLIPVisionModel.fromPretrained(dir);
  const held: Tensor[] = [];
  try {
    const [last, pooled, embeds, loss, ...hidden] = tidy(() => {
      const o = model.forward(f32("pixel_values", input.pixelValues));
      const [emb, lhs] = [o.imageEmbeds!, o.lastHiddenState!]; // (B, E), (B, T, C)
      const { imageEmbedsWeight: W, lastHiddenStateWeight: V } = input;
      if (!same(W.shape, emb.shape) || !same(V.shape, lhs.shape)) {
        throw new ShapeError(`parity: expected loss_weight.image_embeds of shape [${emb.shape.join(", ")}] and loss_weight.last_hidden_state of shape [${lhs.shape.join(", ")}] (like the outputs), got [${W.shape.join(", ")}] and [${V.shape.join(", ")}]`);
      }
      const L = ag.add(ag.sum(ag.mul(emb, f32("loss_weight.image_embeds", W))), ag.sum(ag.mul(lhs, f32("loss_weight.last_hidden_state", V))));
      backward(L);
      return [lhs.value, o.poolerOutput!.value, emb.value, L.value, ...o.hiddenStates.map((h) => h.value)];
    });
    held.push(last!, pooled!, embeds!, loss!, ...hidden);
    const outputs = new Map<string, Output>();
    for (const [i, h] of hidden.entries()) outputs.set(`hidden_states.${i}`, await host(h));
    outputs.set("last_hidden_state", await host(last!));
    outputs.set("pooler_output", await host(pooled!));
    outputs.set("image_embeds", await host(embeds!));
    outputs.set("loss", await host(loss!, [1])); // the fixtures store scalars as [1]
    for (const [name, p] of model.namedParameters()) {
      outputs.set(`grad.${name}`, p.grad ? await host(p.grad) : { shape: p.value.shape, data: new Float32Array(p.value.size) });
    }
    model.zeroGrad();
    return outputs;
  } finally {
    held.forEach((t) => t.dispose());
    model.dispose();
  }
}
