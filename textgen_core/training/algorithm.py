"""The training-algorithm seam: what one optimizer step of a model is, apart from the loop around it.

The generic :class:`~textgen_core.training.trainer.Trainer` owns the loop (stop requests, logging,
evaluations, checkpoints, early stopping, events); a :class:`TrainingAlgorithm` owns what happens in
one step: its optimizers (and AMP scaler), its phases, its own counters and its own metrics. Most
models train as "one loss per batch" (:class:`LossPerBatch`, the default); a model whose spec names
an ``algorithm`` (SeqGAN: MLE pre-training, discriminator pre-training, adversarial policy-gradient
rounds) brings its own.

A model that trains one loss per batch but has more to show (a teacher-forcing ratio, an auxiliary
loss) subclasses :class:`LossPerBatch` and adds its numbers to ``StepOutput.metrics``: they reach
the command line, ``metrics.jsonl`` and the studio's Metrics tab with no further code.

Everything an algorithm needs to continue exactly is in its :meth:`~TrainingAlgorithm.state_dict`,
which the run saves in ``last.pt`` under ``"algorithm"``; the global RNG and the data position are
saved by the run itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from textgen_core.config import TrainConfig
from textgen_core.training.distributed import DistInfo
from textgen_core.training.schedule import learning_rate


class BatchSource(Protocol):
    def next_batch(self) -> Any: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class TaskHooks:
    """The task-specific parts: the loss of a batch and the evaluation of the model."""

    loss: Callable[[nn.Module, Any, int], torch.Tensor]       # model, batch, step -> mean loss
    tokens: Callable[[Any], int]                              # batch -> tokens it trains on
    evaluate: Callable[[nn.Module], dict[str, Any]]           # -> {"val_loss", ...metrics, "samples"}


@dataclass(frozen=True)
class AlgorithmContext:
    """What an algorithm is built from."""

    model: nn.Module              # as trained: wrapped in DistributedDataParallel under torchrun
    cfg: TrainConfig
    source: BatchSource           # training batches (resumable; the run saves its position)
    hooks: TaskHooks
    device: torch.device
    dist: DistInfo = field(default_factory=DistInfo)
    valid: Any = None             # the task's validation batches, where it has them
    tokenizer: Any = None         # the target-side tokenizer


@dataclass
class StepOutput:
    """One optimizer step's report. Tensors stay on the device until the trainer reads them back
    (every ``log_every`` steps), so a step never waits for the GPU."""

    loss: torch.Tensor                      # detached scalar: the loss this step optimised
    tokens: int                             # tokens it trained on (for tokens/s)
    lr: float
    metrics: dict[str, torch.Tensor | float] = field(default_factory=dict)   # the algorithm's own


class TrainingAlgorithm(Protocol):
    """One optimizer step at a time; see the module docstring."""

    @property
    def phase(self) -> str | None:
        """The phase the next step belongs to (None: a single-phase algorithm)."""
        ...

    def train_step(self, step: int) -> StepOutput:
        """One step; ``step`` is the number of optimizer steps done before it."""
        ...

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Extra metrics at an evaluation (``model`` unwrapped, in training mode); may be empty."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Optimizers, scaler and counters: everything a resume needs (plain data and tensors)."""
        ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


def build_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW (Loshchilov & Hutter 2019) with decay on matrices only, fused on CUDA."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    kwargs: dict[str, Any] = {"lr": cfg.learning_rate, "betas": (cfg.beta1, cfg.beta2)}
    if device.type == "cuda":
        kwargs["fused"] = True
    return torch.optim.AdamW(groups, **kwargs)


def amp_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for this run, or None for full precision."""
    if device.type != "cuda" or cfg.amp == "off":
        return None
    if cfg.amp == "fp16":
        return torch.float16
    if cfg.amp == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


class LossPerBatch:
    """The default algorithm: one loss per batch, AdamW, warm-up + decay schedule, gradient
    accumulation over ``grad_accum`` micro-batches, clipping, and AMP on CUDA."""

    phase = None

    def __init__(self, ctx: AlgorithmContext, optimizer: torch.optim.Optimizer | None = None) -> None:
        self.ctx = ctx
        self.model, self.cfg = ctx.model, ctx.cfg
        self.optimizer = optimizer or build_optimizer(ctx.model, ctx.cfg, ctx.device)
        self.dtype = amp_dtype(ctx.cfg, ctx.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.dtype == torch.float16)

    def train_step(self, step: int) -> StepOutput:
        cfg, model, hooks = self.cfg, self.model, self.ctx.hooks
        lr = learning_rate(step, cfg)
        set_lr(self.optimizer, lr)
        losses, tokens = [], 0
        for micro in range(cfg.grad_accum):
            batch = self.ctx.source.next_batch().to(self.ctx.device)
            with self._no_sync(micro == cfg.grad_accum - 1), self._autocast():
                loss = hooks.loss(model, batch, step)
            self.scaler.scale(loss / cfg.grad_accum).backward()
            losses.append(loss.detach())
            tokens += hooks.tokens(batch)
        if cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        mean = losses[0] if len(losses) == 1 else torch.stack(losses).mean()
        return StepOutput(loss=mean, tokens=tokens, lr=lr)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(dict(state["scaler"]))

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.ctx.device.type, dtype=self.dtype)

    def _no_sync(self, sync: bool) -> contextlib.AbstractContextManager[Any]:
        if not sync and hasattr(self.model, "no_sync"):
            return self.model.no_sync()
        return contextlib.nullcontext()
