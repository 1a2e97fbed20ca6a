"""Evaluation metrics: BLEU (Papineni et al., 2002) and chrF (Popović, 2015) via sacrebleu
(Post, 2018), perplexity, distinct-n (Li et al., 2016) and self-BLEU (Zhu et al., 2018, Texygen).

Conventions:

* Empty input (no hypotheses) gives 0.0 rather than an exception, so a validation pass over an
  empty set cannot crash training. Hypotheses and references of different lengths are a
  programming error and raise ValueError.
* Scores are on sacrebleu's 0-100 scale.
* A hypothesis may have several references (a source translated more than one way): pass a
  sequence of strings in its place. sacrebleu takes references as parallel streams; a hypothesis
  with fewer references than the most has ``None`` in the remaining streams, which sacrebleu
  skips (an empty string would count as a reference of length 0).
* Text counts as CJK when it contains a Han character (CJK Unified Ideographs and extensions,
  compatibility ideographs) or Japanese kana: scripts written without spaces between words.
  Korean (spaced) counts as non-CJK.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import sacrebleu

References = Sequence[str | Sequence[str]]  # per hypothesis: one reference or all of them

_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")


def has_cjk(text: str) -> bool:
    """True when ``text`` contains a CJK character (see the module docstring)."""
    return _CJK.search(text) is not None


def _check_pair(hypotheses: Sequence[str], references: References) -> bool:
    """False when there is nothing to score; ValueError when the lengths differ."""
    if len(hypotheses) != len(references):
        raise ValueError(
            f"{len(hypotheses)} hypotheses but {len(references)} references; they must pair up"
        )
    return len(hypotheses) > 0


def _streams(references: References) -> list[list[str | None]]:
    """sacrebleu's reference streams: stream k holds every hypothesis's k-th reference or None."""
    per_hyp = [[ref] if isinstance(ref, str) else list(ref) for ref in references]
    for i, refs in enumerate(per_hyp):
        if not refs or not all(isinstance(ref, str) for ref in refs):
            raise ValueError(f"hypothesis {i} needs one or more reference strings, got {refs!r}")
    width = max(len(refs) for refs in per_hyp)
    return [[refs[k] if k < len(refs) else None for refs in per_hyp] for k in range(width)]


def bleu(hypotheses: Sequence[str], references: References, tokenize: str | None = None) -> float:
    """Corpus BLEU (0-100); each hypothesis has one reference or a sequence of them.

    ``tokenize=None`` picks sacrebleu's "zh" tokenizer when any reference contains CJK (each
    Chinese character is a word) and "13a" (the WMT default) otherwise. Empty input gives 0.0.
    """
    if not _check_pair(hypotheses, references):
        return 0.0
    streams = _streams(references)
    if tokenize is None:
        cjk = any(ref is not None and has_cjk(ref) for stream in streams for ref in stream)
        tokenize = "zh" if cjk else "13a"
    result = sacrebleu.corpus_bleu(list(hypotheses), streams, tokenize=tokenize)
    return float(result.score)


def chrf(hypotheses: Sequence[str], references: References) -> float:
    """Corpus chrF (0-100, character 6-grams, beta 2; with several references the best-matching
    one counts); works as is for CJK. Empty input: 0.0."""
    if not _check_pair(hypotheses, references):
        return 0.0
    return float(sacrebleu.corpus_chrf(list(hypotheses), _streams(references)).score)


def perplexity(mean_nll: float) -> float:
    """``exp(mean_nll)`` (mean negative log-likelihood in nats per token).

    Overflow-safe: values too large for a float give ``inf``; NaN stays NaN.
    """
    value = float(mean_nll)
    if math.isnan(value):
        return math.nan
    try:
        return math.exp(value)
    except OverflowError:
        return math.inf


def _units(text: str) -> list[str]:
    """Characters (whitespace dropped) for CJK text, whitespace-separated words otherwise."""
    if has_cjk(text):
        return [ch for ch in text if not ch.isspace()]
    return text.split()


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams / total n-grams over all ``texts`` (a diversity score in [0, 1]).

    Units are characters for a text containing CJK and words for other texts; n-grams never
    cross text boundaries. No n-grams at all (empty input, texts shorter than n) gives 0.0.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        units = _units(text)
        for i in range(len(units) - n + 1):
            seen.add(tuple(units[i : i + n]))
            total += 1
    return len(seen) / total if total else 0.0


def self_bleu(texts: Sequence[str], tokenize: str | None = None) -> float:
    """Self-BLEU (Zhu et al. 2018, Texygen): the mean sentence BLEU (0-100) of each text against all
    the others as references. High means the texts resemble each other: a generator writing the
    same thing again and again (mode collapse) drives it up.

    ``tokenize`` as in :func:`bleu` (None: "zh" when any text contains CJK). Fewer than two texts
    give 0.0.
    """
    texts = list(texts)
    if len(texts) < 2:
        return 0.0
    if tokenize is None:
        tokenize = "zh" if any(has_cjk(t) for t in texts) else "13a"
    scores = [
        sacrebleu.sentence_bleu(text, texts[:i] + texts[i + 1 :], tokenize=tokenize).score
        for i, text in enumerate(texts)
    ]
    return float(sum(scores) / len(scores))
