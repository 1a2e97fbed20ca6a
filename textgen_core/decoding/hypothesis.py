"""What a search produces: :class:`Hypothesis`, and the bookkeeping the searches share."""

from __future__ import annotations

from dataclasses import dataclass, field

Alternatives = tuple[tuple[int, float], ...]      # (token id, probability), most likely first


@dataclass(frozen=True)
class Hypothesis:
    """One decoded output: generated ids only (no prefix, no eos)."""

    ids: tuple[int, ...]
    score: float  # beam: length-normalised log-prob; greedy/sample: sum of log-probs
    token_logprobs: tuple[float, ...]  # one per id (the eos log-prob is only in score)
    finished: bool  # ended with eos (or reached forced_length); False = max_tokens or stopped
    alternatives: tuple[Alternatives, ...] = ()  # per id: the step's most likely tokens


@dataclass(frozen=True)
class Limits:
    """Length rules of one input."""

    steps: int  # tokens written at most (model calls)
    min_tokens: int  # eos banned while fewer tokens exist
    forced: bool  # reaching `steps` tokens counts as finished (the forced eos)


@dataclass
class Draft:
    """A hypothesis being built."""

    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    score: float = 0.0
    alternatives: list[Alternatives] = field(default_factory=list)

    def extended(self, token: int, logprob: float, alternatives: Alternatives) -> Draft:
        return Draft([*self.ids, token], [*self.logprobs, logprob], self.score + logprob,
                     [*self.alternatives, alternatives])

    def finish(self, *, finished: bool, alpha: float = 0.0, scored: int = 0) -> Hypothesis:
        score = self.score / length_penalty(scored, alpha) if alpha else self.score
        return Hypothesis(tuple(self.ids), score, tuple(self.logprobs), finished, tuple(self.alternatives))


def length_penalty(length: int, alpha: float) -> float:
    """GNMT length penalty ``((5 + length) / 6) ** alpha``."""
    return ((5.0 + length) / 6.0) ** alpha
