"""The model plug-in contract: everything model-specific lives in one :class:`ModelSpec`.

An architecture is one file in ``textgen_core/models/`` that defines its config (a frozen
dataclass), its ``nn.Module`` and a ``SPEC = ModelSpec(...)``; ``models/__init__.py`` registers it
with one line. The rest of the product (training, decoding, evaluation, the CLI, the studio) asks
the spec, never the class:

* ``kind``: what the model reads. ``"seq2seq"`` models train on (source, target) pairs
  (:class:`~textgen_core.data.Seq2SeqBatch`), ``"lm"`` models on windows of one token stream
  (:class:`~textgen_core.data.LMBatch`) and, on pair tasks, on prefix-LM rows ``source <sep>
  target <eos>`` whose targets are pad on the source part (:class:`~textgen_core.data.PrefixLMBatcher`).
* ``tasks``: the tasks it writes; any other is refused with "<name> writes couplets only".
* ``presets``: per preset (tiny / small / base), the model settings and, under ``train_presets``,
  the training settings that suit it (an RNN wants another learning rate than a Transformer).
* ``loss(model, batch, ctx)``: the training loss of one batch. ``ctx`` (:class:`TrainContext`)
  carries the step and the planned number of steps, which schedules such as scheduled sampling
  need. The default is token cross-entropy of the model's teacher-forced logits.
* ``stepper(model, src)``: how to decode with it, a :class:`~textgen_core.decoding.steppers.Stepper`
  whose per-row state is whatever the model needs (an encoder memory, an RNN's ``(h, c)``, a
  precomputed output).
* ``attention(model, src, tgt_in)``: the attention weights of one output, or ``None`` when the
  model has none (the attention panel then says so).

Models themselves expose what their stepper and loss use. The families of the zoo:

* full-prefix seq2seq (Transformer): ``forward(src, tgt_in) -> (B, T, V)``, ``encode(src)``,
  ``decode(memory, src, tgt_in, need_weights)``; with a KV cache also
  ``start_decoding(memory, src) -> cache`` and ``decode_cached(tgt_new, cache) -> (N, t, V)``
  (see :class:`~textgen_core.decoding.steppers.Seq2SeqStepper`);
* recurrent seq2seq (GRU / LSTM, with or without attention): ``forward(src, tgt_in) -> (B, T, V)``,
  ``start(src) -> state``, ``step(state, tokens (N,)) -> (logits (N, V), state)`` and
  ``reorder(state, index) -> state`` (see :class:`~textgen_core.decoding.steppers.RecurrentStepper`);
* taggers (CNN couplet tagger): ``forward(src) -> (B, S, V)``, one output per source position
  (see :class:`~textgen_core.decoding.steppers.TaggerStepper`);
* language models (GPT): ``forward(idx) -> (B, T, V)``; with a KV cache also ``new_cache(rows)``
  and ``forward(idx, cache=cache)`` (see :class:`~textgen_core.decoding.steppers.LMStepper`).

The default steppers (:func:`seq2seq_stepper`, :func:`lm_stepper`) decode with the KV cache
whenever the model offers it and re-run the whole prefix every step otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textgen_core.data import LMBatch, Seq2SeqBatch
from textgen_core.decoding.steppers import LMStepper, PromptedLMStepper, Seq2SeqStepper, Stepper
from textgen_core.errors import ConfigError

KINDS = ("seq2seq", "lm")
TASK_WORDS = {"couplet": "couplets", "translation": "translations", "continuation": "continuations"}

Batch = Seq2SeqBatch | LMBatch


@dataclass(frozen=True)
class TrainContext:
    """What a loss may need beyond the batch: where training stands and the loss settings."""

    step: int                 # optimizer steps done before this one
    total_steps: int          # the run's target
    pad_id: int
    label_smoothing: float = 0.0

    @property
    def progress(self) -> float:
        """0.0 at the first step, 1.0 at the last."""
        return min(1.0, self.step / max(1, self.total_steps))


def token_cross_entropy(logits: Tensor, target: Tensor, ctx: TrainContext) -> Tensor:
    """Mean cross-entropy over non-pad target tokens: logits (B, T, V), target (B, T)."""
    return F.cross_entropy(
        logits.float().reshape(-1, logits.size(-1)), target.reshape(-1),
        ignore_index=ctx.pad_id, label_smoothing=ctx.label_smoothing,
    )


def teacher_forced_loss(model: nn.Module, batch: Batch, ctx: TrainContext) -> Tensor:
    """The default loss: cross-entropy of the teacher-forced next-token logits."""
    if isinstance(batch, LMBatch):
        return token_cross_entropy(model(batch.x), batch.y, ctx)             # (B, T, V)
    return token_cross_entropy(model(batch.src, batch.tgt_in), batch.tgt_out, ctx)


def seq2seq_stepper(model: nn.Module, src: Tensor | None) -> Stepper:
    """Encoder-decoder decoding of ``src`` (B, S), right-padded; KV-cached when the model can."""
    if src is None:
        raise ConfigError("a seq2seq model needs source ids to decode from")
    return Seq2SeqStepper(model, src)


def lm_stepper(model: nn.Module, src: Tensor | None) -> Stepper:
    """Continuation: no source. Pairs (prefix LM): ``src`` holds the prompt rows ``source <sep>``,
    prefilled once into the KV cache when the model has one."""
    return LMStepper(model) if src is None else PromptedLMStepper(model, src)


def transformer_attention(model: nn.Module, src: Tensor | None, tgt_in: Tensor) -> Tensor:
    """Cross-attention (L, B, H, T, S) of an encoder-decoder with ``encode``/``decode``."""
    return model.decode(model.encode(src), src, tgt_in, need_weights=True).cross_attn


def lm_self_attention(model: nn.Module, src: Tensor | None, ids: Tensor) -> Tensor:
    """Causal self-attention (L, B, H, T, T) of a language model over ``ids``."""
    return model(ids, need_weights=True)[1]


def transformer_activation_bytes(config: Any, batch_size: int) -> int:
    """A rough training-activation size for a stack of attention blocks (with logits and grads)."""
    block = int(getattr(config, "block_size", 128) or 128)
    width = int(getattr(config, "n_embd", 0) or 0)
    layers = int(getattr(config, "n_layer", 0) or 0) + int(getattr(config, "decoder_layers", 0) or 0)
    vocab = int(getattr(config, "tgt_vocab_size", 0) or getattr(config, "vocab_size", 0) or 0)
    return batch_size * block * (width * layers * 34 + vocab * 8)


@dataclass(frozen=True)
class ModelSpec:
    """One registered architecture (see the module docstring)."""

    name: str                                       # "transformer", "gru-seq2seq", ...
    kind: str                                       # "seq2seq" | "lm": what it trains on
    config_cls: type                                # frozen dataclass
    model_cls: type                                 # nn.Module, constructed as model_cls(config)
    tasks: tuple[str, ...]                          # tasks it writes
    description: str                                # one line for `textgen models`
    presets: Mapping[str, Mapping[str, Any]]        # "tiny", "small", "base" -> model settings
    train_presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    loss: Callable[[nn.Module, Batch, TrainContext], Tensor] = teacher_forced_loss
    stepper: Callable[[nn.Module, Tensor | None], Stepper] | None = None
    attention: Callable[[nn.Module, Tensor | None, Tensor], Tensor] | None = None
    attention_kind: str = "cross"                   # "cross" (target x source) or "self"
    same_length: bool = False                       # output length is the input's by design
    activation_bytes: Callable[[Any, int], int] = transformer_activation_bytes
    # How it trains when not "one loss per batch": AlgorithmContext -> TrainingAlgorithm (see
    # textgen_core.training.algorithm); None: the default LossPerBatch.
    algorithm: Callable[..., Any] | None = None
    # Settings that replace the preset's on pair tasks (couplet, translation): e.g. a longer block
    # for a prefix LM whose story block is too short for `first line <sep> second line` rows.
    pair_settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"model {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def has_attention(self) -> bool:
        return self.attention is not None

    def check_task(self, task: str) -> None:
        """ConfigError unless the model writes ``task``: "cnn-tagger writes couplets only"."""
        if task not in self.tasks:
            does = " and ".join(TASK_WORDS.get(t, t) for t in self.tasks)
            raise ConfigError(f"{self.name} writes {does} only, not {TASK_WORDS.get(task, task)}")

    def make_stepper(self, model: nn.Module, src: Tensor | None = None) -> Stepper:
        """The decoding stepper for ``model`` (seq2seq models need the source ids (B, S))."""
        build = self.stepper or (lm_stepper if self.kind == "lm" else seq2seq_stepper)
        return build(model, src)

    def count_parameters(self, config: Any) -> int:
        """Parameters of the model ``config`` describes, built on the meta device (no memory)."""
        with torch.device("meta"):
            model = self.model_cls(config)
        return sum(p.numel() for p in model.parameters())

    def training_bytes(self, config: Any, parameters: int, batch_size: int) -> int:
        """Weights, gradients and AdamW state (16 bytes a parameter) plus the activations."""
        return parameters * 16 + self.activation_bytes(config, batch_size)
