"""A trainer that knows no particular model.

It takes a model, a resumable batch source, a loss function and an evaluation function, and runs the
optimisation loop: AdamW, warm-up + decay schedule, gradient accumulation and clipping, AMP on CUDA,
early stopping, checkpoints (through a ``save`` callback) and events. Events are plain dicts sent to
``on_event``; the stop flag ``should_stop`` is checked before every step, so a stop request ends the
run within one step and leaves a loadable ``last`` checkpoint.

Losses are read back from the device only every ``log_every`` steps (and before any checkpoint), so
the loop does not synchronise with the GPU on every step; a non-finite loss found at such a check
ends the run with :class:`TrainingError` and nothing is saved over the last good checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from textgen_core.config import TrainConfig
from textgen_core.errors import TrainingError
from textgen_core.training.distributed import DistInfo
from textgen_core.training.schedule import learning_rate

log = logging.getLogger(__name__)

Event = dict[str, Any]


class BatchSource(Protocol):
    def next_batch(self) -> Any: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


@dataclass
class TrainState:
    """What a checkpoint needs, besides weights and optimizer, to continue exactly."""

    run_id: str
    step: int = 0
    best_val_loss: float = math.inf
    bad_evals: int = 0
    last_val_loss: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskHooks:
    """The task-specific parts: the loss of a batch and the evaluation of the model."""

    loss: Callable[[nn.Module, Any, int], torch.Tensor]       # model, batch, step -> mean loss
    tokens: Callable[[Any], int]                              # batch -> tokens it trains on
    evaluate: Callable[[nn.Module], dict[str, Any]]           # -> {"val_loss", ...metrics, "samples"}


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


class Trainer:
    """Runs the optimisation loop; see the module docstring."""

    def __init__(
        self,
        model: nn.Module,
        cfg: TrainConfig,
        source: BatchSource,
        hooks: TaskHooks,
        state: TrainState,
        *,
        device: torch.device,
        optimizer: torch.optim.Optimizer,
        save: Callable[[str, TrainState], Any] | None = None,
        on_event: Callable[[Event], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        dist: DistInfo | None = None,
        scaler_state: Mapping[str, Any] | None = None,
    ) -> None:
        self.model, self.cfg, self.source, self.hooks = model, cfg, source, hooks
        self.state, self.device, self.optimizer = state, device, optimizer
        self.save = save
        self.on_event = on_event or (lambda event: None)
        self.should_stop = should_stop or (lambda: False)
        self.dist = dist or DistInfo()
        self.dtype = amp_dtype(cfg, device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.dtype == torch.float16)
        if scaler_state:
            self.scaler.load_state_dict(dict(scaler_state))
        self._pending: list[torch.Tensor] = []     # detached losses since the last read-back
        self._tokens = 0
        self._clock = time.perf_counter()

    # ------------------------------------------------------------------ public
    def run(self) -> str:
        """Train until ``cfg.steps``; returns "finished", "stopped" or "early_stopped"."""
        self.model.train()
        self.emit("start", steps=self.cfg.steps)
        outcome = "finished"
        while self.state.step < self.cfg.steps:
            if self.dist.any(self.should_stop()):
                outcome = "stopped"
                break
            self.train_step()
            step = self.state.step
            if step % self.cfg.log_every == 0 or step == self.cfg.steps:
                self.report()
            if step % self.cfg.eval_every == 0 or step == self.cfg.steps:
                self.report()
                if self.evaluate_and_save():
                    outcome = "early_stopped"
                    break
        if outcome == "stopped":
            self.report()
            self.checkpoint("last")
            self.dist.barrier()
        self.emit(outcome if outcome != "early_stopped" else "finished", reason=outcome)
        return outcome

    def train_step(self) -> None:
        """One optimizer step over ``grad_accum`` micro-batches."""
        cfg, model = self.cfg, self.model
        lr = learning_rate(self.state.step, cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        for micro in range(cfg.grad_accum):
            batch = self.source.next_batch().to(self.device)
            sync = micro == cfg.grad_accum - 1
            with self._no_sync(sync), self._autocast():
                loss = self.hooks.loss(model, batch, self.state.step)
            self.scaler.scale(loss / cfg.grad_accum).backward()
            self._pending.append(loss.detach())
            self._tokens += self.hooks.tokens(batch)
        if cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.state.step += 1
        self._lr = lr

    def report(self) -> None:
        """Read back the losses since the last report, check them, emit a "step" event."""
        if not self._pending:
            return
        losses = torch.stack(self._pending).float()
        self._pending.clear()
        mean = losses.mean().item()
        if not math.isfinite(mean):
            self.emit("failed", message="loss became non-finite")
            raise TrainingError(
                f"training loss became {mean} at step {self.state.step}; the last good checkpoint "
                "was kept — lower train.learning_rate or set train.grad_clip"
            )
        now = time.perf_counter()
        elapsed, self._clock = now - self._clock, now
        rate = self._tokens * self.dist.world_size / elapsed if elapsed > 0 else 0.0
        self._tokens = 0
        self.emit("step", train_loss=mean, lr=self._lr, tokens_per_s=rate)

    def evaluate_and_save(self) -> bool:
        """Evaluate, save last/best, and say whether early stopping triggers."""
        state = self.state
        if self.dist.is_main:
            result = self.hooks.evaluate(_unwrap(self.model))
            samples = result.pop("samples", None)
            val = result.get("val_loss", math.nan)
            if val is not None and not math.isfinite(val):
                self.emit("failed", message="validation loss became non-finite")
                raise TrainingError(
                    f"validation loss became {val} at step {state.step}; the last good checkpoint "
                    "was kept — lower train.learning_rate"
                )
            improved = val is not None and val < state.best_val_loss
            if improved:
                state.best_val_loss, state.bad_evals = val, 0
            else:
                state.bad_evals += 1
            state.last_val_loss = val
            self.emit("eval", best=improved, **result)
            if samples:
                self.emit("sample", samples=samples)
            self.checkpoint("last")
            if improved:
                self.checkpoint("best")
        stop = self.cfg.early_stop_patience > 0 and state.bad_evals >= self.cfg.early_stop_patience
        self.dist.barrier()                    # the other ranks wait while rank 0 evaluates
        self._clock = time.perf_counter()      # evaluation time does not count against tokens/s
        return self.dist.any(stop)

    def checkpoint(self, which: str) -> None:
        """Save through the callback (rank 0 only; callers synchronise the ranks)."""
        if self.save is not None and self.dist.is_main:
            path = self.save(which, self.state)
            self.emit("checkpoint", kind=which, path=str(path))

    def emit(self, event: str, **data: Any) -> None:
        if self.dist.is_main:
            self.on_event({"event": event, "step": self.state.step, "time": time.time(), **data})

    # ------------------------------------------------------------------ helpers
    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def _no_sync(self, sync: bool) -> contextlib.AbstractContextManager[Any]:
        if not sync and hasattr(self.model, "no_sync"):
            return self.model.no_sync()
        return contextlib.nullcontext()


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model

