"""Whether a written second line (下联) keeps the form of its first line (上联).

The decoder enforces the couplet form while it writes (:mod:`textgen_core.decoding.couplet_rules`);
this module checks the result afterwards, so benchmarks and tests can measure how often a model's
outputs keep it. Three checks, with the definitions the decoding rules use:

* ``length``: both lines have as many characters (字数相等);
* ``punctuation``: a punctuation mark (Unicode category P*: ，。、；：！？ and ASCII ,.;:!? alike, see
  :func:`~textgen_core.decoding.constraints.is_punctuation`) stands in the second line exactly where
  the first line has one; nothing but punctuation opposite punctuation. Which mark is not compared
  (a full-width comma opposite an ASCII one counts);
* ``repeats``: mirrored repeats (叠字 and 重字 in the same places): positions i < j hold the same
  character in the first line exactly when they hold the same character in the second line
  (晚风摇树树还挺 / 晨露润花花更红 keeps it; a second line that repeats where the first does not
  fails). Only positions that are not punctuation in either line are compared, as in decoding.

Whitespace inside a line is dropped first (corpora often space the characters: 晚 风 摇 树), as
:meth:`textgen_core.generation.Generator.prepare` does.

    >>> check_form("晚风摇树树还挺", "晨露润花花更红").kept
    True
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from textgen_core.decoding.constraints import is_punctuation
from textgen_core.decoding.couplet_rules import _repeat_groups

__all__ = ["CHECKS", "FormCheck", "check_form", "form_share"]

log = logging.getLogger(__name__)

CHECKS = ("length", "punctuation", "repeats", "kept")


@dataclass(frozen=True)
class FormCheck:
    """The outcome of :func:`check_form` for one couplet; ``kept`` is all three checks."""

    length: bool
    punctuation: bool
    repeats: bool

    @property
    def kept(self) -> bool:
        return self.length and self.punctuation and self.repeats


def _squeeze(line: str) -> str:
    """The line without whitespace (the characters the form is about)."""
    return "".join(line.split())


def _punctuation_kept(first: str, second: str) -> bool:
    """Punctuation at the same positions in both lines (and none past the shorter line's end)."""
    at_first = {i for i, ch in enumerate(first) if is_punctuation(ch)}
    at_second = {i for i, ch in enumerate(second) if is_punctuation(ch)}
    return at_first == at_second


def _repeats_kept(first: str, second: str) -> bool:
    """The same partition into repeat groups over the positions where neither line has punctuation
    (up to the shorter line's length)."""
    n = min(len(first), len(second))
    compared = {i for i in range(n) if not is_punctuation(first[i]) and not is_punctuation(second[i])}

    def groups(line: str) -> set[tuple[int, ...]]:
        found = (tuple(i for i in group if i in compared) for group in _repeat_groups(line[:n]))
        return {group for group in found if group}

    return groups(first) == groups(second)


def check_form(first: str, second: str) -> FormCheck:
    """Check the second line ``second`` against the first line ``first`` (see the module docstring).

    An empty second line fails ``length`` for any non-empty first line; lines of different lengths
    fail ``length`` and are compared position by position up to the shorter one for the others.
    """
    first, second = _squeeze(first), _squeeze(second)
    return FormCheck(length=len(first) == len(second),
                     punctuation=_punctuation_kept(first, second),
                     repeats=_repeats_kept(first, second))


def form_share(pairs: Iterable[tuple[str, str]]) -> dict[str, float]:
    """The share (0-100) of ``(first, second)`` pairs that pass each check, and that keep the whole
    form: ``{"length": ..., "punctuation": ..., "repeats": ..., "kept": ...}``. No pairs: all 0.0
    (as :mod:`textgen_core.metrics` scores empty input)."""
    counts = dict.fromkeys(CHECKS, 0)
    total = 0
    for first, second in pairs:
        result = check_form(first, second)
        total += 1
        for name in CHECKS:
            counts[name] += bool(getattr(result, name))
    if not total:
        log.debug("form_share: no pairs")
        return dict.fromkeys(CHECKS, 0.0)
    return {name: 100.0 * count / total for name, count in counts.items()}
