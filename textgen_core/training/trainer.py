"""A trainer that knows no particular model.

It runs the loop around a :class:`~textgen_core.training.algorithm.TrainingAlgorithm` (by default
:class:`~textgen_core.training.algorithm.LossPerBatch`: one loss per batch, AdamW, schedule,
accumulation, clipping, AMP): stop requests, progress reports, evaluations, early stopping,
checkpoints (through a ``save`` callback) and events. Events are the typed records of
:mod:`textgen_core.training.events`, sent to ``on_event``; the stop flag ``should_stop`` is checked
before every step, so a stop request ends the run within one step and leaves a loadable ``last``
checkpoint.

best.pt is the best evaluation (lowest validation loss) of the current phase: a multi-phase
algorithm's later phase starts a new race (see :meth:`Trainer._start_best_of_phase`).

Losses are read back from the device only every ``log_every`` steps (and before any checkpoint or
change of phase), so the loop does not synchronise with the GPU on every step; a non-finite loss
found at such a check ends the run with :class:`TrainingError` and nothing is saved over the last
good checkpoint.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from textgen_core.config import TrainConfig
from textgen_core.errors import TrainingError
from textgen_core.training import events
from textgen_core.training.algorithm import (
    AlgorithmContext,
    BatchSource,
    LossPerBatch,
    StepOutput,
    TaskHooks,
    TrainingAlgorithm,
    amp_dtype,
    build_optimizer,
)
from textgen_core.training.distributed import DistInfo

log = logging.getLogger(__name__)

__all__ = ["BatchSource", "TaskHooks", "TrainState", "Trainer", "amp_dtype", "build_optimizer"]


@dataclass
class TrainState:
    """What a checkpoint needs, besides weights and the algorithm's state, to continue exactly.

    ``extra`` is free for plain data (numbers, strings, lists, dicts) that must survive a resume; it
    is saved in every checkpoint.
    """

    run_id: str
    step: int = 0
    best_val_loss: float = math.inf
    bad_evals: int = 0
    last_val_loss: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


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
        optimizer: torch.optim.Optimizer | None = None,
        algorithm: TrainingAlgorithm | None = None,
        save: Callable[[str, TrainState], Any] | None = None,
        on_event: Callable[[events.Event], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        dist: DistInfo | None = None,
    ) -> None:
        self.model, self.cfg, self.hooks, self.state, self.device = model, cfg, hooks, state, device
        self.dist = dist or DistInfo()
        if algorithm is None:
            ctx = AlgorithmContext(model=model, cfg=cfg, source=source, hooks=hooks, device=device,
                                   dist=self.dist)
            algorithm = LossPerBatch(ctx, optimizer)
        self.algorithm = algorithm
        self.save = save
        self.on_event = on_event or (lambda event: None)
        self.should_stop = should_stop or (lambda: False)
        self._pending: list[StepOutput] = []     # steps since the last read-back
        self._pending_phase: str | None = None
        self._clock = time.perf_counter()

    # ------------------------------------------------------------------ public
    def run(self) -> str:
        """Train until ``cfg.steps``; returns "finished", "stopped" or "early_stopped"."""
        self.model.train()
        self.emit(events.Start(step=self.state.step, steps=self.cfg.steps))
        outcome = "finished"
        while self.state.step < self.cfg.steps:
            if self.dist.any(self.should_stop()):
                outcome = "stopped"
                break
            if self._pending and self.algorithm.phase != self._pending_phase:
                self.report()                  # a phase's last losses are not averaged into the next's
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
            self.emit(events.Stopped(step=self.state.step))
        else:
            self.emit(events.Finished(step=self.state.step, reason=outcome))
        return outcome

    def train_step(self) -> None:
        """One optimizer step of the algorithm."""
        self._pending_phase = self.algorithm.phase
        self._pending.append(self.algorithm.train_step(self.state.step))
        self.state.step += 1

    def report(self) -> None:
        """Read back the losses and metrics since the last report, check them, emit a Step."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        mean = torch.stack([out.loss.float() for out in pending]).mean().item()
        if not math.isfinite(mean):
            self.emit(events.Failed(step=self.state.step, message="loss became non-finite"))
            raise TrainingError(
                f"training loss became {mean} at step {self.state.step}; the last good checkpoint "
                "was kept — lower train.learning_rate or set train.grad_clip"
            )
        now = time.perf_counter()
        elapsed, self._clock = now - self._clock, now
        tokens = sum(out.tokens for out in pending)
        rate = tokens * self.dist.world_size / elapsed if elapsed > 0 else 0.0
        self.emit(events.Step(step=self.state.step, train_loss=mean, lr=pending[-1].lr,
                              tokens_per_s=rate, phase=self._pending_phase,
                              metrics=_mean_metrics(pending)))

    def evaluate_and_save(self) -> bool:
        """Evaluate, save last/best, and say whether early stopping triggers."""
        state = self.state
        if self.dist.is_main:
            net = _unwrap(self.model)
            result = self.hooks.evaluate(net)
            samples = result.pop("samples", None)
            result.update(self.algorithm.evaluate(net))
            val = result.get("val_loss", math.nan)
            if val is not None and not math.isfinite(val):
                self.emit(events.Failed(step=state.step, message="validation loss became non-finite"))
                raise TrainingError(
                    f"validation loss became {val} at step {state.step}; the last good checkpoint "
                    "was kept — lower train.learning_rate"
                )
            self._start_best_of_phase()
            improved = val is not None and val < state.best_val_loss
            if improved:
                state.best_val_loss, state.bad_evals = val, 0
            else:
                state.bad_evals += 1
            state.last_val_loss = val
            self.emit(events.Eval.build(state.step, improved, result))
            if samples:
                self.emit(events.Sample(step=state.step, samples=tuple(samples)))
            self.checkpoint("last")
            if improved:
                self.checkpoint("best")
        stop = self.cfg.early_stop_patience > 0 and state.bad_evals >= self.cfg.early_stop_patience
        self.dist.barrier()                    # the other ranks wait while rank 0 evaluates
        self._clock = time.perf_counter()      # evaluation time does not count against tokens/s
        return self.dist.any(stop)

    def _start_best_of_phase(self) -> None:
        """A new phase of a multi-phase algorithm starts a new race for best.pt: the later phase is
        the method (SeqGAN's adversarial generator, not its MLE pre-training), so its best
        evaluation is kept even when an earlier phase had a lower validation loss. The phase of
        the best is kept in ``TrainState.extra`` so a resume goes on with the same race."""
        phase, state = self._pending_phase, self.state
        if phase != state.extra.get("best_phase"):
            state.best_val_loss, state.bad_evals = math.inf, 0
            state.extra["best_phase"] = phase

    def checkpoint(self, which: str) -> None:
        """Save through the callback (rank 0 only; callers synchronise the ranks)."""
        if self.save is not None and self.dist.is_main:
            path = self.save(which, self.state)
            self.emit(events.Checkpoint(step=self.state.step, kind=which, path=str(path)))

    def emit(self, event: events.Event) -> None:
        if self.dist.is_main:
            self.on_event(event)


def _mean_metrics(pending: list[StepOutput]) -> dict[str, float]:
    """Each extra metric averaged over the steps that reported it."""
    values: dict[str, list[torch.Tensor]] = {}
    for out in pending:
        for key, value in out.metrics.items():
            values.setdefault(key, []).append(torch.as_tensor(value, dtype=torch.float32).detach().cpu())
    return {key: torch.stack(vals).mean().item() for key, vals in values.items()}


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model
