"""The PyTorch peer of `pnpm bench` (run by torch.ts with Debian's /usr/bin/python3).

Usage: torch_peer.py '<OpSpec JSON>' '<Timing JSON>'  ->  prints {"median_ms": ..., "runs": ..., "threads": ...}

Each OpSpec is built from torch ops on the CPU (float32): the same math as our kernels and as
the tfjs peer. The timing mirrors harness.ts timeRuns: `warmup` runs, then as many runs as fit
in `budgetMs` (at least `minRuns`, at most `runs`); the median wall time is reported. It runs
on every core (Debian's torch starts with one thread); torch.ts's probe sets the same count.
"""
import functools
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

# Inter-op threads are left alone: set_num_interop_threads raises once parallel work has
# started, and eager ops on one tensor do not use that pool.
torch.set_num_threads(os.cpu_count() or 1)


def build(spec):
    op = spec["op"]
    g = torch.Generator().manual_seed(0)
    randn = lambda *shape, std=1.0: torch.randn(*shape, generator=g) * std
    if op == "matmul":
        if spec.get("transA"):
            a = randn(spec["k"], spec["m"])
            b = randn(spec["k"], spec["n"])
            return lambda: a.t() @ b
        a = randn(spec["m"], spec["k"])
        if spec["transB"]:
            b = randn(spec["n"], spec["k"])
            return lambda: a @ b.t()
        b = randn(spec["k"], spec["n"])
        return lambda: a @ b
    if op == "attention":
        shape = (spec["b"], spec["h"], spec["t"], spec["dh"])
        q, k, v = randn(*shape), randn(*shape), randn(*shape)
        scale = 1 / math.sqrt(spec["dh"])
        t = spec["t"]
        mask = torch.triu(torch.full((t, t), float("-inf")), 1) if spec["causal"] else None

        def run():
            s = (q @ k.transpose(-1, -2)) * scale
            if mask is not None:
                s = s + mask
            return torch.softmax(s, -1) @ v

        return run
    if op == "layernorm":
        x, w, b = randn(spec["n"], spec["c"]), randn(spec["c"]), randn(spec["c"])
        return lambda: F.layer_norm(x, (spec["c"],), w, b, 1e-5)
    if op == "softmax":
        x = randn(spec["n"], spec["v"])
        return lambda: torch.softmax(x, -1)
    if op == "cross-entropy":
        logits = randn(spec["n"], spec["v"])
        targets = torch.randint(0, spec["v"], (spec["n"],), generator=g)
        return lambda: F.cross_entropy(logits, targets)
    if op == "infonce":
        img, txt = randn(spec["b"], spec["e"]), randn(spec["b"], spec["e"])
        log_scale = torch.tensor(math.log(1 / 0.07))
        labels = torch.arange(spec["b"])

        def run():
            logits = log_scale.exp() * F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).t()
            return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2

        return run
    if op == "adamw":
        params = [torch.nn.Parameter(randn(*s, std=0.02)) for s in spec["shapes"]]
        for p in params:
            p.grad = randn(*p.shape, std=0.01)
        opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01, foreach=True)
        return opt.step
    if op == "train_step_gpt2":
        return gpt2_step(spec)
    if op == "train_step_eye":
        return eye_step(spec)
    raise ValueError(f"torch peer: unknown op {op}")


@functools.lru_cache(maxsize=None)
def causal_mask(T):
    return torch.triu(torch.full((T, T), float("-inf")), 1)


class Block(torch.nn.Module):
    """A GPT-2 block (pre-LN, causal attention, tanh GELU) on (B, T, C) of any T."""

    def __init__(self, C, H):
        super().__init__()
        self.C, self.H = C, H
        self.ln_1, self.ln_2 = torch.nn.LayerNorm(C), torch.nn.LayerNorm(C)
        self.c_attn, self.attn_proj = torch.nn.Linear(C, 3 * C), torch.nn.Linear(C, C)
        self.c_fc, self.mlp_proj = torch.nn.Linear(C, 4 * C), torch.nn.Linear(4 * C, C)

    def forward(self, x):
        B, T, C = x.shape
        H = self.H
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (z.view(B, T, H, C // H).transpose(1, 2) for z in (q, k, v))
        att = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(C // H) + causal_mask(T), -1)
        x = x + self.attn_proj((att @ v).transpose(1, 2).reshape(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT2(torch.nn.Module):
    """GPT2LMHeadModel's math (tied LM head), HF's init (normal 0.02 for matrices)."""

    def __init__(self, L, C, H, V, P):
        super().__init__()
        self.wte, self.wpe = torch.nn.Embedding(V, C), torch.nn.Embedding(P, C)
        self.h = torch.nn.ModuleList(Block(C, H) for _ in range(L))
        self.ln_f = torch.nn.LayerNorm(C)
        for p in self.parameters():
            if p.dim() >= 2:
                torch.nn.init.normal_(p, std=0.02)

    def hidden(self, embeds):
        """ln_f(blocks(embeds + positions)) for input embeddings (B, T, C)."""
        x = embeds + self.wpe(torch.arange(embeds.shape[1]))
        for block in self.h:
            x = block(x)
        return self.ln_f(x)

    def logits(self, h):
        return h @ self.wte.weight.t()


def decay_groups(params, weight_decay, **extra):
    params = list(params)
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay, **extra},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0, **extra},
    ]


def train_step(model_loss, opt):
    def step():
        loss = model_loss()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    return step


def gpt2_step(spec):
    """GPT2LMHeadModel's math (pre-LN, tanh GELU, tied LM head), random init, AdamW."""
    L, C, H, V, B, T = (spec[k] for k in ("layers", "width", "heads", "vocab", "batch", "seq"))
    torch.manual_seed(1)
    model = GPT2(L, C, H, V, spec["positions"])
    opt = torch.optim.AdamW(decay_groups(model.parameters(), 0.1), lr=6e-4, foreach=True)
    data = torch.randint(0, V, (B, T + 1))
    ids, targets = data[:, :-1].contiguous(), data[:, 1:].contiguous()
    return train_step(lambda: F.cross_entropy(model.logits(model.hidden(model.wte(ids))).view(B * T, V), targets.view(-1)), opt)


# eye-step.ts EYE_OPT: mini's AdamW settings in `eye train`.
EYE_OPT = {"lr": 5e-5, "projector_lr": 1e-3, "weight_decay": 0.01, "beta2": 0.98}


def eye_step(spec):
    """EyeModel.forward(features, captions, lambda=1) on cached features + backward + AdamW.

    Caption pass: GPT-2 on K projected image tokens (in place of the <image> placeholders),
    L caption tokens, <|endoftext|>; LM head only at the L + 1 target rows of each caption.
    Contrastive pass: caption, <|endoftext|>, <image>; text embedding = text_head(ln_f state at
    the trailing <image>), image embedding = image_head(mean of the K tokens); symmetric InfoNCE
    over exp(min(s, ln 100))·normalize(img) @ normalize(txt).T. The frozen vision tower is not built.
    """
    L, C, H, V, P, B = (spec[k] for k in ("layers", "width", "heads", "vocab", "positions", "batch"))
    K, Dv, Lc, E = (spec[k] for k in ("imageTokens", "visionWidth", "captionLen", "embedDim"))
    image_id, eos_id = V - 1, V - 2
    torch.manual_seed(1)
    llm = GPT2(L, C, H, V, P)
    proj = torch.nn.Sequential(torch.nn.Linear(Dv, C), torch.nn.GELU(approximate="tanh"), torch.nn.Linear(C, C))
    image_head, text_head = torch.nn.Linear(C, E), torch.nn.Linear(C, E)
    logit_scale = torch.nn.Parameter(torch.tensor([math.log(1 / 0.07)]))
    rest = [*proj.parameters(), *image_head.parameters(), *text_head.parameters(), logit_scale]
    opt = torch.optim.AdamW(
        decay_groups(llm.parameters(), EYE_OPT["weight_decay"], lr=EYE_OPT["lr"])
        + decay_groups(rest, EYE_OPT["weight_decay"], lr=EYE_OPT["projector_lr"]),
        betas=(0.9, EYE_OPT["beta2"]), foreach=True,
    )
    features = torch.randn(B, K, Dv)
    captions = torch.randint(0, V - 1, (B, Lc))  # never <image>
    eos = torch.full((B, 1), eos_id)
    caption_ids = torch.cat([captions, eos], 1)  # (B, L + 1) after the K image tokens
    Tc, Tt = K + Lc + 1, Lc + 2
    lm_rows = (torch.arange(B)[:, None] * Tc + K - 1 + torch.arange(Lc + 1)[None, :]).reshape(-1)
    lm_targets = caption_ids.reshape(-1)
    text_ids = torch.cat([captions, eos, torch.full((B, 1), image_id)], 1)  # (B, Tt)
    text_rows = torch.arange(B) * Tt + Lc + 1
    labels = torch.arange(B)

    def loss():
        tokens = proj(features)  # (B, K, C)
        h = llm.hidden(torch.cat([tokens, llm.wte(caption_ids)], 1))  # (B, Tc, C)
        lm = F.cross_entropy(llm.logits(h.reshape(B * Tc, C).index_select(0, lm_rows)), lm_targets)
        t = llm.hidden(llm.wte(text_ids)).reshape(B * Tt, C).index_select(0, text_rows)
        img = F.normalize(image_head(tokens.mean(1)), dim=-1)
        txt = F.normalize(text_head(t), dim=-1)
        logits = logit_scale.clamp(max=math.log(100)).exp() * img @ txt.t()
        nce = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2
        return lm + nce

    step = train_step(loss, opt)
    first = step().item()  # validation, as ours: finite, and lower after one update on the same batch
    with torch.no_grad():
        second = loss().item()
    if not (math.isfinite(first) and second < first):
        raise RuntimeError(f"torch peer: eye step's loss {first} -> {second}: not finite or did not fall on the same batch")
    return step


def main():
    spec, timing = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    run = build(spec)
    last = 0.0
    for _ in range(max(1, timing["warmup"])):
        t0 = time.perf_counter()
        run()
        last = (time.perf_counter() - t0) * 1e3
    fit = int(timing["budgetMs"] // last) if last > 0 else timing["runs"]
    runs = max(timing["minRuns"], min(timing["runs"], fit))
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1e3)
    print(json.dumps({"median_ms": statistics.median(times), "runs": runs, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
