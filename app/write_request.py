"""What the Write panel asks the generation worker for: plain data, no Qt, no torch.

* :class:`WriteRequest`: write for one input (a couplet's first line, a text to translate, a story to
  continue) with one :class:`~textgen_core.decoding.config.DecodeConfig`, the couplet's locked
  characters and, to branch from a chosen token, the output ids to start from (``forced_prefix``).
* :class:`CompareRequest`: the same input written with several settings one after the other (greedy,
  beam and sampling: :func:`compare_configs`), for a side-by-side table.
* :class:`AttentionRequest`: the attention of one hypothesis (any of the n-best, not only the first).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from textgen_core.decoding.config import DecodeConfig


@dataclass(frozen=True)
class WriteRequest:
    text: str
    config: DecodeConfig
    mode: str                                   # "couplet" | "translation" | "continuation"
    locks: dict[int, str] = field(default_factory=dict)     # couplets: 1-based position -> character
    forced_prefix: tuple[int, ...] = ()         # output ids to start from ("branch here")

    @property
    def stream(self) -> bool:
        """Tokens are streamed as they come: greedy or sampling with one output (the search
        streams nothing else)."""
        return self.config.strategy != "beam" and self.config.n_best == 1

    def branched(self, prefix: list[int]) -> WriteRequest:
        """The same input and settings, starting from ``prefix``."""
        return replace(self, forced_prefix=tuple(int(t) for t in prefix))


@dataclass(frozen=True)
class CompareRequest:
    text: str
    mode: str
    runs: tuple[tuple[str, DecodeConfig], ...]  # (label, settings), written in this order
    locks: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CompareRow:
    """One column of the comparison: its label and settings, and the result (or why there is none)."""

    label: str
    config: DecodeConfig
    result: Any = None                          # GenerationResult
    error: str = ""


@dataclass(frozen=True)
class AttentionRequest:
    key: int                                    # the panel's selection this is for
    prompt_ids: list[int]
    ids: list[int]


def compare_configs(config: DecodeConfig) -> tuple[tuple[str, DecodeConfig], ...]:
    """Greedy, beam search (with ``config``'s beam size and length penalty) and sampling (with its
    temperature, top-k, top-p, min-p and seed), one output each; the other settings (repetition
    penalty, n-gram blocking, length, couplet rules) as in ``config``."""
    one = replace(config, n_best=1)
    beam = replace(one, strategy="beam")
    sample = replace(one, strategy="sample")
    knobs = [f"T {sample.temperature:g}"]
    knobs += [f"top-k {sample.top_k}"] if sample.top_k else []
    knobs += [f"top-p {sample.top_p:g}"] if sample.top_p < 1.0 else []
    knobs += [f"min-p {sample.min_p:g}"] if sample.min_p > 0.0 else []
    knobs += [f"seed {sample.seed}"] if sample.seed is not None else []
    return (
        ("Greedy", replace(one, strategy="greedy")),
        (f"Beam search\n{beam.beam_size} beams", beam),
        ("Sampling\n" + _lines(knobs), sample),
    )


def _lines(words: list[str], width: int = 16) -> str:
    """``words`` joined by " · ", on as many lines of about ``width`` characters as they need (a
    narrow table's header)."""
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 3 + len(word) <= width:
            lines[-1] += " · " + word
        else:
            lines.append(word)
    return "\n".join(lines)


@dataclass(frozen=True)
class Selection:
    """The hypothesis the Write panel shows: ``result.hypotheses[index]``; ``key`` tells this
    selection from earlier ones (an attention computed for an earlier one is dropped)."""

    key: int
    result: Any                                 # GenerationResult
    index: int

    @property
    def candidate(self) -> Any:
        return self.result.hypotheses[self.index]
