"""Steppers: the small interface between a model and the search algorithms.

A stepper turns a batch of output prefixes into next-token logits and keeps whatever per-row state
the model needs (the encoder memory of a seq2seq model; later a KV cache). The searches in
:mod:`textgen_core.decoding.search` only ever talk to this interface, in the way joeynmt keeps
``search.py`` apart from its models, so a new model family only needs a new stepper.

Row bookkeeping: the search calls :meth:`Stepper.select` whenever the rows it will pass next differ
from the rows it passed last (beam reordering, expansion of one input into ``k`` beams or samples,
dropping finished samples). ``select(index)`` makes the new row ``i`` a copy of the old row
``index[i]``, exactly like ``Tensor.index_select(0, index)``.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from textgen_core.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["LMStepper", "PromptedLMStepper", "RecurrentStepper", "Seq2SeqStepper", "Stepper", "TaggerStepper"]


@runtime_checkable
class Stepper(Protocol):
    """Next-token scoring for a batch of prefixes, with row bookkeeping for beam search."""

    def logits(self, prefix: Tensor) -> Tensor:
        """Next-token logits: ``prefix`` (N, T) long, on any device -> (N, V) float32."""
        ...

    def select(self, index: Tensor) -> None:
        """Keep, reorder or repeat rows of the internal state: new row i = old row ``index[i]``.

        ``index`` is a 1-D long tensor on any device.
        """
        ...


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _warn_if_training(model: nn.Module) -> None:
    if model.training:
        logger.warning(
            "%s is in training mode: dropout is active while decoding (call model.eval())",
            type(model).__name__,
        )


class Seq2SeqStepper:
    """Stepper for an encoder-decoder model (``model.kind == "seq2seq"``).

    The source is encoded once at construction; every :meth:`logits` call runs the decoder over
    the whole prefix (no KV cache yet: a cached stepper only needs to keep the same interface and
    feed ``prefix[:, -1:]``). ``select`` index-selects the encoder memory and the source ids (the
    model derives its source padding mask from the ids).
    """

    def __init__(self, model: nn.Module, src: Tensor) -> None:
        if src.dim() == 1:
            src = src.unsqueeze(0)
        if src.dim() != 2 or src.size(0) < 1 or src.size(1) < 1:
            shape = tuple(src.shape)
            raise ConfigError(f"source ids must have shape (1, S) with S >= 1, got {shape}")
        _warn_if_training(model)
        self.model = model
        self.device = _model_device(model)
        self.src = src.to(self.device, torch.long)  # (B, S)
        with torch.inference_mode():
            self.memory = model.encode(self.src)  # (B, S, C)

    def logits(self, prefix: Tensor) -> Tensor:
        prefix = prefix.to(self.device, torch.long)  # (N, T)
        if prefix.size(0) != self.memory.size(0):
            raise ValueError(
                f"prefix has {prefix.size(0)} rows but the stepper holds {self.memory.size(0)}; "
                "call select() first"
            )
        out = self.model.decode(self.memory, self.src, prefix, need_weights=False)
        return out.logits[:, -1, :].float()  # (N, V)

    def select(self, index: Tensor) -> None:
        index = index.to(self.memory.device, torch.long)
        self.memory = self.memory.index_select(0, index)  # (N', S, C)
        self.src = self.src.index_select(0, index)  # (N', S)


class LMStepper:
    """Stepper for a decoder-only language model (``model.kind == "lm"``).

    The model sees at most ``model.block_size`` positions, so the prefix is cropped to its last
    ``block_size`` tokens (a sliding window) before each call. It holds no per-row state, so
    ``select`` has nothing to do (a KV-cached variant would reorder its cache there).
    """

    def __init__(self, model: nn.Module) -> None:
        block_size = int(model.block_size)
        if block_size < 1:
            raise ConfigError(f"model block_size must be >= 1, got {block_size}")
        _warn_if_training(model)
        self.model = model
        self.block_size = block_size
        self.device = _model_device(model)

    def logits(self, prefix: Tensor) -> Tensor:
        idx = prefix[:, -self.block_size :].to(self.device, torch.long)  # (N, <=block_size)
        return self.model(idx)[:, -1, :].float()  # (N, V)

    def select(self, index: Tensor) -> None:
        return None


class PromptedLMStepper:
    """Stepper for a decoder-only model writing the second part of a pair (a prefix LM).

    ``prompt`` (B, P) holds the rows ``source ids + [sep]``, all of one length (a language model
    has no padding mask). The search's prefix starts with a start token that stands for the prompt,
    as ``[bos]`` stands before a seq2seq decoder's output: it is dropped and the prompt put in its
    place, so searches, constraints and processors see the output positions exactly as with an
    encoder-decoder. The whole row must fit the model's ``block_size``: the prompt is never cut.
    """

    def __init__(self, model: nn.Module, prompt: Tensor) -> None:
        if prompt.dim() == 1:
            prompt = prompt.unsqueeze(0)
        if prompt.dim() != 2 or prompt.size(0) < 1 or prompt.size(1) < 1:
            raise ConfigError(f"prompt ids must have shape (B, P) with P >= 1, got {tuple(prompt.shape)}")
        _warn_if_training(model)
        self.model = model
        self.device = _model_device(model)
        self.prompt = prompt.to(self.device, torch.long)  # (B, P)

    def logits(self, prefix: Tensor) -> Tensor:
        prefix = prefix.to(self.device, torch.long)  # (N, T), prefix[:, 0] is the start token
        if prefix.size(0) != self.prompt.size(0):
            raise ValueError(
                f"prefix has {prefix.size(0)} rows but the stepper holds {self.prompt.size(0)}; "
                "call select() first"
            )
        idx = torch.cat([self.prompt, prefix[:, 1:]], dim=1)  # (N, P + T - 1)
        return self.model(idx)[:, -1, :].float()  # (N, V)

    def select(self, index: Tensor) -> None:
        self.prompt = self.prompt.index_select(0, index.to(self.device, torch.long))  # (N', P)


class RecurrentStepper:
    """Stepper for a recurrent seq2seq model: one decoder step per token, state carried along.

    The model provides ``start(src) -> state`` (the encoder run once, any structure of tensors),
    ``step(state, tokens) -> (logits (N, V), state)`` and ``reorder(state, index) -> state``. The
    stepper feeds the tokens of the prefix it has not fed yet (one per call while searching), so
    decoding time grows linearly with the output length, never re-running the prefix.
    """

    def __init__(self, model: nn.Module, src: Tensor) -> None:
        if src.dim() == 1:
            src = src.unsqueeze(0)
        _warn_if_training(model)
        self.model = model
        self.device = _model_device(model)
        with torch.inference_mode():
            self.state = model.start(src.to(self.device, torch.long))
        self.rows = src.size(0)
        self.fed = 0                                   # prefix tokens already fed
        self._last: Tensor | None = None               # logits after the last fed token (N, V)

    def logits(self, prefix: Tensor) -> Tensor:
        prefix = prefix.to(self.device, torch.long)  # (N, T)
        if prefix.size(0) != self.rows:
            raise ValueError(f"prefix has {prefix.size(0)} rows but the stepper holds {self.rows}; "
                             "call select() first")
        for t in range(self.fed, prefix.size(1)):
            self._last, self.state = self.model.step(self.state, prefix[:, t])
        self.fed = prefix.size(1)
        assert self._last is not None, "an empty prefix: start decoding from [bos]"
        return self._last.float()

    def select(self, index: Tensor) -> None:
        index = index.to(self.device, torch.long)
        self.state = self.model.reorder(self.state, index)
        if self._last is not None:
            self._last = self._last.index_select(0, index)
        self.rows = index.numel()


class PromptedRecurrentStepper(RecurrentStepper):
    """A recurrent language model writing the second part of a pair (a prefix LM), as
    :class:`PromptedLMStepper` does for a Transformer: ``model.start(prompt[:, :-1])`` reads the
    prompt but its last token (the separator), which is fed in place of the search's start token,
    so the first logits are those after the whole prompt. ``prompt`` (B, P), P >= 1, one length."""

    def __init__(self, model: nn.Module, prompt: Tensor) -> None:
        if prompt.dim() == 1:
            prompt = prompt.unsqueeze(0)
        if prompt.dim() != 2 or prompt.size(1) < 1:
            raise ConfigError(f"prompt ids must have shape (B, P) with P >= 1, got {tuple(prompt.shape)}")
        super().__init__(model, prompt[:, :-1])
        self.last_prompt = prompt[:, -1].to(self.device, torch.long)    # (B,)

    def logits(self, prefix: Tensor) -> Tensor:
        if self.fed == 0 and prefix.size(1) > 0:
            prefix = torch.cat([self.last_prompt[:, None], prefix[:, 1:].to(self.device)], dim=1)
        return super().logits(prefix)

    def select(self, index: Tensor) -> None:
        super().select(index)
        self.last_prompt = self.last_prompt.index_select(0, index.to(self.device, torch.long))


class TaggerStepper:
    """Stepper for a non-autoregressive tagger: the whole output is computed once.

    ``model(src)`` gives logits (B, S, V), one output per source position (the source's eos
    included). Position t of the output reads row t of that precomputation; the search's couplet
    rules and beam still apply on top, as rescoring per position. Past the source it offers eos
    only.
    """

    def __init__(self, model: nn.Module, src: Tensor, eos_id: int = 3) -> None:
        if src.dim() == 1:
            src = src.unsqueeze(0)
        _warn_if_training(model)
        self.device = _model_device(model)
        with torch.inference_mode():
            self.table = model(src.to(self.device, torch.long)).float()   # (B, S, V)
        self.eos_id = eos_id

    def logits(self, prefix: Tensor) -> Tensor:
        t = prefix.size(1) - 1                          # the prefix starts with bos
        if t < self.table.size(1):
            return self.table[:, t]                     # (N, V)
        out = torch.full_like(self.table[:, 0], float("-inf"))
        out[:, self.eos_id] = 0.0
        return out

    def select(self, index: Tensor) -> None:
        self.table = self.table.index_select(0, index.to(self.device, torch.long))
