"""Writing a story on passage by passage with a model that answers one passage with the next.

A sequence-to-sequence model trained on consecutive passages (:mod:`textgen_core.passages`) writes
one passage per call. To go on, its passage becomes the next source, a few rounds, until
``config.max_tokens`` tokens are written in all (the same budget a language model has), a passage
comes out empty, or the caller stops it (``on_token`` returning ``False``).

``n_best`` > 1 (beam or sampling) gives that many stories: the first round's hypotheses, each one
written on with the best (or one sampled) passage per round. A seeded run stays reproducible: round
r samples with ``seed + r``. Decoding itself is the caller's ``answer`` function, so this module
knows no model and no torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from textgen_core.decoding.config import DecodeConfig

__all__ = ["Story", "write_passages"]


class _Passage(Protocol):
    """What ``answer`` gives per hypothesis (a :class:`~textgen_core.decoding.search.Hypothesis`)."""

    @property
    def ids(self) -> Sequence[int]: ...
    @property
    def score(self) -> float: ...


# (source ids, config, on_token) -> hypotheses, best first
Answer = Callable[[list[int], DecodeConfig, Callable[[int], bool] | None], Sequence[_Passage]]


@dataclass(frozen=True)
class Story:
    """One continuation: its passages (ids, no eos) and the source each was written from."""

    passages: tuple[tuple[int, ...], ...]
    sources: tuple[tuple[int, ...], ...]
    score: float          # sum of the passages' scores
    finished: bool        # False when the caller stopped it

    @property
    def ids(self) -> list[int]:
        return [token for passage in self.passages for token in passage]


def write_passages(
    answer: Answer,
    source: Sequence[int],
    config: DecodeConfig,
    *,
    max_source: int,
    on_token: Callable[[int], bool] | None = None,
) -> list[Story]:
    """Stories written on from ``source`` (ids of the passage to continue), best first.

    ``max_source``: the most ids a source may have; a longer passage is fed back by its end.
    """
    stop = {"asked": False}

    def relay(token: int) -> bool:
        if on_token is not None and on_token(token) is False:
            stop["asked"] = True
            return False
        return True

    first = answer(list(source), _round(config, 0, config.max_tokens), relay if on_token else None)
    stories = [
        _go_on(answer, tuple(source), hyp, config, max_source, relay if on_token else None, stop)
        for hyp in first
    ]
    return sorted(stories, key=lambda s: s.score, reverse=True)


def _go_on(
    answer: Answer, source: tuple[int, ...], hyp: _Passage, config: DecodeConfig, max_source: int,
    relay: Callable[[int], bool] | None, stop: dict[str, bool],
) -> Story:
    """Feed each passage back as the next source until the budget is spent (see the module)."""
    passages: list[tuple[int, ...]] = []
    sources: list[tuple[int, ...]] = []
    score, budget = 0.0, config.max_tokens
    while True:
        ids = tuple(hyp.ids)
        if not ids:
            break
        passages.append(ids)
        sources.append(source)
        score += float(hyp.score)
        budget -= len(ids)
        if stop["asked"] or budget <= 0:
            break
        source = ids[-max_source:]
        hyp = answer(list(source), _round(config, len(passages), budget), relay)[0]
    return Story(tuple(passages), tuple(sources), score, not stop["asked"])


def _round(config: DecodeConfig, number: int, budget: int) -> DecodeConfig:
    """Settings of round ``number``: the tokens left (a passage has one at least), one hypothesis
    after the first round."""
    changes: dict[str, object] = {"max_tokens": budget, "min_tokens": min(max(1, config.min_tokens), budget)}
    if number:
        changes["n_best"] = 1
        if config.seed is not None:
            changes["seed"] = config.seed + number
    return replace(config, **changes)
