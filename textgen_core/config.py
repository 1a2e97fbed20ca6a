"""Typed project settings and their TOML form.

A project's settings live in ``project.toml`` with one table per concern::

    [project]   task, name
    [data]      split mode, fractions and seed, maximum sequence length, direction
    [tokenizer] sentencepiece kind and vocabulary
    [model]     ``name`` plus that architecture's own settings (validated by the model registry)
    [train]     optimisation, schedule, evaluation and checkpoint cadence
    [generate]  default decoding settings for ``textgen generate`` and the studio

Every table except ``[model]`` maps onto a frozen dataclass validated in ``__post_init__``;
``--set section.key=value`` overrides any of them by its dotted name.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import tomllib

from textgen_core.corpus import SPLIT_MODES, TASKS
from textgen_core.decoding.config import DecodeConfig
from textgen_core.errors import ConfigError
from textgen_core.tokenizer import TokenizerConfig

SCHEDULES = ("cosine", "inverse_sqrt", "constant")
AMP_MODES = ("auto", "bf16", "fp16", "off")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRESETS = ("tiny", "small", "base")


@dataclass(frozen=True)
class DataConfig:
    """How the corpus becomes splits and sequences.

    ``split``: ``"random"`` draws the validation and test parts at random (from ``split_seed``):
    chunks of a novel, pairs (translation: sources) of a pair corpus. ``"tail"`` holds out the end
    of the corpus: a novel's head trains and its last ``valid_fraction`` (then ``test_fraction``)
    of the characters, cut at line boundaries, validate (then test), as nanoGPT's 90 %/10 %
    split; a pair corpus's last pairs, in file order, go to validation, then test.
    """

    valid_fraction: float = 0.05
    test_fraction: float = 0.05
    split: str = "random"      # random | tail (hold out the end of the corpus)
    split_seed: int = 1234
    max_len: int = 64          # tokens per side (seq2seq); ignored by language models (block_size rules)
    swap: bool = False         # translation: exchange source and target

    def __post_init__(self) -> None:
        for name in ("valid_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 0.5:
                raise ConfigError(f"data.{name} must be in [0, 0.5), got {value}")
        if self.max_len < 2:
            raise ConfigError(f"data.max_len must be at least 2, got {self.max_len}")
        _check_choice("data.split", self.split, SPLIT_MODES)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping of one training run."""

    steps: int = 2000
    batch_size: int = 32
    learning_rate: float = 5e-4
    min_lr: float = 5e-5
    warmup_steps: int = 100
    schedule: str = "cosine"           # cosine | inverse_sqrt | constant (after warm-up)
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.98
    grad_clip: float = 1.0             # 0 = off
    label_smoothing: float = 0.1
    grad_accum: int = 1
    amp: str = "auto"                  # auto (bf16/fp16 on CUDA, off elsewhere) | bf16 | fp16 | off
    eval_every: int = 200
    eval_batches: int = 20
    log_every: int = 10
    bleu_examples: int = 64            # validation examples (translation: sources) scored at each eval
    num_samples: int = 3               # fixed prompts generated at each evaluation
    early_stop_patience: int = 0       # evaluations without improvement before stopping; 0 = never
    seed: int = 1337
    device: str = "auto"

    def __post_init__(self) -> None:
        positive = ("steps", "batch_size", "grad_accum", "eval_every", "eval_batches", "log_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "bleu_examples", "num_samples", "early_stop_patience"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must not be negative, got {getattr(self, name)}")
        for name in ("learning_rate", "min_lr"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0) or (name == "learning_rate" and value == 0):
                raise ConfigError(f"train.{name} must be a positive number, got {value}")
        if self.min_lr > self.learning_rate:
            raise ConfigError(
                f"train.min_lr ({self.min_lr}) must not exceed train.learning_rate "
                f"({self.learning_rate})"
            )
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"train.{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"train.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ConfigError("train.weight_decay and train.grad_clip must not be negative")
        _check_choice("train.schedule", self.schedule, SCHEDULES)
        _check_choice("train.amp", self.amp, AMP_MODES)
        _check_choice("train.device", self.device, DEVICES)


# Training settings per preset; model settings per preset live with each architecture.
TRAIN_PRESETS: Mapping[str, Mapping[str, Any]] = {
    "tiny": {
        "steps": 300, "batch_size": 32, "learning_rate": 2e-3, "min_lr": 2e-4,
        "warmup_steps": 30, "eval_every": 50, "eval_batches": 4, "bleu_examples": 32,
        "log_every": 5, "label_smoothing": 0.0,
    },
    "small": {
        "steps": 3000, "batch_size": 64, "learning_rate": 1e-3, "min_lr": 1e-4,
        "warmup_steps": 200, "eval_every": 250, "eval_batches": 20, "log_every": 10,
    },
    "base": {
        "steps": 20000, "batch_size": 128, "learning_rate": 5e-4, "min_lr": 5e-5,
        "warmup_steps": 2000, "eval_every": 1000, "eval_batches": 50, "log_every": 50,
        "schedule": "inverse_sqrt",
    },
}


@dataclass(frozen=True)
class ProjectConfig:
    """Everything ``project.toml`` holds."""

    task: str
    name: str = "project"
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model_name: str = "transformer"
    model: Mapping[str, Any] = field(default_factory=dict)   # validated by the model registry
    train: TrainConfig = field(default_factory=TrainConfig)
    generate: DecodeConfig = field(default_factory=DecodeConfig)
    sources: tuple[str, ...] = ()                            # corpus files the project came from
    base: str = ""                   # the project whose model this one started from (init --from)

    def __post_init__(self) -> None:
        _check_choice("project.task", self.task, TASKS)

    def to_toml(self) -> str:
        """The TOML text of these settings (``None`` values are left out: TOML has no null)."""
        tables: dict[str, Mapping[str, Any]] = {
            "project": {"task": self.task, "name": self.name, "sources": list(self.sources),
                        **({"base": self.base} if self.base else {})},
            "data": dataclasses.asdict(self.data),
            "tokenizer": dataclasses.asdict(self.tokenizer),
            "model": {"name": self.model_name, **self.model},
            "train": dataclasses.asdict(self.train),
            "generate": dataclasses.asdict(self.generate),
        }
        lines = ["# TextGen Studio project settings (edit freely; `textgen info` checks them)"]
        for table, values in tables.items():
            lines.append(f"\n[{table}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in values.items() if v is not None]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], where: str = "project.toml") -> ProjectConfig:
        """Build from parsed TOML; unknown tables or keys are errors that name them."""
        known = {"project", "data", "tokenizer", "model", "train", "generate"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown table [{unknown[0]}]; expected {sorted(known)}")
        project = dict(raw.get("project", {}))
        model = dict(raw.get("model", {}))
        if "task" not in project:
            raise ConfigError(f"{where}: [project] has no 'task'")
        if "name" not in model:
            raise ConfigError(f"{where}: [model] has no 'name'")
        extra = sorted(set(project) - {"task", "name", "sources", "base"})
        if extra:
            raise ConfigError(f"{where}: unknown setting project.{extra[0]}")
        return cls(
            task=project["task"],
            name=str(project.get("name", "project")),
            sources=tuple(str(s) for s in project.get("sources", ())),
            base=str(project.get("base", "")),
            data=_dataclass_from("data", DataConfig, raw.get("data", {})),
            tokenizer=_dataclass_from("tokenizer", TokenizerConfig, raw.get("tokenizer", {})),
            model_name=str(model.pop("name")),
            model=model,
            train=_dataclass_from("train", TrainConfig, raw.get("train", {})),
            generate=_dataclass_from("generate", DecodeConfig, raw.get("generate", {})),
        )

    @classmethod
    def load(cls, path: Path) -> ProjectConfig:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path.parent}: not a TextGen project (no project.toml)") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        return cls.from_mapping(raw, where=str(path))

    def with_overrides(self, overrides: Sequence[str]) -> ProjectConfig:
        """Apply ``section.key=value`` strings (values parsed as TOML, else taken as text).

        A ``model.name`` naming another architecture starts the model section afresh: the old
        architecture's settings mean nothing to the new one (its other keys come from overrides).
        """
        raw = tomllib.loads(self.to_toml())
        names = [parse_override(item) for item in overrides]
        if any(key == "model.name" and value != self.model_name for key, value in names):
            raw["model"] = {}
        for item in overrides:
            key, value = parse_override(item)
            section, _, name = key.partition(".")
            if section not in raw or not name or "." in name:
                raise ConfigError(
                    f"--set {item}: expected SECTION.KEY with SECTION one of "
                    f"{', '.join(sorted(raw))}"
                )
            raw[section][name] = value
        return ProjectConfig.from_mapping(raw, where="--set")


def parse_override(item: str) -> tuple[str, Any]:
    """``"train.learning_rate=1e-3"`` -> ``("train.learning_rate", 0.001)``."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. train.batch_size=16")
    text = text.strip()
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    return key, value


def _check_choice(name: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _dataclass_from(section: str, cls: type, values: Mapping[str, Any]) -> Any:
    """Build a config dataclass, naming the setting in every error."""
    by_name = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in by_name:
            raise ConfigError(
                f"unknown setting {section}.{key}; valid: {', '.join(sorted(by_name))}"
            )
        kwargs[key] = coerce(f"{section}.{key}", value, by_name[key].default)
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(section) else f"{section}: {msg}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[{section}]: {exc}") from None


def coerce(name: str, value: Any, default: Any) -> Any:
    """Check ``value`` against the type of ``default`` (ints widen to floats, not the reverse)."""
    if default is None or default is dataclasses.MISSING:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{name} must be a whole number, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        return float(value)
    if isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"{name} must be text, got {value!r}")
    return value


def format_override(key: str, value: Any) -> str:
    """``"section.key=value"`` text that :meth:`ProjectConfig.with_overrides` reads back; ``None``
    is written ``none`` (the setting goes back to its default, "auto")."""
    return f"{key}={'none' if value is None else _toml_value(value)}"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
        text = repr(value)
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)   # JSON strings are valid TOML basic strings
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ConfigError(f"cannot write setting value {value!r} to TOML")
