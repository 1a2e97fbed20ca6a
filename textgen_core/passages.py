"""A novel as pairs of consecutive passages, for sequence-to-sequence models that continue stories.

An encoder-decoder model learns continuation the way it learns translation: from pairs. The novel
is cut into passages (sentences: up to a 。！？ or an ellipsis …, with the closing quotes that
follow it; a line break ends a paragraph and so a passage too) and every passage becomes the
source of the next one::

    passage 1 -> passage 2,  passage 2 -> passage 3,  ...

A passage that ends a paragraph keeps its ``"\\n"`` (the paragraph break is a token, as for the
language models), so a model learns where paragraphs end and, fed its own last passage, when to
start a new one. A passage longer than ``max_chars`` characters is cut, after a comma, semicolon,
colon or space where there is one, so each side fits the model's context. Everything here is
deterministic: the same text gives the same passages and pairs.
"""

from __future__ import annotations

import itertools
import re

from textgen_core.corpus import Pair

__all__ = ["last_passage", "passage_pairs", "passages"]

# A sentence end: 。！？ (or ASCII !?), an ellipsis, or a full stop before a space or the end of the
# line; with the closing quotes and brackets right after it (“……。” ends after the ”).
_SENTENCE_END = re.compile(r"(?:[。！？!?]+|…+|\.(?=\s|$))[”’」』）》〉】\"')\]]*")
_SOFT_BREAK = re.compile(r"[，、；：,;:\s]")   # where an over-long sentence is best cut
PARAGRAPH = "\n"


def passages(text: str, max_chars: int) -> list[str]:
    """The passages of ``text`` in order (see the module docstring); none is empty, each holds at
    most ``max_chars`` characters (its paragraph break included)."""
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 2:
        raise ValueError(f"max_chars must be an integer >= 2, got {max_chars!r}")
    out: list[str] = []
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        sentences = _sentences(line)
        for i, sentence in enumerate(sentences):
            last = i == len(sentences) - 1
            pieces = _cut(sentence, max_chars - 1 if last else max_chars)
            if last:
                pieces[-1] += PARAGRAPH
            out.extend(pieces)
    return out


def passage_pairs(text: str, max_chars: int) -> list[Pair]:
    """Every passage with the one after it: ``Pair(passage[i], passage[i + 1])``."""
    cut = passages(text, max_chars)
    return [Pair(source, target) for source, target in itertools.pairwise(cut)]


def last_passage(text: str, max_chars: int) -> str:
    """The passage a continuation goes on from: the last of ``text`` ("" for blank text), without
    its paragraph break unless the text ends with one."""
    cut = passages(text, max_chars)
    if not cut:
        return ""
    ends_paragraph = text.rstrip(" \t\u3000").endswith("\n")
    return cut[-1] if ends_paragraph else cut[-1].rstrip("\n")


def _sentences(line: str) -> list[str]:
    """One paragraph's sentences; text after the last sentence end is a sentence too."""
    out, start = [], 0
    for match in _SENTENCE_END.finditer(line):
        sentence = line[start : match.end()].strip()
        if sentence:
            out.append(sentence)
        start = match.end()
    rest = line[start:].strip()
    if rest:
        out.append(rest)
    return out


def _cut(sentence: str, size: int) -> list[str]:
    """``sentence`` in pieces of at most ``size`` characters, cut after a soft break if possible."""
    pieces = []
    while len(sentence) > size:
        breaks = [m.end() for m in _SOFT_BREAK.finditer(sentence, 0, size)]
        end = breaks[-1] if breaks and breaks[-1] > size // 2 else size
        pieces.append(sentence[:end].strip())
        sentence = sentence[end:].strip()
    if sentence:
        pieces.append(sentence)
    return [p for p in pieces if p]
