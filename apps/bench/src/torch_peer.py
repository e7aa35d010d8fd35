"""The PyTorch peer of `pnpm bench` (run by torch.ts with Debian's /usr/bin/python3).

Usage: torch_peer.py '<OpSpec JSON>' '<Timing JSON>'  ->  prints {"median_ms": ..., "runs": ...}

Each OpSpec is built from torch ops on the CPU (float32): the same math as our kernels and as
the tfjs peer. The timing mirrors harness.ts timeRuns: `warmup` runs, then as many runs as fit
in `budgetMs` (at least `minRuns`, at most `runs`); the median wall time is reported.
"""
import json
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def build(spec):
    op = spec["op"]
    g = torch.Generator().manual_seed(0)
    randn = lambda *shape, std=1.0: torch.randn(*shape, generator=g) * std
    if op == "matmul":
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
    raise ValueError(f"torch peer: unknown op {op}")


def gpt2_step(spec):
    """GPT2LMHeadModel's math (pre-LN, tanh GELU, tied LM head), random init, AdamW."""
    L, C, H, V, B, T = (spec[k] for k in ("layers", "width", "heads", "vocab", "batch", "seq"))
    torch.manual_seed(1)

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.ln_2 = torch.nn.LayerNorm(C), torch.nn.LayerNorm(C)
            self.c_attn, self.attn_proj = torch.nn.Linear(C, 3 * C), torch.nn.Linear(C, C)
            self.c_fc, self.mlp_proj = torch.nn.Linear(C, 4 * C), torch.nn.Linear(4 * C, C)
            self.register_buffer("mask", torch.triu(torch.full((T, T), float("-inf")), 1))

        def forward(self, x):
            q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
            q, k, v = (z.view(B, T, H, C // H).transpose(1, 2) for z in (q, k, v))
            att = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(C // H) + self.mask, -1)
            x = x + self.attn_proj((att @ v).transpose(1, 2).reshape(B, T, C))
            return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))

    class GPT2(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = torch.nn.Embedding(V, C), torch.nn.Embedding(spec["positions"], C)
            self.h = torch.nn.ModuleList(Block() for _ in range(L))
            self.ln_f = torch.nn.LayerNorm(C)
            for p in self.parameters():
                if p.dim() >= 2:
                    torch.nn.init.normal_(p, std=0.02)

        def forward(self, ids, targets):
            x = self.wte(ids) + self.wpe(torch.arange(T))
            for block in self.h:
                x = block(x)
            logits = self.ln_f(x) @ self.wte.weight.t()
            return F.cross_entropy(logits.view(B * T, V), targets.view(-1))

    model = GPT2()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=6e-4, foreach=True)
    data = torch.randint(0, V, (B, T + 1))
    ids, targets = data[:, :-1].contiguous(), data[:, 1:].contiguous()

    def step():
        loss = model(ids, targets)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

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
