"""Constraints on what may be generated where, as logits processors.

:class:`CoupletPunctuation` keeps a couplet's form: the second line has punctuation exactly where the
first line has it (the same mark), and nowhere else.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor


def punctuation_ids(pieces: Iterable[str]) -> list[int]:
    """Ids whose piece is made only of punctuation characters (Unicode category P*)."""
    found = []
    for i, piece in enumerate(pieces):
        text = piece.replace("▁", "")
        if text and all(unicodedata.category(ch).startswith("P") for ch in text):
            found.append(i)
    return found


class CoupletPunctuation:
    """At output position i: the source's punctuation id if source[i] is punctuation, else no
    punctuation at all. Positions are counted after ``prefix_len`` start tokens."""

    def __init__(self, source_ids: Sequence[int], punctuation: Sequence[int], prefix_len: int = 1):
        self.source = list(source_ids)
        self.punct = sorted(set(punctuation))
        self.punct_set = set(self.punct)
        self.prefix_len = prefix_len

    def __call__(self, ids: Tensor, scores: Tensor) -> Tensor:
        pos = ids.size(1) - self.prefix_len                       # ids (N, T), scores (N, V)
        if pos >= len(self.source) or not self.punct:
            return scores
        want = self.source[pos]
        if want in self.punct_set:
            out = torch.full_like(scores, float("-inf"))
            out[:, want] = scores[:, want]
            return out
        index = torch.tensor(self.punct, device=scores.device)
        return scores.index_fill(-1, index, float("-inf"))
