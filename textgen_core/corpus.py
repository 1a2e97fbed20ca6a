"""Corpora for the three tasks: couplets (对联), translation and novel continuation.

The formats read are the ones people have:

- couplet: two line-aligned files (first lines / second lines, characters often space-separated
  as in the widely shared couplet data set: "晚 风 摇 树") or one table ``first<TAB>second``
  (``.csv`` files are parsed with the csv module). Whitespace inside a line is removed; pairs
  whose lines differ in length are dropped with one warning (a couplet's lines match character for
  character).
- translation: one TSV (Tatoeba/ManyThings style ``source<TAB>target[<TAB>attribution...]``; extra
  columns go to :attr:`Pair.extra`) or two line-aligned files.
- continuation: plain text, one or more files concatenated with a blank line between them.

Every problem with the input is a one-line :class:`CorpusError` that starts with the file path and
names the line where one applies. Decoding (BOMs, UTF-8, UTF-16, GB18030, Big5, CRLF) lives in
:mod:`textgen_core.encoding`.
"""

from __future__ import annotations

import bisect
import csv
import io
import itertools
import logging
import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from textgen_core.encoding import display, read_text
from textgen_core.errors import ConfigError, CorpusError

__all__ = [
    "SPLIT_MODES",
    "TASKS",
    "Corpus",
    "Pair",
    "load_corpus",
    "read_text",
    "reference_groups",
    "source_groups",
    "split_pairs",
    "split_text",
    "splits_by_source",
]

logger = logging.getLogger(__name__)

TASKS = ("couplet", "translation", "continuation")
SPLIT_MODES = ("random", "tail")  # data.split: held-out parts drawn at random, or the end held out
MAX_PAIR_LINE_CHARS = 20_000
MAX_TEXT_LINE_CHARS = 1_000_000
_BREAK = re.compile(r"[\s。！？；!?;.]")  # where an over-long line may be cut by split_text


@dataclass(frozen=True)
class Pair:
    """One training example of a pair task."""

    source: str
    target: str
    extra: str = ""  # extra TSV columns (e.g. Tatoeba attribution), kept aside, never trained on


@dataclass(frozen=True)
class Corpus:
    """A loaded corpus: pairs for couplet/translation, text for continuation."""

    task: str
    pairs: tuple[Pair, ...]  # couplet/translation; () for continuation
    # continuation: whole text, "\n" line ends, paragraphs (blank lines) kept; "" otherwise
    text: str
    encoding: str  # detected encoding of the first file, a Python codec name
    warnings: tuple[str, ...]  # e.g. "dropped 12 couplet pairs whose two lines differ in length"
    files: tuple[str, ...]


class _Row(NamedTuple):
    file: str  # display name
    line: int  # 1-based line where the row starts
    fields: list[str]


def load_corpus(
    task: str, paths: Sequence[str | os.PathLike], *, swap: bool = False
) -> Corpus:
    """One or two files. couplet: two line-aligned files (first lines / second lines) or one TSV/CSV
    `first<TAB>second` (.csv parsed with the csv module, other extensions tab-separated).
    translation: one TSV (first two columns source,target; extra columns joined into Pair.extra) or
    two aligned files; swap=True exchanges source and target (couplet too; ignored for
    continuation). continuation: one (or more, concatenated with a blank line between) plain text
    files. Raises CorpusError for any problem with the request or the files.
    """
    names = _check_request(task, paths)
    if task == "continuation":
        return _load_continuation(names)
    if len(names) == 1:
        rows, encoding = _read_table(names[0], task)
    else:
        rows, encoding = _read_aligned(names[0], names[1])
    make = _couplet_pairs if task == "couplet" else _translation_pairs
    pairs, warnings = make(rows, ", ".join(display(n) for n in names))
    if swap:
        pairs = [Pair(p.target, p.source, p.extra) for p in pairs]
    for warning in warnings:
        logger.warning("%s", warning)
    logger.info("loaded %d %s pairs from %s (%s)", len(pairs), task, names, encoding)
    return Corpus(task, tuple(pairs), "", encoding, tuple(warnings), tuple(names))


def _check_request(task: str, paths: Sequence[str | os.PathLike]) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    names = [os.fsdecode(p) for p in paths]
    label = ", ".join(display(n) for n in names)
    if task not in TASKS:
        raise CorpusError(
            f"{label or '(no files)'}: unknown task {task!r}; choose one of {', '.join(TASKS)}"
        )
    if not names:
        raise CorpusError(f"no corpus file given for the {task} task")
    if task != "continuation" and len(names) > 2:
        raise CorpusError(
            f"{label}: the {task} task takes one TSV/CSV file or two line-aligned files, "
            f"not {len(names)} files"
        )
    return names


def _read_lines(name: str, limit: int, *, trim_leading: bool = False) -> tuple[list[str], str]:
    """The file's lines less trailing blank lines (and leading ones if asked), and its encoding."""
    text, encoding = read_text(name)
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if trim_leading:
        start = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
        del lines[:start]
    if max(map(len, lines), default=0) > limit:
        number, line = next((i, s) for i, s in enumerate(lines, 1) if len(s) > limit)
        raise CorpusError(
            f"{display(name)}: line {number} is {len(line):,} characters long (limit {limit:,}); "
            "is this really a corpus file with one example per line?"
        )
    return lines, encoding


def _read_table(name: str, task: str) -> tuple[list[_Row], str]:
    lines, encoding = _read_lines(name, MAX_PAIR_LINE_CHARS)
    shown = display(name)
    if name.lower().endswith(".csv"):
        return _parse_csv(lines, shown, task), encoding
    expected = "first<TAB>second" if task == "couplet" else "source<TAB>target"
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if "\t" not in line:
            raise CorpusError(f"{shown}: line {number} has no tab; expected {expected}")
        rows.append(_Row(shown, number, line.split("\t")))
    return rows, encoding


def _parse_csv(lines: list[str], shown: str, task: str) -> list[_Row]:
    expected = "first,second" if task == "couplet" else "source,target"
    reader = csv.reader(io.StringIO("\n".join(lines)))
    rows, start = [], 1
    try:
        for record in reader:
            if any(field.strip() for field in record):
                if len(record) < 2:
                    raise CorpusError(f"{shown}: line {start} has one column; expected {expected}")
                # a quoted field may span lines; an example stays on one line
                rows.append(_Row(shown, start, [f.replace("\n", " ") for f in record]))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise CorpusError(
            f"{shown}: line {reader.line_num}: malformed CSV ({display(str(exc))})"
        ) from None
    return rows


def _read_aligned(first: str, second: str) -> tuple[list[_Row], str]:
    lines_a, encoding = _read_lines(first, MAX_PAIR_LINE_CHARS)
    lines_b, _ = _read_lines(second, MAX_PAIR_LINE_CHARS)
    if len(lines_a) != len(lines_b):
        raise CorpusError(
            f"{display(first)} has {len(lines_a)} lines but {display(second)} has "
            f"{len(lines_b)}; the two files must be line-aligned"
        )
    shown = display(first)
    rows = [
        _Row(shown, number, [a, b])
        for number, (a, b) in enumerate(zip(lines_a, lines_b), 1)
        if a.strip() or b.strip()
    ]
    return rows, encoding


def _couplet_pairs(rows: list[_Row], label: str) -> tuple[list[Pair], list[str]]:
    pairs, dropped, first_dropped = [], 0, None
    for row in rows:
        first, second = ("".join(field.split()) for field in row.fields[:2])
        if not first and not second:
            continue
        if len(first) != len(second):
            dropped += 1
            first_dropped = first_dropped or row
            continue
        pairs.append(Pair(first, second, _extra(row.fields)))
    warnings = []
    if dropped:
        warnings.append(
            f"dropped {dropped} couplet pair{'s' if dropped != 1 else ''} whose two lines differ "
            f"in length (first: {first_dropped.file} line {first_dropped.line})"
        )
    if not pairs:
        reason = f" ({dropped} dropped: their two lines differ in length)" if dropped else ""
        raise CorpusError(f"{label}: no usable couplet pairs{reason}")
    return pairs, warnings


def _translation_pairs(rows: list[_Row], label: str) -> tuple[list[Pair], list[str]]:
    pairs, dropped, first_dropped = [], 0, None
    for row in rows:
        source, target = row.fields[0].strip(), row.fields[1].strip()
        if not source and not target:
            continue
        if not source or not target:
            dropped += 1
            first_dropped = first_dropped or row
            continue
        pairs.append(Pair(source, target, _extra(row.fields)))
    warnings = []
    if dropped:
        warnings.append(
            f"dropped {dropped} translation pair{'s' if dropped != 1 else ''} with an empty "
            f"source or target (first: {first_dropped.file} line {first_dropped.line})"
        )
    if not pairs:
        reason = f" ({dropped} dropped: empty source or target)" if dropped else ""
        raise CorpusError(f"{label}: no usable translation pairs{reason}")
    return pairs, warnings


def _extra(fields: list[str]) -> str:
    return "\t".join(field.strip() for field in fields[2:]) if len(fields) > 2 else ""


def _load_continuation(names: list[str]) -> Corpus:
    texts, encoding = [], ""
    for name in names:
        lines, file_encoding = _read_lines(name, MAX_TEXT_LINE_CHARS, trim_leading=True)
        encoding = encoding or file_encoding
        texts.append("\n".join(lines))
    text = "\n\n".join(texts) + "\n"
    logger.info("loaded %d characters of continuation text from %s (%s)", len(text), names,
                encoding)
    return Corpus("continuation", (), text, encoding, (), tuple(names))


def splits_by_source(task: str) -> bool:
    """Whether the task's pairs are split, and scored, by source sentence.

    Translation corpora list one source with several translations (Tatoeba: half the rows of
    eng-fra share their English side), so its rows are grouped by source: all translations of a
    source land in the same split and BLEU/chrF score one output per source against all of them.
    Couplets keep one row per example.
    """
    return task == "translation"


def source_groups(sources: Sequence[str]) -> list[list[int]]:
    """Indices of equal sources together; groups in order of first occurrence, each ascending."""
    groups: dict[str, list[int]] = {}
    for i, source in enumerate(sources):
        groups.setdefault(source, []).append(i)
    return list(groups.values())


def reference_groups(
    pairs: Sequence[tuple[str, str]], *, by_source: bool
) -> list[tuple[str, tuple[str, ...]]]:
    """(source, references) to decode once and score: with ``by_source`` one per distinct source
    holding all its targets in corpus order, otherwise one per pair."""
    if not by_source:
        return [(source, (target,)) for source, target in pairs]
    groups = source_groups([source for source, _ in pairs])
    return [(pairs[g[0]][0], tuple(pairs[i][1] for i in g)) for g in groups]


def split_pairs(
    pairs: Sequence[Pair],
    *,
    valid_fraction: float = 0.05,
    test_fraction: float = 0.05,
    seed: int = 1234,
    by_source: bool = False,
    mode: str = "random",
) -> dict[str, list[Pair]]:
    """Split into "train", "valid", "test" at random (reproducible from ``seed``).

    ``by_source``: the unit drawn is a distinct source sentence with all its pairs, so no source
    is in two splits; the fractions count sources. Without repeated sources both ways give the
    same split. Each split keeps corpus order. With at least 3 units, a non-zero fraction gets at
    least one; train always keeps at least one. Raises ConfigError for fractions outside [0, 1).

    ``mode="tail"`` (``data.split = "tail"``) holds out the end of the file instead: train is the
    first pairs, valid the ones after them and test the last ones, in file order, the sizes as
    above (``seed`` unused). With ``by_source`` the units are sources in order of first
    appearance, so a source's translations still stay together.
    """
    _check_mode(mode)
    groups = source_groups([p.source for p in pairs]) if by_source else [[i] for i in range(len(pairs))]
    n_valid, n_test = _split_sizes(len(groups), valid_fraction, test_fraction)
    picks = _pick(len(groups), n_valid, n_test, seed, mode)
    return {
        split: [pairs[i] for i in sorted(i for g in picked for i in groups[g])]
        for split, picked in picks.items()
    }


def split_text(
    text: str,
    *,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.0,
    seed: int = 1234,
    n_chunks: int = 100,
    mode: str = "random",
) -> dict[str, str]:
    """Cut the text at paragraph/line boundaries into ~n_chunks contiguous chunks, pick valid/test
    chunks with the seed, keep order inside each split (chunks joined with '\\n').

    A line longer than two chunks is cut inside, after whitespace or a sentence end where possible.
    With no valid/test chunks, train is the text unchanged.

    ``mode="tail"`` (``data.split = "tail"``, nanoGPT's "first 90 % train, last 10 % validation";
    the last chapters of a novel held out): train is the head of the text, valid what follows and
    test the very end. Each cut is the line boundary nearest to its share of the characters
    (``valid_fraction``/``test_fraction`` of ``len(text)``), so
    ``"\\n".join((train, valid, test))`` is the text (parts with a zero fraction left out); a line
    longer than two chunks may be cut inside as above. ``seed`` is unused.
    """
    _check_mode(mode)
    if isinstance(n_chunks, bool) or not isinstance(n_chunks, int) or n_chunks < 1:
        raise ConfigError(f"n_chunks must be a positive integer, got {n_chunks!r}")
    if mode == "tail":
        return _tail_text(text, valid_fraction, test_fraction, n_chunks)
    chunks = _chunks(text, n_chunks)
    n_valid, n_test = _split_sizes(len(chunks), valid_fraction, test_fraction)
    picks = _pick(len(chunks), n_valid, n_test, seed, mode)
    return {split: "\n".join(chunks[i] for i in indices) for split, indices in picks.items()}


def _check_mode(mode: str) -> None:
    if mode not in SPLIT_MODES:
        raise ConfigError(f"split mode must be one of {', '.join(SPLIT_MODES)}; got {mode!r}")


def _tail_text(text: str, valid_fraction: float, test_fraction: float,
               n_chunks: int) -> dict[str, str]:
    """split_text's "tail" mode: cut at the line starts nearest to the fractions' offsets."""
    _split_sizes(0, valid_fraction, test_fraction)  # checks the fractions
    if not valid_fraction and not test_fraction:
        return {"train": text, "valid": "", "test": ""}
    size = max(1, len(text) // n_chunks)
    lines: list[str] = []
    for line in text.split("\n"):
        lines.extend(_break_line(line, size) if len(line) > 2 * size else [line])
    starts = list(itertools.accumulate((len(line) + 1 for line in lines), initial=0))
    n, total = len(lines), len(text)
    has_valid = valid_fraction > 0
    test_at = n
    if test_fraction > 0 and n >= 2 + has_valid:   # train (and valid) keep at least one line
        test_at = _nearest_start(starts, total * (1 - test_fraction), 1 + has_valid, n - 1)
    valid_at = test_at
    if has_valid and test_at >= 2:
        valid_at = _nearest_start(starts, total * (1 - valid_fraction - test_fraction), 1,
                                  test_at - 1)
    return {"train": "\n".join(lines[:valid_at]), "valid": "\n".join(lines[valid_at:test_at]),
            "test": "\n".join(lines[test_at:])}


def _nearest_start(starts: list[int], target: float, lo: int, hi: int) -> int:
    """The line index in [lo, hi] whose start offset is nearest to ``target`` (ties: earlier)."""
    i = bisect.bisect_left(starts, target, lo, hi + 1)
    return min((j for j in (i - 1, i) if lo <= j <= hi), key=lambda j: abs(starts[j] - target))


def _split_sizes(n: int, valid_fraction: float, test_fraction: float) -> tuple[int, int]:
    for field, value in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ConfigError(f"{field} must be a number in [0, 1), got {value!r}")
    if valid_fraction + test_fraction >= 1:
        raise ConfigError(
            f"valid_fraction + test_fraction must be below 1, got {valid_fraction + test_fraction}"
        )
    n_valid, n_test = round(n * valid_fraction), round(n * test_fraction)
    if n >= 3:
        n_valid = max(n_valid, 1) if valid_fraction > 0 else 0
        n_test = max(n_test, 1) if test_fraction > 0 else 0
    while n_valid + n_test > max(n - 1, 0):  # train keeps at least one example
        if n_valid >= n_test:
            n_valid -= 1
        else:
            n_test -= 1
    return n_valid, n_test


def _pick(n: int, n_valid: int, n_test: int, seed: int, mode: str = "random") -> dict[str, list[int]]:
    order = list(range(n))
    if mode == "random":
        random.Random(seed).shuffle(order)
        valid, test = order[:n_valid], order[n_valid : n_valid + n_test]
        return {
            "train": sorted(order[n_valid + n_test :]),
            "valid": sorted(valid),
            "test": sorted(test),
        }
    cut = n - n_valid - n_test          # "tail": the last units, in order
    return {"train": order[:cut], "valid": order[cut : cut + n_valid], "test": order[cut + n_valid :]}


def _chunks(text: str, n_chunks: int) -> list[str]:
    """Contiguous pieces of ~len(text)/n_chunks characters.

    '\\n'.join(pieces) rebuilds the text, unless an over-long line had to be cut.
    """
    size = max(1, len(text) // n_chunks)
    lines: list[str] = []
    for line in text.split("\n"):
        lines.extend(_break_line(line, size) if len(line) > 2 * size else [line])
    chunks, current, filled, boundary = [], [], 0, size
    for line in lines:
        current.append(line)
        filled += len(line) + 1
        if filled >= boundary:
            chunks.append("\n".join(current))
            current = []
            boundary = (filled // size + 1) * size
    if current and chunks and not "".join(current).strip():
        chunks[-1] += "\n" + "\n".join(current)  # trailing blank lines stay with the last chunk
    elif current:
        chunks.append("\n".join(current))
    return chunks


def _break_line(line: str, size: int) -> list[str]:
    pieces, start = [], 0
    while len(line) - start > 2 * size:
        window = line[start + size // 2 : start + size]
        cuts = [m.end() for m in _BREAK.finditer(window)]
        end = start + size // 2 + cuts[-1] if cuts else start + size
        pieces.append(line[start:end])
        start = end
    pieces.append(line[start:])
    return pieces
