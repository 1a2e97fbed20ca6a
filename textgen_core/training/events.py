"""Training events: the one definition of what a run reports, torch-free.

The trainer and ``train_project`` send these small frozen dataclasses to their ``on_event``
callback; the command line prints them, ``runs/<id>/metrics.jsonl`` stores one ``to_json()`` object
per line, and the studio's worker hands the same JSON objects (plain dicts) across threads to the
Training panel, which reads them back with :func:`from_json`. The JSON layout is the one
metrics.jsonl has always had, so earlier runs still load::

    {"event": "step", "step": 120, "time": 1.7e9, "train_loss": 3.2, "lr": 0.001, "tokens_per_s": 2345}

Metrics beyond the fixed ones (a discriminator's accuracy, a mean reward, self-BLEU ...) travel in
``Step.metrics`` / ``Eval.metrics`` and are stored flat beside the fixed keys; reading a line back,
every unknown numeric key of a "step" or "eval" object is such an extra metric, so a new training
algorithm needs no change here or in the studio to have its numbers plotted.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from time import time as _now
from typing import Any, ClassVar

log = logging.getLogger(__name__)

__all__ = [
    "Checkpoint", "Config", "Eval", "Event", "Failed", "Finished", "Sample", "Start", "Step",
    "Stopped", "Written", "from_json", "parse_events",
]

_COMMON = ("event", "step", "time")


@dataclass(frozen=True, kw_only=True)
class Event:
    """What every event has: the optimizer steps done when it happened, and the wall-clock time."""

    KIND: ClassVar[str] = ""
    step: int
    time: float = field(default_factory=_now)

    def to_json(self) -> dict[str, Any]:
        """The metrics.jsonl object: ``event``, ``step``, ``time``, then the event's own keys."""
        out: dict[str, Any] = {"event": self.KIND, "step": self.step, "time": self.time}
        for f in fields(self):
            if f.name not in _COMMON:
                out[f.name] = _plain(getattr(self, f.name))
        return out

    @classmethod
    def _from(cls, data: Mapping[str, Any]) -> Event:
        known = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        return cls(**known)


@dataclass(frozen=True, kw_only=True)
class Config(Event):
    """The run is set up: model, its size, the device and whether it continues a saved run."""

    KIND: ClassVar[str] = "config"
    device: str
    model: str
    parameters: int
    world_size: int = 1
    resumed: bool = False


@dataclass(frozen=True, kw_only=True)
class Start(Event):
    """Training starts (or resumes) at ``step``, aiming at ``steps`` optimizer steps in all."""

    KIND: ClassVar[str] = "start"
    steps: int


@dataclass(frozen=True, kw_only=True)
class Step(Event):
    """Training progress since the previous Step: mean loss, learning rate, throughput.

    ``phase`` names the stage of a multi-phase algorithm ("mle", "adversarial", ...; None for plain
    one-loss-per-batch training); ``metrics`` holds the algorithm's own numbers.
    """

    KIND: ClassVar[str] = "step"
    train_loss: float
    lr: float
    tokens_per_s: float
    phase: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.metrics:
            _check_extras(self.metrics, Step)

    def to_json(self) -> dict[str, Any]:
        out = {"event": self.KIND, "step": self.step, "time": self.time,
               "train_loss": _plain(self.train_loss), "lr": _plain(self.lr),
               "tokens_per_s": _plain(self.tokens_per_s)}
        if self.phase is not None:
            out["phase"] = self.phase
        return {**out, **{k: _plain(v) for k, v in self.metrics.items()}}

    @classmethod
    def _from(cls, data: Mapping[str, Any]) -> Step:
        return cls(step=data["step"], time=_time(data), train_loss=_float(data["train_loss"]),
                   lr=_float(data.get("lr")), tokens_per_s=_float(data.get("tokens_per_s")),
                   phase=data.get("phase"), metrics=_extras(data, Step))


@dataclass(frozen=True, kw_only=True)
class Eval(Event):
    """An evaluation: validation loss (None without a validation split), whether it is the best
    so far, perplexity and BLEU/chrF where the task has them, and any further ``metrics``."""

    KIND: ClassVar[str] = "eval"
    val_loss: float | None
    best: bool = False
    val_ppl: float | None = None
    bleu: float | None = None
    chrf: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.metrics:
            _check_extras(self.metrics, Eval)

    @classmethod
    def build(cls, step: int, best: bool, values: Mapping[str, Any]) -> Eval:
        """An Eval from an evaluation's result: the known keys, every other number an extra metric."""
        return cls._from({"step": step, "best": best, **values})

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.KIND, "step": self.step, "time": self.time,
                               "best": self.best, "val_loss": _plain(self.val_loss)}
        for name in ("val_ppl", "bleu", "chrf"):
            if (value := getattr(self, name)) is not None:
                out[name] = _plain(value)
        return {**out, **{k: _plain(v) for k, v in self.metrics.items()}}

    @classmethod
    def _from(cls, data: Mapping[str, Any]) -> Eval:
        # present but null (a non-finite value): NaN, stored as null again; absent: None, left out
        optional = {name: _float(data[name]) for name in ("val_ppl", "bleu", "chrf") if name in data}
        return cls(step=data["step"], time=_time(data), best=bool(data.get("best", False)),
                   val_loss=_float_or_none(data.get("val_loss")), metrics=_extras(data, Eval), **optional)


@dataclass(frozen=True)
class Written:
    """One sample shown at an evaluation: the prompt, what the model wrote, the reference if any."""

    prompt: str
    output: str
    reference: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"prompt": self.prompt, "output": self.output}
        return out if self.reference is None else {**out, "reference": self.reference}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Written:
        ref = data.get("reference")
        return cls(str(data.get("prompt", "")), str(data.get("output", "")),
                   None if ref is None else str(ref))


@dataclass(frozen=True, kw_only=True)
class Sample(Event):
    """The model's outputs for a few fixed validation prompts."""

    KIND: ClassVar[str] = "sample"
    samples: tuple[Written, ...]

    def to_json(self) -> dict[str, Any]:
        return {"event": self.KIND, "step": self.step, "time": self.time,
                "samples": [s.to_json() for s in self.samples]}

    @classmethod
    def _from(cls, data: Mapping[str, Any]) -> Sample:
        return cls(step=data["step"], time=_time(data),
                   samples=tuple(Written.from_json(s) for s in data.get("samples") or ()))


@dataclass(frozen=True, kw_only=True)
class Checkpoint(Event):
    """A checkpoint was written: ``kind`` "last" or "best"."""

    KIND: ClassVar[str] = "checkpoint"
    kind: str
    path: str


@dataclass(frozen=True, kw_only=True)
class Finished(Event):
    """The run reached its target (``reason`` "finished") or stopped early ("early_stopped")."""

    KIND: ClassVar[str] = "finished"
    reason: str = "finished"


@dataclass(frozen=True, kw_only=True)
class Stopped(Event):
    """The run was asked to stop; ``last.pt`` holds where it stands."""

    KIND: ClassVar[str] = "stopped"
    reason: str = "stopped"


@dataclass(frozen=True, kw_only=True)
class Failed(Event):
    """The run ended with an error, said in one line."""

    KIND: ClassVar[str] = "failed"
    message: str


KINDS: dict[str, type[Event]] = {
    cls.KIND: cls for cls in (Config, Start, Step, Eval, Sample, Checkpoint, Finished, Stopped, Failed)
}


def from_json(data: Mapping[str, Any]) -> Event:
    """The event a metrics.jsonl object describes; ValueError for an unknown kind or a malformed one."""
    kind = data.get("event") if isinstance(data, (dict, Mapping)) else None
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown training event {kind!r}")
    if not _is_number(data.get("step")):
        raise ValueError(f"{kind!r} event without a step")
    try:
        return cls._from(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed {kind!r} event: {exc}") from None


def parse_events(items: Iterable[Mapping[str, Any] | Event]) -> list[Event]:
    """Typed events from metrics.jsonl objects (typed ones pass through); unknown or malformed
    objects, e.g. from a newer version, are skipped."""
    out: list[Event] = []
    for item in items:
        if isinstance(item, Event):
            out.append(item)
            continue
        try:
            out.append(from_json(item))
        except ValueError as exc:
            log.debug("skipped a training event: %s", exc)
    return out


# --------------------------------------------------------------------------- helpers


_RESERVED: dict[type, frozenset[str]] = {}


def _reserved(cls: type[Event]) -> frozenset[str]:
    """The keys an event of ``cls`` has of its own (an extra metric may not take one)."""
    names = _RESERVED.get(cls)
    if names is None:
        names = _RESERVED[cls] = frozenset(f.name for f in fields(cls)) | {"event"}
    return names


def _check_extras(metrics: Mapping[str, float], cls: type[Event]) -> None:
    clash = sorted(set(metrics) & _reserved(cls))
    if clash:
        raise ValueError(f"extra metric names {clash} clash with the {cls.KIND!r} event's own keys")


def _extras(data: Mapping[str, Any], cls: type[Event]) -> dict[str, float]:
    """Every key that is not the event's own and holds a number (JSON null: a non-finite one)."""
    others = data.keys() - _reserved(cls)
    if not others:                 # the common case, checked at C speed: replaying long runs is hot
        return {}
    return {key: (math.nan if value is None else float(value)) for key, value in data.items()
            if key in others and (value is None or _is_number(value))}


def _time(data: Mapping[str, Any]) -> float:
    value = data.get("time")
    return float(value) if _is_number(value) else _now()


_NUMBERS = (int, float)


def _is_number(value: Any) -> bool:
    return type(value) in _NUMBERS or (isinstance(value, _NUMBERS) and not isinstance(value, bool))


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _plain(value: Any) -> Any:
    """JSON has no NaN or infinity: those are stored as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
