"""A compact re-implementation of nanoGPT's character-level GPT and its training loop.

After Andrej Karpathy's nanoGPT (https://github.com/karpathy/nanoGPT, MIT licence): ``model.py``
(GPT-2 layout: pre-LN blocks, causal self-attention through ``scaled_dot_product_attention``, a
GELU MLP of 4x width, token embedding tied to the output head, weights N(0, 0.02) with the
residual projections ``c_proj`` at 0.02/sqrt(2 * n_layer), optional biases (off, as ``train.py``
has it), ``configure_optimizers`` (AdamW, weight decay on 2-D parameters only, fused on CUDA) and
``estimate_mfu``), ``train.py`` (``get_batch``: ``batch_size`` random offsets into the token array,
``get_lr``: linear warm-up then cosine decay to ``min_lr``, ``estimate_loss``: mean loss over
``eval_iters`` random batches of train and val, gradient clipping, bf16/fp16 autocast on CUDA,
optional ``torch.compile``) and ``data/shakespeare_char/prepare.py`` (vocabulary = the sorted set
of the text's characters, first 90 % train / last 10 % validation, uint16 ids). Written afresh for
``bench/shakespeare.py``; nothing here imports textgen.

    python bench/nanogpt_reference.py [--iters 100] [--device cpu]    # a standalone smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class GPTConfig:
    vocab_size: int
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False          # nanoGPT's train.py default: "a bit better and faster"


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head, self.n_embd, self.dropout = config.n_head, config.n_embd, config.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight          # weight tying
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def get_num_params(self, non_embedding: bool = True) -> int:
        """nanoGPT's count: position embeddings left out (the tied token embedding kept)."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.transformer.wpe.weight.numel() if non_embedding else n

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """idx (B, T) -> logits (B, T, V) and, with targets, the mean cross-entropy."""
        pos = torch.arange(idx.size(1), dtype=torch.long, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return logits, loss


def configure_optimizers(model: nn.Module, weight_decay: float, learning_rate: float,
                         betas: tuple[float, float], device_type: str) -> torch.optim.AdamW:
    """AdamW with weight decay on every parameter of 2 or more dimensions, none on the rest."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    extra = {"fused": True} if device_type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, **extra)


def estimate_mfu(model: GPT, fwdbwd_per_iter: int, dt: float, peak_flops: float = 312e12) -> float:
    """nanoGPT's model flops utilisation (PaLM appendix B): 6N + 12 L H Q T flops per token."""
    cfg = model.config
    N = model.get_num_params()
    L, H, Q, T = cfg.n_layer, cfg.n_head, cfg.n_embd // cfg.n_head, cfg.block_size
    flops_per_iter = (6 * N + 12 * L * H * Q * T) * T * fwdbwd_per_iter
    return flops_per_iter / dt / peak_flops


def prepare(text: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """prepare.py: sorted characters as the vocabulary; first 90 % train, last 10 % val (uint16)."""
    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    n = len(text)
    train = np.array([stoi[c] for c in text[: int(n * 0.9)]], dtype=np.uint16)
    val = np.array([stoi[c] for c in text[int(n * 0.9):]], dtype=np.uint16)
    return train, val, chars


@dataclass
class TrainSettings:
    """train.py's knobs (defaults: its CPU recipe for shakespeare_char)."""

    batch_size: int = 12
    block_size: int = 64
    max_iters: int = 2000
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int = 2000
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    eval_interval: int = 250
    eval_iters: int = 20
    dtype: str = "float32"      # bfloat16 / float16 autocast on CUDA
    compile: bool = False
    device: str = "cpu"
    seed: int = 1337


def get_batch(data: np.ndarray, s: TrainSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """train.py's get_batch: batch_size random offsets, x = data[i:i+T], y = data[i+1:i+1+T]."""
    ix = torch.randint(len(data) - s.block_size, (s.batch_size,))
    x = torch.stack([torch.from_numpy(data[i:i + s.block_size].astype(np.int64)) for i in ix])
    y = torch.stack([torch.from_numpy(data[i + 1:i + 1 + s.block_size].astype(np.int64)) for i in ix])
    if s.device.startswith("cuda"):
        return (x.pin_memory().to(s.device, non_blocking=True),
                y.pin_memory().to(s.device, non_blocking=True))
    return x.to(s.device), y.to(s.device)


def get_lr(it: int, s: TrainSettings) -> float:
    """train.py's get_lr: linear warm-up, cosine decay to min_lr over lr_decay_iters."""
    if it < s.warmup_iters:
        return s.learning_rate * (it + 1) / (s.warmup_iters + 1)
    if it > s.lr_decay_iters:
        return s.min_lr
    ratio = (it - s.warmup_iters) / (s.lr_decay_iters - s.warmup_iters)
    return s.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (s.learning_rate - s.min_lr)


def autocast(s: TrainSettings) -> contextlib.AbstractContextManager:
    if not s.device.startswith("cuda") or s.dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=getattr(torch, s.dtype))


@torch.no_grad()
def estimate_loss(model: nn.Module, splits: dict[str, np.ndarray], s: TrainSettings) -> dict:
    """train.py's estimate_loss: mean loss of eval_iters random batches of each split."""
    out = {}
    model.eval()
    for split, data in splits.items():
        losses = torch.zeros(s.eval_iters)
        for k in range(s.eval_iters):
            x, y = get_batch(data, s)
            with autocast(s):
                _, loss = model(x, y)
            losses[k] = loss.item()
        out[split] = losses.mean().item()
    model.train()
    return out


@dataclass
class RunRecord:
    """What a run of :func:`train` leaves: per-iteration seconds, evaluations, the models."""

    iter_seconds: list[float] = field(default_factory=list)   # get_batch + step, eval excluded
    evals: list[dict] = field(default_factory=list)          # {"iter", "train", "val"}
    best_val: float = math.inf
    best_state: dict | None = None                           # weights at the best evaluation
    wall_seconds: float = 0.0


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def train(model: GPT, train_data: np.ndarray, val_data: np.ndarray, s: TrainSettings) -> RunRecord:
    """train.py's loop: evaluate every eval_interval (and at max_iters), iterations 0..max_iters-1.

    nanoGPT runs one more iteration after its last evaluation (0..max_iters inclusive); that step
    changes nothing it reports, so it is left out here. The best weights are kept in memory
    instead of ckpt.pt.
    """
    rec, start = RunRecord(), time.perf_counter()
    model.to(s.device)
    optimizer = configure_optimizers(model, s.weight_decay, s.learning_rate, (s.beta1, s.beta2),
                                     "cuda" if s.device.startswith("cuda") else "cpu")
    net = torch.compile(model) if s.compile else model
    scaler = torch.amp.GradScaler("cuda", enabled=s.dtype == "float16")
    splits = {"train": train_data, "val": val_data}
    for it in range(s.max_iters + 1):
        if it % s.eval_interval == 0 or it == s.max_iters:
            losses = estimate_loss(net, splits, s)
            rec.evals.append({"iter": it, **losses})
            if losses["val"] < rec.best_val:
                rec.best_val = losses["val"]
                rec.best_state = copy.deepcopy(model.state_dict())
        if it == s.max_iters:
            break
        _sync(s.device)
        t0 = time.perf_counter()
        _train_step(net, optimizer, scaler, train_data, get_lr(it, s), s)
        _sync(s.device)
        rec.iter_seconds.append(time.perf_counter() - t0)
    rec.wall_seconds = time.perf_counter() - start
    return rec


def _train_step(net: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                data: np.ndarray, lr: float, s: TrainSettings) -> float:
    for group in optimizer.param_groups:
        group["lr"] = lr
    x, y = get_batch(data, s)
    with autocast(s):
        _, loss = net(x, y)
    scaler.scale(loss).backward()
    if s.grad_clip != 0.0:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(net.parameters(), s.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()       # nanoGPT reads the loss back at every log_interval (1 in its CPU recipe)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data" / "novels"
                        / "tiny_shakespeare.txt")
    args = parser.parse_args()
    if not args.data.is_file():
        sys.exit(f"{args.data}: no such file (tiny Shakespeare); pass --data")
    train_data, val_data, chars = prepare(args.data.read_text(encoding="utf-8"))
    s = TrainSettings(max_iters=args.iters, lr_decay_iters=args.iters,
                      eval_interval=min(250, args.iters), device=args.device)
    torch.manual_seed(s.seed)
    model = GPT(GPTConfig(vocab_size=len(chars), block_size=s.block_size))
    rec = train(model, train_data, val_data, s)
    ms = statistics.median(rec.iter_seconds[20:] or rec.iter_seconds)
    print(f"vocab {len(chars)}, {model.get_num_params():,} parameters, {ms * 1000:.1f} ms/iter, "
          f"evals {rec.evals}, {rec.wall_seconds:.1f} s")


if __name__ == "__main__":
    main()
