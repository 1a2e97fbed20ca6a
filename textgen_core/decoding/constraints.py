"""Constraints on what may be generated where, as logits processors.

Rules of couplet form (对联格律), applied to the second line (下联) as it is written, one output
position per character of the first line (上联). Of the rules (字数相等, 词性相对, 平仄相谐 ...)
these processors keep the form (punctuation, repeats, reuse), the user's locks and the tone of
chosen positions; part of speech (词性相对) is left to the model:

* :class:`CoupletPunctuation`: punctuation exactly where the first line has it (the same mark), and
  nowhere else.
* :class:`CoupletRepetition`: repeated characters mirror the first line's (in 风声雨声读书声 /
  家事国事天下事, 事 stands wherever 声 does), and otherwise no character is used twice nor taken
  from the first line (上下联不重字); the two halves can be switched separately. Besides being the
  rule, no reuse stops a weak model's favourite failure, one frequent character over and over
  (水水水水水水水).
* :class:`CoupletLocks`: characters fixed by the user at chosen positions.
* :class:`CoupletTone`: a preference (or a rule) for one tone class (平/仄) at given positions.

:mod:`textgen_core.decoding.couplet_rules` builds them for a first line and checks the user's locks;
the length itself is forced by the search (``generate(forced_length=...)``).
"""

from __future__ import annotations

import functools
import math
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor


@functools.lru_cache(maxsize=512)
def _index_cached(ids: tuple[int, ...], device: torch.device) -> Tensor:
    return torch.tensor(ids, dtype=torch.long, device=device)


def _index(ids: Sequence[int], device: torch.device) -> Tensor:
    """``ids`` as a long tensor on ``device``, made once (the rules run at every step of every row)."""
    return _index_cached(tuple(ids), device)


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
        index = _index(self.punct, scores.device)
        if pos in self.punct_at:                                  # an unknown mark: any mark
            out = torch.full_like(scores, float("-inf"))
            return out.index_copy(-1, index, scores.index_select(-1, index))
        return scores.index_fill(-1, index, float("-inf"))


class CoupletRepetition:
    """Mirror the first line's repeats; ban every other repeat and the first line's characters.

    At output position i: if the first line's character i already occurred at an earlier j, the
    output must repeat its own character j (``mirror``); otherwise the characters of the first line
    and those the output already used are banned (``no_reuse``). Either half can be switched off:
    without ``mirror`` every position is free of the others (and with ``no_reuse``, all differ).
    ``punctuation`` is left to :class:`CoupletPunctuation`: marks are never banned here.
    """

    def __init__(self, source_ids: Sequence[int], punctuation: Sequence[int], prefix_len: int = 1,
                 *, chars: Sequence[str] | None = None, mirror: bool = True, no_reuse: bool = True):
        """``chars``: the first line's characters, one per id; repeats are found among them, so two
        different characters outside the vocabulary (both ``<unk>``) are not taken for a repeat."""
        self.source = list(source_ids)
        self.prefix_len = prefix_len
        self.no_reuse = no_reuse
        punct = set(punctuation)
        keys: Sequence[object] = self.source if chars is None else chars
        if len(keys) != len(self.source):
            raise ValueError(f"{len(keys)} characters for {len(self.source)} source ids")
        first_at: dict[object, int] = {}
        self.earlier: list[int | None] = []    # position i -> where source[i] first stood, if before i
        for i, (t, key) in enumerate(zip(self.source, keys)):
            mark = t in punct or (chars is not None and is_punctuation(key))
            self.earlier.append(None if mark or not mirror else first_at.get(key))
            first_at.setdefault(key, i)
        self.banned = sorted({t for t in self.source if t not in punct})
        self.punct = sorted(punct)

    def __call__(self, ids: Tensor, scores: Tensor) -> Tensor:
        pos = ids.size(1) - self.prefix_len                       # ids (N, T), scores (N, V)
        if pos >= len(self.source):
            return scores
        j = self.earlier[pos]
        if j is not None:                                          # mirror: repeat output[j]
            want = ids[:, self.prefix_len + j : self.prefix_len + j + 1].to(scores.device)  # (N, 1)
            out = torch.full_like(scores, float("-inf"))
            return out.scatter(1, want, scores.gather(1, want))
        if not self.no_reuse:
            return scores
        out = scores
        if self.banned:
            out = out.index_fill(-1, _index(self.banned, scores.device), float("-inf"))
        used = ids[:, self.prefix_len :].to(scores.device)                         # (N, pos)
        if used.numel():
            keep = scores.gather(1, used)         # punctuation may recur: it is not a character
            is_punct = torch.isin(used, _index(self.punct, used.device))
            out = out.scatter(1, used, torch.where(is_punct, keep, torch.full_like(keep, float("-inf"))))
        return out


class CoupletLocks:
    """Characters fixed at chosen output positions (0-based, after ``prefix_len`` start tokens).

    At a locked position only the locked id survives, with its own score (not 0), so hypotheses
    stay comparable; ``ban_elsewhere`` (no reuse) bans the locked ids at every other position of the
    line, so the search cannot spend a locked character before its place. ``length``: the line's
    length; later positions are left alone.
    """

    def __init__(self, locked: Mapping[int, int], length: int, prefix_len: int = 1,
                 *, ban_elsewhere: bool = False):
        self.locked = dict(locked)
        self.length = length
        self.prefix_len = prefix_len
        self.others = sorted(set(self.locked.values())) if ban_elsewhere else []

    def __call__(self, ids: Tensor, scores: Tensor) -> Tensor:
        pos = ids.size(1) - self.prefix_len                       # ids (N, T), scores (N, V)
        want = self.locked.get(pos)
        if want is not None:
            out = torch.full_like(scores, -math.inf)
            out[:, want] = scores[:, want]
            return out
        if pos < self.length and self.others:
            return scores.index_fill(-1, _index(self.others, scores.device), -math.inf)
        return scores


class CoupletTone:
    """At chosen output positions, tokens marked in ``wrong`` (a (V,) bool mask: the tone class the
    rule does not want) lose ``penalty`` from their scores, or are banned when ``penalty`` is None.
    Unmarked tokens (the wanted class, or no known class) keep their scores exactly.

    The penalty is taken from the scores the search turns into log-probabilities, so at
    temperature 1 a wrong-class token's log-probability drops by exactly ``penalty`` relative to
    every other token's; when sampling, temperature (applied after this) divides it.
    """

    def __init__(self, positions: Iterable[int], wrong: Tensor, penalty: float | None,
                 prefix_len: int = 1):
        self.positions = frozenset(positions)
        self.wrong = wrong.to(torch.bool).cpu()
        self.penalty = penalty
        self.prefix_len = prefix_len
        self._on: dict[torch.device, Tensor] = {}

    def _mask(self, device: torch.device) -> Tensor:
        mask = self._on.get(device)
        if mask is None:
            mask = self._on[device] = self.wrong.to(device)
        return mask

    def __call__(self, ids: Tensor, scores: Tensor) -> Tensor:
        pos = ids.size(1) - self.prefix_len                       # ids (N, T), scores (N, V)
        if pos not in self.positions:
            return scores
        wrong = self._mask(scores.device)                         # (V,)
        if self.penalty is None:
            return scores.masked_fill(wrong, -math.inf)
        return torch.where(wrong, scores - self.penalty, scores)
