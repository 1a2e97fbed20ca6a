"""The model zoo: a registry of architectures, their configs and presets.

Each architecture is one file that defines a config, a module and a ``SPEC`` (see
:mod:`textgen_core.models.contract` for what a spec owns); it is added here with one line::

    register(gru_seq2seq.SPEC)

Everything else (CLI, studio, training, decoding, checkpoints) goes through the functions here.
Configs are frozen dataclasses whose fields are plain ``int``/``float``/``bool``/``str`` (or such
``| None``). The tokenizer-derived fields are injected by :func:`build_config` under these names,
where the config has them: ``src_vocab_size``, ``tgt_vocab_size``, ``vocab_size`` (= the target
vocabulary, for language models) and ``pad_id``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from textgen_core.config import TRAIN_PRESETS
from textgen_core.decoding.steppers import Stepper
from textgen_core.errors import ConfigError
from textgen_core.models import (
    bahdanau,
    cnn_tagger,
    gpt,
    gru_seq2seq,
    lstm_seq2seq,
    luong,
    seqgan,
    transformer,
)
from textgen_core.models.contract import ModelSpec, TrainContext
from textgen_core.models.gpt import GPT, GPTConfig
from textgen_core.models.layers import DecoderOutput
from textgen_core.models.transformer import Transformer, TransformerConfig

__all__ = [
    "GPT",
    "DecoderOutput",
    "GPTConfig",
    "ModelSpec",
    "TrainContext",
    "Transformer",
    "TransformerConfig",
    "build_config",
    "build_model",
    "config_from_dict",
    "config_to_dict",
    "default_model",
    "get_spec",
    "list_specs",
    "make_stepper",
    "preset_settings",
    "register",
    "spec_of",
    "train_settings",
]

INJECTED_FIELDS = ("src_vocab_size", "tgt_vocab_size", "vocab_size", "pad_id")
# The default architecture per task; a task missing here falls back to the first registered
# model that serves it.
_DEFAULT_FOR_TASK = {"couplet": "transformer", "translation": "transformer", "continuation": "gpt"}

_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> None:
    """Add an architecture. A name can be registered once (ValueError otherwise)."""
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered")
    if not dataclasses.is_dataclass(spec.config_cls):
        raise ValueError(f"model {spec.name!r}: config_cls must be a dataclass")
    _REGISTRY[spec.name] = spec


def spec_of(model: nn.Module) -> ModelSpec:
    """The spec of a built model (wrapped in DistributedDataParallel or not)."""
    model = getattr(model, "module", model)
    for spec in _REGISTRY.values():
        if type(model) is spec.model_cls:
            return spec
    raise ConfigError(f"{type(model).__name__} is not a registered model")


def make_stepper(model: nn.Module, src: Tensor | None = None) -> Stepper:
    """The decoding stepper the model's spec names; seq2seq models need the source ids (B, S)."""
    return spec_of(model).make_stepper(model, src)


def train_settings(name: str, preset: str) -> dict[str, Any]:
    """Training settings of ``preset`` for model ``name``: the shared preset, then the model's own."""
    spec = get_spec(name)
    if preset not in TRAIN_PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; available: {', '.join(TRAIN_PRESETS)}")
    return {**TRAIN_PRESETS[preset], **spec.train_presets.get(preset, {})}


def get_spec(name: str) -> ModelSpec:
    """The spec registered as ``name``; ConfigError listing the available ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        available = ", ".join(sorted(_REGISTRY))
        raise ConfigError(f"unknown model {name!r}; available: {available}") from None


def list_specs() -> list[ModelSpec]:
    """Every registered spec, sorted by name."""
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def default_model(task: str) -> str:
    """The architecture a new project for ``task`` starts with."""
    name = _DEFAULT_FOR_TASK.get(task)
    if name in _REGISTRY:
        return name
    for spec in _REGISTRY.values():
        if task in spec.tasks:
            return spec.name
    known = sorted({t for spec in _REGISTRY.values() for t in spec.tasks})
    raise ConfigError(f"unknown task {task!r}; known: {', '.join(known)}")


def preset_settings(name: str, preset: str) -> dict[str, Any]:
    """A copy of a model's preset settings; ConfigError naming the presets if unknown."""
    spec = get_spec(name)
    if preset not in spec.presets:
        raise ConfigError(
            f"unknown preset {preset!r} for model {name!r}; available: {', '.join(spec.presets)}"
        )
    return dict(spec.presets[preset])


def build_config(
    name: str,
    settings: Mapping[str, Any],
    *,
    src_vocab_size: int,
    tgt_vocab_size: int,
    pad_id: int,
) -> Any:
    """Config for model ``name``: its defaults, overridden by ``settings``, plus the tokenizer's
    sizes and pad id. Settings are checked and coerced (``"3"`` -> 3, ``2.0`` -> 2, ``1`` -> 1.0,
    ``"false"`` -> False); an injected field may appear in ``settings`` (as in the output of
    :func:`config_to_dict`) only with the same value the tokenizer gives.
    """
    spec = get_spec(name)
    types_ = _field_types(spec.config_cls)
    offered = {
        "src_vocab_size": src_vocab_size,
        "tgt_vocab_size": tgt_vocab_size,
        "vocab_size": tgt_vocab_size,
        "pad_id": pad_id,
    }
    injected = {key: value for key, value in offered.items() if key in types_}
    values = _coerce_settings(name, settings, types_)
    for key, value in injected.items():
        if key in values and values[key] != value:
            raise ConfigError(f"model.{key}={values[key]} does not match the tokenizer, which gives {value}")
    values.update(injected)
    return _construct(name, spec.config_cls, values)


def config_from_dict(name: str, data: Mapping[str, Any]) -> Any:
    """Rebuild a complete config (e.g. one stored in a checkpoint) with the same checks as
    :func:`build_config` but nothing injected: the vocabulary sizes must be in ``data``."""
    spec = get_spec(name)
    values = _coerce_settings(name, data, _field_types(spec.config_cls))
    return _construct(name, spec.config_cls, values)


def build_model(name: str, config: Any) -> nn.Module:
    """Instantiate model ``name`` from its config."""
    spec = get_spec(name)
    if not isinstance(config, spec.config_cls):
        raise ConfigError(f"model {name!r} needs a {spec.config_cls.__name__}, got {type(config).__name__}")
    return spec.model_cls(config)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A plain dict of the config's fields, fit for JSON and TOML.

    Fields that are None are left out (TOML has no null), so they take their default again on
    the way back; every optional field in the zoo defaults to None.
    """
    out = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if value is not None:
            out[field.name] = value
    return out


# --------------------------------------------------------------------------- helpers


def _field_types(config_cls: type) -> dict[str, Any]:
    """Field name -> resolved annotation (configs use ``from __future__ import annotations``)."""
    hints = typing.get_type_hints(config_cls)
    return {field.name: hints[field.name] for field in dataclasses.fields(config_cls)}


def _coerce_settings(name: str, settings: Mapping[str, Any], types_: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(str(key) for key in settings if key not in types_)
    if unknown:
        valid = ", ".join(sorted(key for key in types_ if key not in INJECTED_FIELDS))
        plural = "s" if len(unknown) > 1 else ""
        raise ConfigError(f"unknown model setting{plural} {', '.join(unknown)} for {name!r}; valid: {valid}")
    return {key: _coerce(key, value, types_[key]) for key, value in settings.items()}


def _construct(name: str, config_cls: type, values: dict[str, Any]) -> Any:
    missing = [
        field.name
        for field in dataclasses.fields(config_cls)
        if field.name not in values
        and field.default is dataclasses.MISSING
        and field.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"model {name!r} is missing setting(s): {', '.join(missing)}")
    return config_cls(**values)


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Coerce one setting to its annotated type, or raise ConfigError naming ``model.<key>``."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
            return None
        rest = [arg for arg in args if arg is not type(None)]
        annotation = rest[0] if len(rest) == 1 else annotation
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ConfigError(f"model.{key} must be true or false, got {value!r}")
    if annotation is int:
        return _to_int(key, value)
    if annotation is float:
        return _to_float(key, value)
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"model.{key} must be text, got {value!r}")
    return value  # an annotation the zoo does not use yet: left to the config's own checks


def _to_int(key: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"model.{key} must be a whole number, got {value!r}")


def _to_float(key: str, value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"model.{key} must be a number, got {value!r}")


# --------------------------------------------------------------------------- the zoo
# One line per architecture: its file defines config, module and SPEC.

register(transformer.SPEC)
register(gpt.SPEC)
register(cnn_tagger.SPEC)
register(gru_seq2seq.SPEC)
register(lstm_seq2seq.SPEC)
register(bahdanau.SPEC)
register(luong.SPEC)
register(seqgan.SPEC)
