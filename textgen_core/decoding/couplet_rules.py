"""The rules of a couplet's second line (下联) for one first line (上联), as logits processors.

Couplet form (对联格律) asks 字数相等 (as many characters), 词性相对 (matching parts of speech) and
平仄相谐 (contrasting tones), with punctuation and repeats in the same places and no character of
the first line used again. :func:`couplet_processors` turns what of this a decoder can enforce into
per-position rules, each switched by :class:`~textgen_core.decoding.config.DecodeConfig`:

* length (``couplet_length``): not a processor; the caller forces it
  (``generate(forced_length=len(first_line))``), one output position per first-line character;
* punctuation (``couplet_punctuation``): :class:`~textgen_core.decoding.constraints.CoupletPunctuation`;
* mirrored repeats (``couplet_repeats``) and no reuse (``couplet_no_reuse``):
  :class:`~textgen_core.decoding.constraints.CoupletRepetition`;
* locks (the user's ``--lock 3=春``): :class:`~textgen_core.decoding.constraints.CoupletLocks`;
* the tone of the last character (``tone``): :class:`~textgen_core.decoding.constraints.CoupletTone`.
  The last character of the second line (its last non-punctuation position) must contrast with the
  first line's: 仄 -> 平 (仄起平收), 平 -> 仄. "hard" bans the wrong class there, "soft" takes
  :data:`SOFT_TONE_PENALTY` from its log-probability (a preference the search can overrule), "off"
  does nothing, nor does a first line whose last character has no known class. Tokens without a
  class (two-class characters like 长, punctuation, specials) are never touched. Tones come from
  :mod:`textgen_core.decoding.tones` (modern Mandarin; 入声 characters follow their modern reading).

Part of speech is not enforced. Every processor works per row of a batch (beams, samples) and on
any device.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from textgen_core.decoding.config import DecodeConfig
from textgen_core.decoding.constraints import (
    CoupletLocks,
    CoupletPunctuation,
    CoupletRepetition,
    CoupletTone,
    is_punctuation,
    punctuation_ids,
)
from textgen_core.decoding.processors import LogitsProcessor
from textgen_core.decoding.tones import PING, ZE, tone_of, tone_report
from textgen_core.errors import TextGenError
from textgen_core.tokenizer import Tokenizer

__all__ = ["SOFT_TONE_PENALTY", "couplet_processors", "parse_locks", "tone_of", "tone_report",
           "vocab_tones"]

SOFT_TONE_PENALTY = 2.0
"""tone="soft": what a last character of the wrong tone class loses, in log-probability (natural
log, at temperature 1): e^-2, about 7 times less likely than before relative to the others. The
search still writes it when the model prefers it by more than that."""

_TONE_CODE = {PING: 1, ZE: 2}  # vocab_tones: 0 = no known class
_LOCK = re.compile(r"\s*([+-]?\d+)\s*=\s*(.*?)\s*")


@dataclass(frozen=True)
class _Vocabulary:
    """What the rules need to know of a tokenizer's vocabulary, computed once per tokenizer."""

    punctuation: list[int]  # ids of punctuation pieces
    tones: Tensor  # (V,) int8 on the CPU: see vocab_tones


_VOCABULARIES: weakref.WeakKeyDictionary[Tokenizer, _Vocabulary] = weakref.WeakKeyDictionary()


def parse_locks(items: Sequence[str]) -> dict[int, str]:
    """CLI/studio lock specs like ["3=春", "7=风"] -> {3: "春", 7: "风"}; positions are 1-based
    (the 3rd character). TextGenError with one clear line for a bad spec ("--lock 3春: write POS=CHAR,
    e.g. 3=春"), a position < 1, more than one character, or the same position twice."""
    locks: dict[int, str] = {}
    for item in items:
        match = _LOCK.fullmatch(item)
        if match is None or not match.group(2):
            raise TextGenError(f"--lock {item}: write POS=CHAR, e.g. 3=春")
        pos, ch = int(match.group(1)), match.group(2)
        if pos < 1:
            raise TextGenError(f"--lock {item}: positions count from 1 (the first character)")
        if len(ch) != 1:
            raise TextGenError(f"--lock {item}: lock one character per position")
        if pos in locks:
            raise TextGenError(f"--lock {pos}={locks[pos]} and --lock {item}: position {pos} locked twice")
        locks[pos] = ch
    return locks


def couplet_processors(first_line: str, tokenizer: Tokenizer, config: DecodeConfig,
                       locks: Mapping[int, str] = {}, prefix_len: int = 1) -> list[LogitsProcessor]:
    """The rules for the second line of ``first_line`` (already normalised: no whitespace), one output
    position per character of the first line. Punctuation / mirrored repeats / no reuse as switched
    by ``config``; ``locks`` fix characters of the second line (1-based positions); the tone rule per
    ``config.tone``. Raises TextGenError (one line) for a lock past the line's end ("--lock 9=春: the
    first line has 7 characters"), a lock where the first line has punctuation, a lock character the
    vocabulary lacks, a lock that is itself one of the first line's characters while no-reuse is on
    (say so), and locks that contradict the mirrored repeats (two locked positions of one repeat group
    with different characters). A lock on one position of a repeat group fixes the whole group (the
    earlier positions too: the search must not write something else at an earlier mirrored position).

    Also refused: a punctuation mark locked where the first line has none (punctuation rule on), one
    character locked at two places that are not one repeat group (no reuse on), and a tokenizer
    that is not a character one (positions would not be characters). A locked last character wins
    over the tone rule: with the last position locked, there is none.
    """
    if tokenizer.kind != "char":
        raise TextGenError(f"couplet rules need a character tokenizer, this one is {tokenizer.kind}")
    groups = _repeat_groups(first_line) if config.couplet_repeats else _single_groups(first_line)
    locked = _locked_ids(first_line, tokenizer, config, locks, groups)
    source = tokenizer.encode(first_line, per_char=True)
    punct = _vocabulary(tokenizer).punctuation
    rules: list[LogitsProcessor] = []
    if config.couplet_punctuation:
        punct_at = [i for i, ch in enumerate(first_line) if is_punctuation(ch)]
        rules.append(CoupletPunctuation(source, punct, prefix_len, punct_at=punct_at))
    if config.couplet_repeats or config.couplet_no_reuse:
        rules.append(CoupletRepetition(source, punct, prefix_len, chars=first_line,
                                       mirror=config.couplet_repeats, no_reuse=config.couplet_no_reuse))
    if locked:
        rules.append(CoupletLocks(locked, len(first_line), prefix_len,
                                  ban_elsewhere=config.couplet_no_reuse))
    tone = _tone_rule(first_line, tokenizer, config, groups, locked, prefix_len)
    if tone is not None:
        rules.append(tone)
    return rules


def _repeat_groups(first_line: str) -> list[list[int]]:
    """Positions of each distinct non-punctuation character of the line, in order of first use."""
    at: dict[str, list[int]] = {}
    for i, ch in enumerate(first_line):
        if not is_punctuation(ch):
            at.setdefault(ch, []).append(i)
    return list(at.values())


def _single_groups(first_line: str) -> list[list[int]]:
    """Without mirroring every non-punctuation position stands alone."""
    return [[i] for i, ch in enumerate(first_line) if not is_punctuation(ch)]


def _locked_ids(first_line: str, tokenizer: Tokenizer, config: DecodeConfig,
                locks: Mapping[int, str], groups: list[list[int]]) -> dict[int, int]:
    """The locks, checked, as 0-based position -> token id, spread over their repeat groups."""
    group_of = {i: n for n, group in enumerate(groups) for i in group}
    by_group: dict[int, tuple[int, str]] = {}       # group -> (1-based position, character)
    by_char: dict[str, int] = {}                    # character -> its group
    for pos, ch in sorted(locks.items()):
        _check_lock(first_line, tokenizer, config, pos, ch)
        n = group_of[pos - 1]
        if n in by_group and by_group[n][1] != ch:
            other, was = by_group[n]
            raise TextGenError(
                f"--lock {other}={was} and --lock {pos}={ch}: the first line repeats "
                f"{first_line[pos - 1]} at both positions, so the second line must repeat one character"
            )
        if config.couplet_no_reuse and by_char.get(ch, n) != n:
            other = by_group[by_char[ch]][0]
            raise TextGenError(
                f"--lock {other}={ch} and --lock {pos}={ch}: {ch} twice, and no reuse (上下联不重字) is on"
            )
        by_group.setdefault(n, (pos, ch))
        by_char.setdefault(ch, n)
    return {i: tokenizer.encode(ch, per_char=True)[0] for n, (_, ch) in by_group.items() for i in groups[n]}


def _check_lock(first_line: str, tokenizer: Tokenizer, config: DecodeConfig, pos: int, ch: str) -> None:
    """One lock against the first line and the vocabulary; TextGenError saying what is wrong."""
    spec = f"--lock {pos}={ch}"
    if isinstance(pos, bool) or not isinstance(pos, int) or pos < 1:
        raise TextGenError(f"{spec}: positions count from 1 (the first character)")
    if not isinstance(ch, str) or len(ch) != 1 or ch.isspace():
        raise TextGenError(f"{spec}: lock one character per position")
    if pos > len(first_line):
        raise TextGenError(f"{spec}: the first line has {len(first_line)} characters")
    if is_punctuation(first_line[pos - 1]):
        raise TextGenError(f"{spec}: the first line has punctuation there ({first_line[pos - 1]}); "
                           "lock a character position")
    if is_punctuation(ch) and config.couplet_punctuation:
        raise TextGenError(f"{spec}: punctuation goes only where the first line has it")
    if not tokenizer.has_char(ch):
        raise TextGenError(f"{spec}: {ch} is not in the model's vocabulary")
    if config.couplet_no_reuse and ch in first_line:
        raise TextGenError(f"{spec}: {ch} is in the first line, and no reuse (上下联不重字) is on")


def _tone_rule(first_line: str, tokenizer: Tokenizer, config: DecodeConfig, groups: list[list[int]],
               locked: Mapping[int, int], prefix_len: int) -> CoupletTone | None:
    """The tone contrast at the last character (and its mirrored positions), or None: tone off, no
    character, a first-line tone without a class, or a locked last character."""
    if config.tone == "off":
        return None
    last = next((i for i in reversed(range(len(first_line))) if not is_punctuation(first_line[i])), None)
    if last is None or last in locked:
        return None
    first_tone = tone_of(first_line[last])
    if first_tone is None:
        return None
    wrong = vocab_tones(tokenizer) == _TONE_CODE[first_tone]     # the same class as the first line's
    positions = next(group for group in groups if last in group)
    penalty = None if config.tone == "hard" else SOFT_TONE_PENALTY
    return CoupletTone(positions, wrong, penalty, prefix_len)


def vocab_tones(tokenizer: Tokenizer) -> Tensor:
    """(V,) int8 on the CPU: 1 for a piece of level tone (平), 2 oblique (仄), 0 none (several
    characters, not Chinese, two classes, specials). Computed once per tokenizer (cached while it
    lives): about half a second of CPU for the sample couplets' 3,300 pieces, most of it loading
    pypinyin and indexing its phrase dictionary (once per process); the table itself about 0.1 s."""
    return _vocabulary(tokenizer).tones


def _vocabulary(tokenizer: Tokenizer) -> _Vocabulary:
    found = _VOCABULARIES.get(tokenizer)
    if found is None:
        pieces = tokenizer.pieces(range(tokenizer.vocab_size))
        codes = [_TONE_CODE.get(tone_of(p), 0) if len(p) == 1 else 0 for p in pieces]
        found = _Vocabulary(punctuation_ids(pieces), torch.tensor(codes, dtype=torch.int8))
        _VOCABULARIES[tokenizer] = found
    return found
