"""Logits processors: small composable transforms of next-token scores.

Modelled on Hugging Face ``transformers``' ``logits_process`` module. Every processor is called as
``processor(ids, scores)`` with ``ids`` (N, T) long, the whole sequence so far (prefix included,
as in Hugging Face), and ``scores`` (N, V) float; it returns new scores and never modifies its
input in place. Arguments are validated at construction and raise
:class:`~textgen_core.errors.ConfigError` naming the option.

References: temperature/top-k sampling (Fan et al., 2018, "Hierarchical Neural Story
Generation"); nucleus sampling (Holtzman et al., 2020, "The Curious Case of Neural Text
Degeneration"); min-p sampling (Nguyen et al., 2024); repetition penalty (Keskar et al., 2019,
"CTRL"); n-gram blocking (Paulus et al., 2018, "A Deep Reinforced Model for Abstractive
Summarization").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import torch
from torch import Tensor

from textgen_core.decoding.config import DecodeConfig, check_top_p
from textgen_core.errors import ConfigError

__all__ = [
    "LogitsProcessor",
    "MinPProcessor",
    "NoRepeatNGramProcessor",
    "RepetitionPenaltyProcessor",
    "SuppressTokensProcessor",
    "TemperatureProcessor",
    "TopKProcessor",
    "TopPProcessor",
    "apply_processors",
    "build_processors",
]


class LogitsProcessor(Protocol):
    def __call__(self, ids: Tensor, scores: Tensor) -> Tensor:
        """``ids`` (N, T) long, ``scores`` (N, V) float -> new scores (N, V); input untouched."""
        ...


def _positive_float(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be > 0, got {value}")
    return float(value)


def _int_at_least(name: str, value: int, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ConfigError(f"{name} must be >= {low}, got {value}")
    return value


class TemperatureProcessor:
    """Divide the scores by ``temperature`` (> 0); below 1 sharpens, above 1 flattens."""

    def __init__(self, temperature: float) -> None:
        self.temperature = _positive_float("temperature", temperature)

    def __call__(self, ids: Tensor, scores: Tensor) -> Tensor:
        return scores / self.temperature


class TopKProcessor:
    """Keep the ``top_k`` (>= 1) highest scores of each row, set the rest to -inf.

    Exactly ``min(top_k, V)`` tokens survive; ties at the boundary go to the lower token id.
    """

    def __init__(self, top_k: int) -> None:
        self.top_k = _int_at_least("top_k", top_k, 1)

    def __call__(self, ids: Tensor, scores: Tensor) -> Tensor:
        k = min(self.top_k, scores.size(-1))
        keep = scores.topk(k, dim=-1).indices  # (N, k)
        banned = torch.ones_like(scores, dtype=torch.bool).scatter(-1, keep, False)  # (N, V)
        return scores.masked_fill(banned, -math.inf)


class TopPProcessor:
    """Nucleus filtering: keep the smallest set of top tokens whose probability mass >= ``top_p``.

    ``top_p`` in (0, 1]; at least ``min_tokens_to_keep`` (default 1) tokens always survive.
    """

    def __init__(self, top_p: float, min_tokens_to_keep: int = 1) -> None:
        self.top_p = check_top_p(top_p)
        self.min_tokens_to_keep = _int_at_least("min_tokens_to_keep", min_tokens_to_keep, 1)

    def __call__(self, ids: Tensor, scores: Tensor) -> Tensor:
        if self.top_p >= 1.0:
            return scores
        sorted_scores, order = scores.sort(dim=-1, descending=True)  # (N, V)
        probs = sorted_scores.float().softmax(dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs  # mass of the strictly better tokens
        drop_sorted = mass_before >= self.top_p  # (N, V): the nucleus is already complete
        drop_sorted[:, : self.min_tokens_to_keep] = False
        drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
        return scores.masked_fill(drop, -math.inf)


class MinPProcessor:
    """Min-p sampling: drop tokens whose probability is below ``min_p`` times the most likely
    token's (Nguyen et al., 2024, "Turning Up the Heat: Min-p Sampling for Creative and Coherent
    LLM Outputs"). ``min_p`` in (0, 1]; the most likely token always survives."""

    def __init__(self, min_p: float) -> None:
        if isinstance(min_p, bool) or not isinstance(min_p, int | float) or not 0.0 < min_p <= 1.0:
            raise ConfigError(f"min_p must be a number in (0, 1], got {min_p!r}")
        self.log_min_p = math.log(float(min_p))

    def __call__(self, ids: Tensor, scores: Tensor) -> Tensor:
        logp = scores.float().log_softmax(dim=-1)                       # (N, V)
        top = logp.max(dim=-1, keepdim=True).values                     # (N, 1)
        return scores.masked_fill(logp < top + self.log_min_p, -math.inf)


class RepetitionPenaltyProcessor:
    """CTRL repetition penalty: for tokens already in ``ids``, divide positive scores by
    ``penalty`` and multiply negative ones by it (``penalty`` > 1 discourages repeats)."""

    def __init__(self, penalty: float) -> None:
        self.penalty = _positive_float("repetition_penalty", penalty)

    def __call__(self, ids: Tensor, scores: Tensor) -> Tensor:
        if ids.size(-1) == 0 or self.penalty == 1.0:
            return scores
        ids = ids.to(scores.device)
        seen = scores.gather(-1, ids)  # (N, T)
        seen = torch.where(seen > 0, seen / self.penalty, seen * self.penalty)
        return scores.scatter(-1, ids, seen)  # duplicates write the same value


class NoRepeatNGramProcessor:
    """Ban every token that would complete an n-gram (``n`` >= 1) already present in ``ids``."""

    def __init__(self, n: int) -> None:
        self.n = _int_at_least("no_repeat_ngram", n, 1)

    def __call__(self, ids: Tensor, scores: Tensor) -> Tensor:
        n, length = self.n, ids.size(-1)
        if length < n:
            return scores
        ids = ids.to(scores.device)
        windows = ids.unfold(-1, n, 1)  # (N, W, n) every n-gram so far
        context = ids[:, length - n + 1 :]  # (N, n-1) the n-gram the next token would complete
        match = (windows[:, :, :-1] == context[:, None, :]).all(dim=-1)  # (N, W)
        hits = torch.zeros(scores.shape, dtype=torch.long, device=scores.device)
        hits = hits.scatter_add(-1, windows[:, :, -1], match.long())  # (N, V)
        return scores.masked_fill(hits > 0, -math.inf)


class SuppressTokensProcessor:
    """Never produce the given token ids (e.g. pad, bos, unk): their scores become -inf."""

    def __init__(self, token_ids: Sequence[int]) -> None:
        ids = list(token_ids)
        for tok in ids:
            if isinstance(tok, bool) or not isinstance(tok, int) or tok < 0:
                raise ConfigError(f"banned token ids must be non-negative integers, got {tok!r}")
        self.token_ids = tuple(sorted(set(ids)))

    def __call__(self, ids: Tensor, scores: Tensor) -> Tensor:
        if not self.token_ids:
            return scores
        vocab = scores.size(-1)
        if self.token_ids[-1] >= vocab:
            raise ConfigError(
                f"banned token id {self.token_ids[-1]} is outside the vocabulary (size {vocab})"
            )
        banned = torch.zeros(vocab, dtype=torch.bool, device=scores.device)
        banned[list(self.token_ids)] = True
        return scores.masked_fill(banned, -math.inf)


def apply_processors(processors: Sequence[LogitsProcessor], ids: Tensor, scores: Tensor) -> Tensor:
    """Run ``processors`` in order: ``ids`` (N, T), ``scores`` (N, V) -> (N, V)."""
    for processor in processors:
        scores = processor(ids, scores)
    return scores


def build_processors(config: DecodeConfig, banned_ids: Sequence[int] = ()) -> list[LogitsProcessor]:
    """The processors a decoding ``config`` asks for, in application order.

    Order: repetition penalty, n-gram blocking, banned tokens, then (sampling only) temperature,
    top-k, top-p and min-p. Greedy and beam search get only the first three: they rank tokens by the
    temperature-free model distribution, and truncation would not change the argmax anyway.
    """
    processors: list[LogitsProcessor] = []
    if config.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyProcessor(config.repetition_penalty))
    if config.no_repeat_ngram > 0:
        processors.append(NoRepeatNGramProcessor(config.no_repeat_ngram))
    if banned_ids:
        processors.append(SuppressTokensProcessor(banned_ids))
    if config.strategy != "sample":
        return processors
    if config.temperature != 1.0:
        processors.append(TemperatureProcessor(config.temperature))
    if config.top_k > 0:
        processors.append(TopKProcessor(config.top_k))
    if config.top_p < 1.0:
        processors.append(TopPProcessor(config.top_p))
    if config.min_p > 0.0:
        processors.append(MinPProcessor(config.min_p))
    return processors
