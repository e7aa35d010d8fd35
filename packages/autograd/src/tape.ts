// The tape: apply() runs a primitive's forward and, when an input requires a gradient and
// recording is on, links the output to a Node holding what the backward rule saved.
// backward() walks the nodes in reverse topological order from a scalar loss. Work is done
// only for inputs that require a gradient (frozen parameters and the subgraphs that only
// feed them cost nothing), and each node's saved tensors and incoming gradient are released
// as soon as its rule has run. Saved tensors are views, so releasing them frees memory only
// once the forward values are released too (wrap a training step in tidy()).
import { type Tensor, ShapeError, add, ones } from "@llms-eye/tensor";
import { type Attrs, type Primitive, type Rule, rules } from "./rules.js";
import { Var } from "./var.js";

export interface Node {
  readonly op: Primitive;
  readonly inputs: readonly Var[];
  readonly attrs: unknown;
  saved: Tensor[];
}

let recording = true;

/** Runs `fn` without recording: the Vars it makes have no node and no gradient. */
export function noGrad<T>(fn: () => T): T {
  const was = recording;
  recording = false;
  try {
    return fn();
  } finally {
    recording = was;
  }
}

export const isRecording = (): boolean => recording;

/** Applies primitive `op` to `inputs`; the output requires a gradient if any input does. */
export function apply<P extends Primitive>(op: P, inputs: readonly Var[], attrs: Attrs[P]): Var {
  const rule = rules[op];
  const { out, save } = rule.forward(
    inputs.map((v) => v.value),
    attrs,
  );
  const needs = recording && inputs.some((v) => v.requiresGrad);
  if (!needs) {
    for (const t of save) t.dispose();
    return new Var(out, false);
  }
  return new Var(out, true, { op, inputs, attrs, saved: save });
}

function topoOrder(root: Var): Var[] {
  const order: Var[] = [];
  const seen = new Set<Var>();
  const stack: [Var, boolean][] = [[root, false]];
  while (stack.length > 0) {
    const [v, done] = stack.pop()!;
    if (done) {
      order.push(v);
      continue;
    }
    if (seen.has(v)) continue;
    seen.add(v);
    stack.push([v, true]);
    for (const u of v.node?.inputs ?? []) if (u.requiresGrad && !seen.has(u)) stack.push([u, false]);
  }
  return order; // inputs before outputs
}

function accumulate(into: Map<Var, Tensor>, v: Var, g: Tensor): void {
  const prev = into.get(v);
  if (!prev) into.set(v, g);
  else {
    into.set(v, add(prev, g));
    prev.dispose();
    g.dispose();
  }
}

/**
 * Back-propagates from `loss` (one element) and adds d loss / d leaf into `leaf.grad` for every
 * leaf that requires a gradient. The graph is consumed: its saved tensors are released.
 */
export function backward(loss: Var): void {
  if (loss.value.size !== 1) {
    throw new ShapeError(`backward: expected a loss of one element, got shape [${loss.shape.join(", ")}]`);
  }
  if (!loss.requiresGrad) throw new ShapeError("backward: expected a loss that depends on a Var requiring a gradient, got a constant");
  const grads = new Map<Var, Tensor>([[loss, ones(loss.shape)]]);
  const order = topoOrder(loss);
  for (let i = order.length - 1; i >= 0; i--) {
    const v = order[i]!;
    const g = grads.get(v);
    grads.delete(v);
    const node = v.node;
    if (!node) {
      if (g) {
        const total = v.grad ? add(v.grad, g) : g;
        if (v.grad) {
          v.grad.dispose();
          g.dispose();
        }
        v.grad = total.keep();
      }
      continue;
    }
    if (g) {
      const needs = node.inputs.map((u) => u.requiresGrad);
      const rule = rules[node.op] as Rule<unknown>;
      const gs = rule.backward(g, node.saved, node.attrs, needs, node.inputs.map((u) => u.shape));
      g.dispose();
      node.inputs.forEach((u, j) => {
        const gj = gs[j];
        if (gj && needs[j]) accumulate(grads, u, gj);
        else gj?.dispose();
      });
    }
    for (const t of node.saved) t.dispose();
    node.saved = [];
  }
  for (const g of grads.values()) g.dispose();
}

export { Var };
