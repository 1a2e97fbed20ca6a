"""Train a project: the one entry point shared by ``textgen train``, torchrun and the studio.

Takes the project's training lock (one trainer per project), clears temporaries an interrupted run
left in ``checkpoints/``, builds tokenizers, batches, model and optimizer from the project (or
restores all of them, with the RNG and the data position, from ``checkpoints/last.pt`` when
resuming), runs the :class:`~textgen_core.training.trainer.Trainer`, and records every event in
``runs/<id>/metrics.jsonl``. last.pt holds everything a resume needs; best.pt only what writing
needs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from textgen_core import models
from textgen_core.config import TrainConfig
from textgen_core.devices import resolve_device
from textgen_core.errors import CheckpointError, TextGenError, TrainingError, first_line
from textgen_core.project import Project
from textgen_core.training import distributed, events
from textgen_core.training.algorithm import AlgorithmContext, LossPerBatch, TrainingAlgorithm
from textgen_core.training.checkpoint import (
    DiskFullError,
    format_size,
    is_disk_full,
    is_resumable,
    load_checkpoint,
    read_summary,
    remove_stale_temporaries,
    save_checkpoint,
)
from textgen_core.training.lock import TrainingLock
from textgen_core.training.tasks import TaskData, build_task
from textgen_core.training.trainer import Trainer, TrainState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainOutcome:
    status: str                 # "finished" | "stopped" | "early_stopped"
    step: int
    best_val_loss: float
    run_id: str


def train_project(
    project: Project,
    *,
    steps: int | None = None,
    device: str | None = None,
    resume: bool = False,
    restart: bool = False,
    on_event: Callable[[events.Event], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainOutcome:
    """Train (or resume training of) ``project``; see the module docstring.

    One trainer per project: the project's training lock is held for the whole run (by rank 0 under
    torchrun) and a second trainer is refused with :class:`TrainingError` naming the first.
    """
    cfg = project.config.train
    if steps is not None:
        if steps < 1:
            raise TextGenError(f"--steps must be at least 1, got {steps}")
        cfg = replace(cfg, steps=steps)
    main = int(os.environ.get("RANK", "0")) == 0       # torchrun's rank; the only one that writes
    with TrainingLock(project.root, enabled=main):
        if main:
            remove_stale_temporaries(project.checkpoint_dir)
        return _train(project, cfg, device, resume, restart, on_event, should_stop)


def _train(
    project: Project, cfg: TrainConfig, device: str | None, resume: bool, restart: bool,
    on_event: Callable[[events.Event], None] | None, should_stop: Callable[[], bool] | None,
) -> TrainOutcome:
    choice = device or cfg.device
    dist = distributed.init_from_env(choice if choice != "auto" else _auto_kind())
    dev = resolve_device(choice, dist.local_rank)
    last = project.checkpoint_path("last")
    ckpt = _checkpoint_to_resume(last, resume, restart)
    torch.manual_seed(cfg.seed + dist.rank)
    src_tok, tgt_tok = project.tokenizers()
    name, model_config = _model_config(project, ckpt, src_tok.vocab_size, tgt_tok.vocab_size)
    model = models.build_model(name, model_config).to(dev)
    task = build_task(project, model, cfg, src_tok, tgt_tok, dev, dist)
    state = TrainState(run_id=time.strftime("%Y%m%d-%H%M%S"))
    if ckpt is not None:
        state = _restore(ckpt, model, task, last)
    elif project.base_checkpoint_path.is_file():
        _start_from_base(project.base_checkpoint_path, model)
    if state.step >= cfg.steps:
        raise TextGenError(
            f"{last}: already trained for {state.step} steps; ask for more with --steps N (N > "
            f"{state.step})"
        )
    trained: nn.Module = model
    if dist.enabled:
        ids = [dev.index] if dev.type == "cuda" else None
        trained = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    ctx = AlgorithmContext(model=trained, cfg=cfg, source=task.train, hooks=task.hooks, device=dev,
                           dist=dist, valid=task.valid, tokenizer=tgt_tok)
    algorithm = _algorithm(name, ctx, ckpt, last)
    writer = _MetricsWriter(project.runs_dir / state.run_id / "metrics.jsonl", dist.is_main)

    def emit(event: events.Event) -> None:
        writer.write(event)
        if on_event is not None and dist.is_main:    # rank 0 reports for a data-parallel run
            on_event(event)

    saver = _CheckpointSaver(project, name, model, algorithm, task, (src_tok, tgt_tok), cfg, emit)
    trainer = Trainer(
        trained, cfg, task.train, task.hooks, state, device=dev, algorithm=algorithm, save=saver,
        on_event=emit, should_stop=should_stop, dist=dist,
    )
    emit(events.Config(step=state.step, device=str(dev), model=name,
                       parameters=model.num_parameters(), world_size=dist.world_size,
                       resumed=ckpt is not None))
    try:
        status = trainer.run()
    except torch.OutOfMemoryError:
        emit(events.Failed(step=state.step, message="out of memory"))
        raise TrainingError(
            f"{dev} ran out of memory at train.batch_size={cfg.batch_size}; lower it (e.g. --set "
            f"train.batch_size={max(1, cfg.batch_size // 2)} --set "
            f"train.grad_accum={cfg.grad_accum * 2}) or pick a smaller model"
        ) from None
    finally:
        writer.close()
    return TrainOutcome(status, state.step, state.best_val_loss, state.run_id)


def _auto_kind() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _checkpoint_to_resume(last: Path, resume: bool, restart: bool) -> dict[str, Any] | None:
    if resume:
        if not last.is_file():
            raise CheckpointError(f"{last}: nothing to resume; train without --resume first")
        ckpt = load_checkpoint(last)
        if not is_resumable(ckpt):
            raise CheckpointError(
                f"{last}: holds the model only, not the training state; it cannot be resumed "
                "(start over with --restart)"
            )
        return ckpt
    if last.is_file() and not restart:
        raise TextGenError(
            f"{last.parent.parent}: already has a trained model; continue it with --resume or "
            "start over with --restart (replaces its checkpoints)"
        )
    if last.with_name("best.pt").is_file() and not restart:     # a model for writing only
        root = last.parent.parent
        raise TextGenError(
            f"{root}: already has a trained model (for writing; it cannot be resumed); fine-tune it "
            f"on your corpus in a new project (textgen init NEW --from {root} --data ...) or start "
            "over with --restart (replaces it)"
        )
    return None


def _model_config(
    project: Project, ckpt: Mapping[str, Any] | None, src_vocab: int, tgt_vocab: int
) -> tuple[str, Any]:
    if ckpt is not None:
        name, settings = ckpt["model_name"], dict(ckpt["model_config"])
        if name != project.config.model_name:
            log.warning("resuming a %s model although project.toml now names %s",
                        name, project.config.model_name)
        return name, models.config_from_dict(name, settings)   # its vocab sizes fit its weights
    name = project.config.model_name
    settings = dict(project.config.model)
    return name, models.build_config(
        name, settings, src_vocab_size=src_vocab, tgt_vocab_size=tgt_vocab, pad_id=0
    )


def _algorithm(
    name: str, ctx: AlgorithmContext, ckpt: Mapping[str, Any] | None, path: Path
) -> TrainingAlgorithm:
    """The model's own training algorithm (its spec's ``algorithm``) or one loss per batch, with
    the state a resumed checkpoint saved (optimizers, scaler, phase counters)."""
    make = models.get_spec(name).algorithm
    algorithm = make(ctx) if make is not None else LossPerBatch(ctx)
    if ckpt is not None:
        # checkpoints written before algorithms had their own state kept the optimizer at the top
        saved = ckpt.get("algorithm") or {"optimizer": ckpt["optimizer"], "scaler": ckpt.get("scaler")}
        try:
            algorithm.load_state_dict(saved)
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            reason = first_line(exc)
            raise CheckpointError(f"{path}: does not fit this project: {reason}") from None
    return algorithm


def _start_from_base(path: Path, model: nn.Module) -> None:
    """A project made with ``init --from`` starts from its base model's weights (any float dtype)."""
    base = load_checkpoint(path)
    try:
        model.load_state_dict(base["model"])
    except (RuntimeError, ValueError, TypeError) as exc:
        reason = first_line(exc)
        raise CheckpointError(f"{path}: the base model does not fit this project's model settings: "
                              f"{reason}") from None
    origin = base.get("base") or {}
    log.info("starting from the weights of %s (step %s of %s)", path, base["step"],
             origin.get("project", "the base project"))


def _restore(ckpt: Mapping[str, Any], model: nn.Module, task: TaskData, path: Path) -> TrainState:
    try:
        model.load_state_dict(ckpt["model"])
        task.train.load_state_dict(ckpt["data_state"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        if torch.cuda.is_available() and ckpt["rng"].get("cuda"):
            torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
        st = ckpt["train_state"]
        return TrainState(
            run_id=str(st["run_id"]), step=int(ckpt["step"]),
            best_val_loss=float(st["best_val_loss"]), bad_evals=int(st["bad_evals"]),
            last_val_loss=st.get("last_val_loss"), extra=dict(st.get("extra") or {}),
        )
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        reason = first_line(exc)
        raise CheckpointError(f"{path}: does not fit this project: {reason}") from None


class _CheckpointSaver:
    """The trainer's ``save``: last.pt with everything ``--resume`` needs, best.pt slim.

    best.pt is what writing and evaluation load (model, config, tokenizers): it leaves out the
    optimizer state (twice the weights' size for AdamW), the data position and the RNG state, which
    only continuing a run needs, and ``--resume`` reads last.pt alone.
    """

    def __init__(
        self, project: Project, name: str, model: nn.Module, algorithm: TrainingAlgorithm,
        task: TaskData, tokenizers: tuple[Any, Any], cfg: TrainConfig,
        emit: Callable[[events.Event], None],
    ) -> None:
        self.project, self.name, self.model, self.algorithm = project, name, model, algorithm
        self.task, self.tokenizers, self.cfg, self.emit = task, tokenizers, cfg, emit

    def __call__(self, which: str, state: TrainState) -> Path:
        path = self.project.checkpoint_path(which)
        try:
            return save_checkpoint(path, self.content(state, resumable=which == "last"))
        except DiskFullError as exc:
            message = _disk_full_message(exc, state.step)
            with contextlib.suppress(TrainingError):       # the metrics may not fit either
                self.emit(events.Failed(step=state.step, message=message))
            raise TrainingError(message) from None

    def content(self, state: TrainState, *, resumable: bool) -> dict[str, Any]:
        src_tok, tgt_tok = self.tokenizers
        tokenizers = {"src": src_tok.to_bytes()}
        if tgt_tok is not src_tok:
            tokenizers["tgt"] = tgt_tok.to_bytes()
        content: dict[str, Any] = {
            "model_name": self.name,
            "model_config": models.config_to_dict(self.model.config),
            "task": self.project.config.task,
            "tokenizers": tokenizers,
            "model": self.model.state_dict(),
            "step": state.step,
            "train_state": {
                "run_id": state.run_id, "best_val_loss": state.best_val_loss,
                "bad_evals": state.bad_evals, "last_val_loss": state.last_val_loss,
                "extra": dict(state.extra),
            },
            "val_loss": state.last_val_loss,
            "train_config": dataclasses.asdict(self.cfg),
        }
        if resumable:
            content.update({
                "algorithm": self.algorithm.state_dict(),
                "rng": {
                    "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                },
                "data_state": self.task.train.state_dict(),
            })
        return content


def _disk_full_message(exc: DiskFullError, step: int) -> str:
    """Which folder is full, what the checkpoint needs, and which checkpoint is still there."""
    name = exc.path.name
    kept = read_summary(exc.path) if exc.path.is_file() else None
    if kept is None:
        keep = f"there is no earlier {name}"
    elif kept.step is not None:
        keep = f"the {name} of step {kept.step} is kept intact"
    else:
        keep = f"the earlier {name} is kept intact"
    return (
        f"{exc.path.parent}: disk full while saving the checkpoint of step {step} ({name} needs "
        f"{format_size(exc.needed)}, {format_size(exc.free)} free); {keep}; free some space there, "
        "then resume training"
    )


class _MetricsWriter:
    """Appends one JSON object per event; flushed each line so the studio can follow it live."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path, self.handle = path, None
        if enabled:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = path.open("a", encoding="utf-8")

    def write(self, event: events.Event) -> None:
        if self.handle is None:
            return
        try:
            self.handle.write(json.dumps(event.to_json(), ensure_ascii=False) + "\n")
            self.handle.flush()
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            self.close()               # nothing more can be recorded; say so once, plainly
            raise TrainingError(
                f"{self.path.parent}: disk full while recording {self.path.name} at step "
                f"{event.step}; free some space there, then resume training"
            ) from None

    def close(self) -> None:
        if self.handle is not None:
            handle, self.handle = self.handle, None
            try:
                handle.close()
            except OSError as exc:     # the last buffered line may not fit either
                log.warning("%s: %s", self.path, exc)
