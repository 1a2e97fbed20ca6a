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


def is_punctuation(ch: str) -> bool:
    """A punctuation character (Unicode category P*): 。，！？、；：「」《》 and ASCII ones."""
    return unicodedata.category(ch).startswith("P")


class CoupletPunctuation:
    """At output position i: the source's punctuation id if source[i] is punctuation, else no
    punctuation at all. Positions are counted after ``prefix_len`` start tokens.

    ``punct_at``: the positions where the first line has a punctuation *character* (by default the
    positions of punctuation ids). Where that character is outside the vocabulary (its id is
    ``<unk>``), any punctuation mark is required there, so the form holds all the same.
    """

    def __init__(self, source_ids: Sequence[int], punctuation: Sequence[int], prefix_len: int = 1,
                 *, punct_at: Iterable[int] | None = None):
        self.source = list(source_ids)
        self.punct = sorted(set(punctuation))
        self.punct_set = set(self.punct)
        self.prefix_len = prefix_len
        if punct_at is None:
            punct_at = (i for i, t in enumerate(self.source) if t in self.punct_set)
        self.punct_at = set(punct_at)

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
        if pos in self.punct_at:                                  # an unknown mark: any mark
            out = torch.full_like(scores, float("-inf"))
            return out.index_copy(-1, index, scores.index_select(-1, index))
        return scores.index_fill(-1, index, float("-inf"))


class CoupletRepetition:
    """Mirror the first line's repeats; ban every other repeat and the first line's characters.

    At output position i: if the first line's character i already occurred at an earlier j, the
    output must repeat its own character j; otherwise the characters of the first line and those
    the output already used are banned. ``punctuation`` is left to :class:`CoupletPunctuation`.
    """

    def __init__(self, source_ids: Sequence[int], punctuation: Sequence[int], prefix_len: int = 1,
                 *, chars: Sequence[str] | None = None):
        """``chars``: the first line's characters, one per id; repeats are found among them, so two
        different characters outside the vocabulary (both ``<unk>``) are not taken for a repeat."""
        self.source = list(source_ids)
        self.prefix_len = prefix_len
        punct = set(punctuation)
        keys: Sequence[object] = self.source if chars is None else chars
        if len(keys) != len(self.source):
            raise ValueError(f"{len(keys)} characters for {len(self.source)} source ids")
        first_at: dict[object, int] = {}
        self.earlier: list[int | None] = []    # position i -> where source[i] first stood, if before i
        for i, (t, key) in enumerate(zip(self.source, keys)):
            mark = t in punct or (chars is not None and is_punctuation(key))
            self.earlier.append(None if mark else first_at.get(key))
            first_at.setdefault(key, i)
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
