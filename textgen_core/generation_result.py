"""What writing produces: :class:`GenerationResult` with its :class:`Candidate` outputs and, on
request, the :class:`Attention` of one of them; ``to_json`` is the ``textgen generate --json`` line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Attention:
    """Attention of the produced output: ``weights[layer, head, query, key]``."""

    kind: str                    # "cross": output vs input (seq2seq); "self": text vs text (LM)
    weights: np.ndarray          # (L, H, Tq, Tk) float32
    query_tokens: list[str]
    key_tokens: list[str]


@dataclass(frozen=True)
class Alternative:
    """A token the model also considered at one output position."""

    token: str
    id: int
    p: float                     # its probability under the distribution the search used there


@dataclass(frozen=True)
class Candidate:
    text: str
    score: float
    ids: list[int]
    tokens: list[str]
    finished: bool
    passages: tuple[str, ...] = ()   # a story written passage by passage: each passage's text
    token_logprobs: list[float] = field(default_factory=list)      # one per id
    # per id, the step's most likely tokens, most likely first (a sampled or beam token may be
    # outside them)
    alternatives: list[list[Alternative]] = field(default_factory=list)
    tone: dict[str, Any] | None = None   # couplets: the 平仄 of both lines' last characters

    def to_json(self, prompt_ids: list[int]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "text": self.text, "score": self.score, "ids": self.ids, "prompt_ids": prompt_ids,
            "token_logprobs": self.token_logprobs,
            "alternatives": [[{"token": a.token, "id": a.id, "p": a.p} for a in step]
                             for step in self.alternatives],
        }
        if self.passages:
            out["passages"] = list(self.passages)
        out["tone"] = self.tone          # couplets; null when either tone is unknown or another task
        return out


@dataclass(frozen=True)
class GenerationResult:
    prompt: str
    prompt_ids: list[int]
    hypotheses: list[Candidate]          # best first
    attention: Attention | None = field(default=None, repr=False)
    no_attention: str | None = None   # why there is none to show, for a model without attention

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "prompt_ids": self.prompt_ids,
            "hypotheses": [h.to_json(self.prompt_ids) for h in self.hypotheses],
        }
