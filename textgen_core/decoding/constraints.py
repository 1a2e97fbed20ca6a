"""Constraints on what may be generated where, as logits processors.

Two rules of couplet form (对联格律), both applied to the second line (下联) as it is written:

* :class:`CoupletPunctuation`: punctuation exactly where the first line has it (the same mark), and
  nowhere else.
* :class:`CoupletRepetition`: repeated characters mirror the first line's (in 风声雨声读书声 /
  家事国事天下事, 事 stands wherever 声 does), and otherwise no character is used twice nor taken
  from the first line (上下联不重字). Besides being the rule, this stops a weak
  model's favourite failure, one frequent character over and over (水水水水水水水).
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


class CoupletRepetition:
    """Mirror the first line's repeats; ban every other repeat and the first line's characters.

    At output position i: if the first line's character i already occurred at an earlier j, the
    output must repeat its own character j; otherwise the characters of the first line and those
    the output already used are banned. ``punctuation`` is left to :class:`CoupletPunctuation`.
    """

    def __init__(self, source_ids: Sequence[int], punctuation: Sequence[int], prefix_len: int = 1):
        self.source = list(source_ids)
        self.prefix_len = prefix_len
        punct = set(punctuation)
        first_at: dict[int, int] = {}
        self.earlier: list[int | None] = []    # position i -> where source[i] first stood, if before i
        for i, t in enumerate(self.source):
            self.earlier.append(None if t in punct else first_at.get(t))
            first_at.setdefault(t, i)
        self.banned = sorted({t for t in self.source if t not in punct})
        self.punct = sorted(punct)

    def __call__(self, ids: Tensor, scores: Tensor) -> Tensor:
        pos = ids.size(1) - self.prefix_len                       # ids (N, T), scores (N, V)
        if pos >= len(self.source):
            return scores
        j = self.earlier[pos]
        if j is not None:                                          # mirror: repeat output[j]
            want = ids[:, self.prefix_len + j : self.prefix_len + j + 1]            # (N, 1)
            out = torch.full_like(scores, float("-inf"))
            return out.scatter(1, want, scores.gather(1, want))
        out = scores
        if self.banned:
            out = out.index_fill(-1, torch.tensor(self.banned, device=scores.device), float("-inf"))
        used = ids[:, self.prefix_len :]                                           # (N, pos)
        if used.numel():
            keep = scores.gather(1, used)         # punctuation may recur: it is not a character
            is_punct = torch.isin(used, torch.tensor(self.punct, device=ids.device, dtype=ids.dtype))
            out = out.scatter(1, used, torch.where(is_punct, keep, torch.full_like(keep, float("-inf"))))
        return out
