"""Guess a corpus's task from its files, so that a person need not know the formats first.

- one plain-text file, or several                      -> continuation
- a table (``first<TAB>second``, or a .csv), or two line-aligned files of short lines:
  both sides Chinese, most lines of equal length        -> couplet
  one side Chinese, the other not (two languages)       -> translation
  a table in one language                               -> translation
  two files in one language, not couplets               -> continuation (two texts)

Only the head of each file is read (:data:`HEAD_BYTES`), so a guess is quick even for a big novel.
The guess is a suggestion: front ends show it with its reason and let the user pick another task.
Files that cannot be read give no guess; loading them for any task reports why.
"""

from __future__ import annotations

import csv
import io
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from textgen_core.encoding import decode_bytes, display
from textgen_core.errors import CorpusError

__all__ = ["TaskGuess", "guess_task"]

HEAD_BYTES = 256 * 1024
SAMPLE_LINES = 1000
TABLE_SHARE = 0.9  # share of lines with two columns for one file to be a table
CHINESE_SHARE = 0.5  # share of letters that are Chinese characters for a side to be Chinese
EQUAL_SHARE = 0.5  # share of pairs with lines of equal length for Chinese pairs to be couplets
ALIGNED_SLACK = 0.1  # line counts of line-aligned files differ by at most this share
SHORT_LINE = 200  # median characters a line of line-aligned files; a novel's paragraphs are longer


@dataclass(frozen=True)
class TaskGuess:
    """The task the files look like, and why, in a few words ("one plain-text file")."""

    task: str
    reason: str


def guess_task(paths: Sequence[str | os.PathLike]) -> TaskGuess | None:
    """The task ``paths`` look like; None when there are no files or one cannot be read."""
    names = [os.fsdecode(p) for p in paths]
    try:
        heads = [_head(name) for name in names]
    except CorpusError:
        return None
    if not heads:
        return None
    if len(heads) == 1:
        rows = _table_rows(names[0], heads[0].lines)
        if rows is None:
            return TaskGuess("continuation", "one plain-text file")
        what = "a table of two columns"
        return _pair_guess(rows, what) or TaskGuess("translation", what)
    if len(heads) == 2 and _aligned(heads[0], heads[1]):
        guess = _pair_guess(list(zip(heads[0].lines, heads[1].lines)), "two line-aligned files")
        if guess is not None:
            return guess
    count = "two" if len(heads) == 2 else str(len(heads))
    return TaskGuess("continuation", f"{count} plain-text files")


@dataclass(frozen=True)
class _Head:
    lines: list[str]  # the first non-blank lines
    whole: bool  # the file was read to its end (lines holds all its non-blank lines, up to a limit)
    count: int  # non-blank lines in what was read


def _head(name: str) -> _Head:
    """The non-blank lines at the start of the file."""
    try:
        with open(name, "rb") as fh:
            data = fh.read(HEAD_BYTES + 1)
    except OSError as exc:
        raise CorpusError(f"{display(name)}: cannot be read ({exc.strerror or exc})") from None
    whole = len(data) <= HEAD_BYTES
    data = data[:HEAD_BYTES]
    error: CorpusError | None = None
    for cut in (0,) if whole else (0, 1, 2, 3):  # the head may end inside a character
        try:
            text, _ = decode_bytes(data[: len(data) - cut], display(name))
            break
        except CorpusError as exc:
            error = exc
    else:
        assert error is not None
        raise error
    lines = text.split("\n")
    if not whole:
        lines = lines[:-1]  # cut off mid-line
    lines = [line for line in lines if line.strip()]
    return _Head(lines[:SAMPLE_LINES], whole, len(lines))


def _table_rows(name: str, lines: list[str]) -> list[tuple[str, str]] | None:
    """The first two columns of a table file, or None when it is not one."""
    if name.lower().endswith(".csv"):
        try:
            records = [r for r in csv.reader(io.StringIO("\n".join(lines))) if any(f.strip() for f in r)]
        except csv.Error:
            return None
    else:
        records = [line.split("\t") for line in lines]
    rows = [(r[0], r[1]) for r in records if len(r) >= 2]
    return rows if rows and len(rows) >= TABLE_SHARE * len(records) else None


def _aligned(a: _Head, b: _Head) -> bool:
    """Whether two files look line-aligned: short lines, and as many of them when both were read whole."""
    if a.whole and b.whole and abs(a.count - b.count) > ALIGNED_SLACK * max(a.count, b.count):
        return False
    return all(lines and statistics.median(len(s.strip()) for s in lines) <= SHORT_LINE
               for lines in (a.lines, b.lines))


def _pair_guess(rows: list[tuple[str, str]], what: str) -> TaskGuess | None:
    """Couplet for Chinese pairs of equal length, translation for two languages, None for pairs in
    one language (a table of them is a translation; two such files are more likely two texts)."""
    firsts = ["".join(a.split()) for a, _ in rows]
    seconds = ["".join(b.split()) for _, b in rows]
    chinese = [_chinese_share(side) >= CHINESE_SHARE for side in (firsts, seconds)]
    if all(chinese):
        couplets = sum(len(a) == len(b) and a != b for a, b in zip(firsts, seconds))
        if couplets >= EQUAL_SHARE * len(rows):
            return TaskGuess("couplet", f"{what}, Chinese lines of equal length")
    elif any(chinese):
        return TaskGuess("translation", f"{what} in two languages")
    return None


def _chinese_share(texts: list[str]) -> float:
    letters = chinese = 0
    for text in texts:
        for ch in text:
            if ch.isalpha():
                letters += 1
                chinese += _is_han(ch)
    return chinese / letters if letters else 0.0


def _is_han(ch: str) -> bool:
    code = ord(ch)
    return (0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF
            or 0x20000 <= code <= 0x3FFFF)
