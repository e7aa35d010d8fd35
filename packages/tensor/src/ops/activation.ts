// Activations shared by the elementwise ops and the matmul epilogue: one WGSL function and
// one float64 reference each, so the fused and unfused forms cannot drift apart.
//   gelu      — tanh form, as GPT-2's "gelu_new": 0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))
//   quickGelu — CLIP's: x·σ(1.702x)
//   relu      — max(x, 0)

export type Activation = "none" | "gelu" | "quickGelu" | "relu";

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** WGSL: `fn act_<name>(x: f32) -> f32` for every activation. */
export const ACTIVATION_WGSL = `
fn act_none(x: f32) -> f32 { return x; }
fn act_relu(x: f32) -> f32 { return max(x, 0.0); }
fn act_gelu(x: f32) -> f32 {
  // tanh written through exp so large |u| saturates instead of overflowing
  let u = ${SQRT_2_OVER_PI} * (x + 0.044715 * x * x * x);
  let e = exp(-2.0 * abs(u));
  let t = sign(u) * (1.0 - e) / (1.0 + e);
  return 0.5 * x * (1.0 + t);
}
fn act_quickGelu(x: f32) -> f32 { return x / (1.0 + exp(-1.702 * x)); }
`;

export const activationRef: Record<Activation, (x: number) => number> = {
  none: (x) => x,
  relu: (x) => Math.max(x, 0),
  gelu: (x) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x ** 3))),
  quickGelu: (x) => x / (1 + Math.exp(-1.702 * x)),
};

export const ACTIVATIONS: readonly Activation[] = ["none", "gelu", "quickGelu", "relu"];
