"""Steppers: the small interface between a model and the search algorithms.

A stepper turns a batch of output prefixes into next-token logits and keeps whatever per-row state
the model needs (the key/value caches of a Transformer or GPT, an RNN's state). The searches in
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


class _RowCache(Protocol):
    """A model's decoding cache (``TransformerCache``, ``GPTCache``): per-row tensors."""

    def index_select(self, index: Tensor) -> _RowCache:
        ...


class _DecoderCache(_RowCache, Protocol):
    """An encoder-decoder's cache (``TransformerCache``): it can also forget the output fed."""

    def restart(self) -> _DecoderCache:
        ...


def _unfed(fed: Tensor | None, tokens: Tensor) -> Tensor | None:
    """The tokens (N, t) that ``tokens`` (N, T) adds after ``fed`` (N, F), or None when ``tokens``
    does not extend ``fed`` (a fresh search, other rows, another window): then re-prefill."""
    if fed is None or fed.size(0) != tokens.size(0) or tokens.size(1) < fed.size(1):
        return None
    if not torch.equal(tokens[:, : fed.size(1)], fed):
        return None
    return tokens[:, fed.size(1) :]


class _CachedFeed:
    """Bookkeeping shared by the KV-cached steppers (compare :class:`RecurrentStepper`).

    ``fed`` (N, F) holds the tokens whose keys and values are in ``state``, ``_last`` (N, V) the
    logits after the last of them. :meth:`_advance` feeds only the tokens a call adds to ``fed``
    (one per step while searching); when the tokens do not extend ``fed`` (a fresh search on the
    same stepper, say) it re-prefills from :meth:`_restart`: correctness first.
    """

    state: _RowCache | None
    fed: Tensor | None
    _last: Tensor | None

    def _restart(self, rows: int) -> None:
        """Reset ``state`` to before the first of ``rows`` rows' tokens, ``fed`` to None and
        ``_last`` to the logits there (None when nothing was read yet)."""
        raise NotImplementedError

    def _run(self, new: Tensor) -> Tensor:
        """Feed new (N, t) through the model and ``state`` -> logits (N, t, V)."""
        raise NotImplementedError

    def _advance(self, tokens: Tensor) -> Tensor:
        """tokens (N, T) -> next-token logits (N, V) float32 after them."""
        with torch.inference_mode():
            new = _unfed(self.fed, tokens)
            if new is None:
                self._restart(tokens.size(0))
                new = tokens
            repeat = new.size(1) == 0  # the same tokens as the last call
            if not repeat:
                self._last = self._run(new)[:, -1, :].float()  # (N, V)
            if self._last is None:
                raise ValueError("an empty prefix: start decoding from a start token")
            self.fed = tokens.clone()  # (N, T); a copy, so later in-place edits cannot fool it
        return self._last.clone() if repeat else self._last

    def _reorder(self, index: Tensor) -> None:
        """Row i of every piece of state becomes old row ``index[i]``."""
        with torch.inference_mode():
            if self.state is not None:
                self.state = self.state.index_select(index)
            if self.fed is not None:
                self.fed = self.fed.index_select(0, index)  # (N', F)
            if self._last is not None:
                self._last = self._last.index_select(0, index)  # (N', V)


class Seq2SeqStepper(_CachedFeed):
    """Stepper for an encoder-decoder model (``model.kind == "seq2seq"``).

    The source is encoded once at construction. Cached (the default, for models with
    ``start_decoding``/``decode_cached`` such as the Transformer): the cross-attention keys and
    values of the memory are projected once here, and each :meth:`logits` call feeds only the
    prefix tokens not fed yet, growing each decoder layer's self-attention cache by one position
    per step. Uncached (``cache=False``, or a model without that API): every call runs
    ``model.decode`` over the whole prefix, kept for tests and benchmarks. ``select``
    index-selects the caches (or the encoder memory) and the source ids (the model derives its
    source padding mask from them), so ``src`` (B, S) may hold several right-padded inputs.
    """

    def __init__(self, model: nn.Module, src: Tensor, cache: bool = True) -> None:
        if src.dim() == 1:
            src = src.unsqueeze(0)
        if src.dim() != 2 or src.size(0) < 1 or src.size(1) < 1:
            shape = tuple(src.shape)
            raise ConfigError(f"source ids must have shape (1, S) with S >= 1, got {shape}")
        _warn_if_training(model)
        self.model = model
        self.device = _model_device(model)
        self.src = src.to(self.device, torch.long)  # (B, S)
        self.cached = cache and hasattr(model, "decode_cached")
        self.memory: Tensor | None = None
        self.state: _DecoderCache | None = None
        self.fed, self._last = None, None
        with torch.inference_mode():
            memory = model.encode(self.src)  # (B, S, C)
            if self.cached:
                self.state = model.start_decoding(memory, self.src)  # cross K/V projected once
            else:
                self.memory = memory

    @property
    def rows(self) -> int:
        return self.src.size(0)

    def logits(self, prefix: Tensor) -> Tensor:
        prefix = prefix.to(self.device, torch.long)  # (N, T)
        if prefix.size(0) != self.rows:
            raise ValueError(
                f"prefix has {prefix.size(0)} rows but the stepper holds {self.rows}; "
                "call select() first"
            )
        if self.cached:
            return self._advance(prefix)
        out = self.model.decode(self.memory, self.src, prefix, need_weights=False)
        return out.logits[:, -1, :].float()  # (N, V)

    def _restart(self, rows: int) -> None:
        self.state = self.state.restart()  # the source's cross K/V stay
        self.fed, self._last = None, None

    def _run(self, new: Tensor) -> Tensor:
        return self.model.decode_cached(new, self.state)  # (N, t, V)

    def select(self, index: Tensor) -> None:
        index = index.to(self.device, torch.long)
        if self.memory is not None:
            self.memory = self.memory.index_select(0, index)  # (N', S, C)
        self._reorder(index)
        self.src = self.src.index_select(0, index)  # (N', S)


class LMStepper(_CachedFeed):
    """Stepper for a decoder-only language model (``model.kind == "lm"``).

    The model sees at most ``model.block_size`` positions, so the prefix is cropped to its last
    ``block_size`` tokens (a sliding window) before each call. Cached (the default, for models
    with ``new_cache`` such as GPT): each call feeds only the tokens added since the last one and
    ``select`` reorders the cache. Learned absolute positions cannot slide a cache, so once the
    prefix is longer than ``block_size`` every call re-prefills the last ``block_size`` tokens
    (the window nanoGPT crops to): exact, but past the block no faster than ``cache=False``, which
    runs the whole window every call (kept for tests and benchmarks). Without a cache the stepper
    holds no per-row state and ``select`` does nothing.
    """

    def __init__(self, model: nn.Module, cache: bool = True) -> None:
        block_size = int(model.block_size)
        if block_size < 1:
            raise ConfigError(f"model block_size must be >= 1, got {block_size}")
        _warn_if_training(model)
        self.model = model
        self.block_size = block_size
        self.device = _model_device(model)
        self.cached = cache and hasattr(model, "new_cache")
        self.state, self.fed, self._last = None, None, None
        self.start = 0  # prefix index of the token at cache position 0

    def logits(self, prefix: Tensor) -> Tensor:
        start = max(0, prefix.size(1) - self.block_size)
        idx = prefix[:, start:].to(self.device, torch.long)  # (N, <=block_size)
        if not self.cached:
            return self.model(idx)[:, -1, :].float()  # (N, V)
        if start != self.start:  # the window moved: positions shift, re-prefill
            self.fed, self.start = None, start
        return self._advance(idx)

    def _restart(self, rows: int) -> None:
        self.state = self.model.new_cache(rows)
        self.fed, self._last = None, None

    def _run(self, new: Tensor) -> Tensor:
        return self.model(new, cache=self.state)  # (N, t, V)

    def select(self, index: Tensor) -> None:
        if self.cached:
            self._reorder(index.to(self.device, torch.long))


class PromptedLMStepper(_CachedFeed):
    """Stepper for a decoder-only model writing the second part of a pair (a prefix LM).

    ``prompt`` (B, P) holds the rows ``source ids + [sep]``, all of one length (a language model
    has no padding mask). The search's prefix starts with a start token that stands for the prompt,
    as ``[bos]`` stands before a seq2seq decoder's output: it is dropped and the prompt put in its
    place, so searches, constraints and processors see the output positions exactly as with an
    encoder-decoder. The whole row must fit the model's ``block_size``: the prompt is never cut.
    Cached (the default, for models with ``new_cache``): the prompt is prefilled once here and
    each call feeds only the new output tokens; a re-prefill starts again from the prompt's cache
    (``origin`` maps each row to its prompt row). ``cache=False`` runs the whole row every call.
    """

    def __init__(self, model: nn.Module, prompt: Tensor, cache: bool = True) -> None:
        if prompt.dim() == 1:
            prompt = prompt.unsqueeze(0)
        if prompt.dim() != 2 or prompt.size(0) < 1 or prompt.size(1) < 1:
            raise ConfigError(f"prompt ids must have shape (B, P) with P >= 1, got {tuple(prompt.shape)}")
        _warn_if_training(model)
        self.model = model
        self.device = _model_device(model)
        self.prompt = prompt.to(self.device, torch.long)  # (B, P)
        self.cached = cache and hasattr(model, "new_cache")
        self.state, self.fed, self._last = None, None, None
        if self.cached:
            self.origin = torch.arange(self.prompt.size(0), device=self.device)  # (N,) prompt row
            with torch.inference_mode():
                self.prompt_state = model.new_cache(self.prompt.size(0))
                self.prompt_last = model(self.prompt, cache=self.prompt_state)[:, -1, :].float()  # (B, V)

    def logits(self, prefix: Tensor) -> Tensor:
        prefix = prefix.to(self.device, torch.long)  # (N, T), prefix[:, 0] is the start token
        if prefix.size(0) != self.prompt.size(0):
            raise ValueError(
                f"prefix has {prefix.size(0)} rows but the stepper holds {self.prompt.size(0)}; "
                "call select() first"
            )
        if self.cached:
            return self._advance(prefix[:, 1:])  # the output tokens after the prompt
        idx = torch.cat([self.prompt, prefix[:, 1:]], dim=1)  # (N, P + T - 1)
        return self.model(idx)[:, -1, :].float()  # (N, V)

    def _restart(self, rows: int) -> None:
        self.state = self.prompt_state.index_select(self.origin)  # a copy: the prompt's K/V
        self._last = self.prompt_last.index_select(0, self.origin)  # (N, V)
        self.fed = None

    def _run(self, new: Tensor) -> Tensor:
        return self.model(new, cache=self.state)  # (N, t, V)

    def select(self, index: Tensor) -> None:
        index = index.to(self.device, torch.long)
        self.prompt = self.prompt.index_select(0, index)  # (N', P)
        if self.cached:
            self.origin = self.origin.index_select(0, index)
            self._reorder(index)


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
