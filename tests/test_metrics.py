"""Metrics against sacrebleu's own values, CJK handling, empty inputs."""

from __future__ import annotations

import math

import pytest
import sacrebleu

from textgen_core import metrics

HYPS = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
REFS = ["The dog bit the man.", "It was not unexpected.", "The man bit him first."]


def test_identical_text_scores_100() -> None:
    assert metrics.bleu(REFS, REFS) == pytest.approx(100.0)
    assert metrics.chrf(REFS, REFS) == pytest.approx(100.0)
    couplets = ["春风得意马蹄疾", "一日看尽长安花"]
    assert metrics.bleu(couplets, couplets) == pytest.approx(100.0)


def test_bleu_and_chrf_match_sacrebleu() -> None:
    expected_bleu = sacrebleu.corpus_bleu(HYPS, [REFS], tokenize="13a").score
    assert metrics.bleu(HYPS, REFS) == pytest.approx(expected_bleu)
    assert metrics.bleu(HYPS, REFS) == pytest.approx(45.0675, abs=1e-3)  # sacrebleu 2.x
    assert metrics.chrf(HYPS, REFS) == pytest.approx(sacrebleu.corpus_chrf(HYPS, [REFS]).score)
    assert 0 < metrics.chrf(HYPS, REFS) < 100


def test_cjk_references_use_the_zh_tokenizer() -> None:
    hyps, refs = ["今天天气很好"], ["今天天气不错"]
    zh = sacrebleu.corpus_bleu(hyps, [refs], tokenize="zh").score
    assert zh > 0
    assert metrics.bleu(hyps, refs) == pytest.approx(zh)
    # with "13a" the unspaced sentence is one word, so the partial match would score 0
    assert metrics.bleu(hyps, refs, tokenize="13a") == pytest.approx(0.0)
    mixed_refs = ["Tom说你好", "It was not unexpected."]
    mixed_hyps = ["Tom说您好", "It was unexpected."]
    expected = sacrebleu.corpus_bleu(mixed_hyps, [mixed_refs], tokenize="zh").score
    assert metrics.bleu(mixed_hyps, mixed_refs) == pytest.approx(expected)


def test_empty_input_gives_zero_and_mismatch_raises() -> None:
    assert metrics.bleu([], []) == 0.0
    assert metrics.chrf([], []) == 0.0
    assert metrics.distinct_n([], 2) == 0.0
    assert metrics.bleu([""], ["a reference"]) == 0.0
    with pytest.raises(ValueError, match="pair up"):
        metrics.bleu(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="pair up"):
        metrics.chrf(["a", "b"], [])


def test_bleu_and_chrf_use_every_reference() -> None:
    # the output is a correct translation, but only the second reference says it that way
    hyps = ["I'm going to bed now.", "Tom came back yesterday."]
    first = ["I am going to sleep.", "Tom returned yesterday."]
    refs = [["I am going to sleep.", "I'm going to bed now."], "Tom returned yesterday."]
    assert metrics.bleu(hyps, refs) > metrics.bleu(hyps, first)
    assert metrics.chrf(hyps, refs) > metrics.chrf(hyps, first)
    # a hypothesis with fewer references leaves sacrebleu's later streams empty (None)
    streams = [[refs[0][0], refs[1]], [refs[0][1], None]]
    assert metrics.bleu(hyps, refs) == pytest.approx(sacrebleu.corpus_bleu(hyps, streams).score)
    assert metrics.chrf(hyps, refs) == pytest.approx(sacrebleu.corpus_chrf(hyps, streams).score)
    assert metrics.bleu(hyps, [[r] for r in first]) == pytest.approx(metrics.bleu(hyps, first))
    with pytest.raises(ValueError, match="reference"):
        metrics.bleu(["a"], [[]])


def test_perplexity_is_overflow_safe() -> None:
    assert metrics.perplexity(0.0) == 1.0
    assert metrics.perplexity(math.log(10.0)) == pytest.approx(10.0)
    assert metrics.perplexity(1e6) == math.inf
    assert metrics.perplexity(float("inf")) == math.inf
    assert math.isnan(metrics.perplexity(float("nan")))


def test_distinct_n_counts_words_or_characters() -> None:
    assert metrics.distinct_n(["a b a b"], 1) == pytest.approx(2 / 4)
    assert metrics.distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    # CJK text counts characters (spaces ignored): 好 好 学 习 -> 3 distinct of 4
    assert metrics.distinct_n(["好好 学习"], 1) == pytest.approx(3 / 4)
    # n-grams do not cross texts; repeated texts lower the score
    assert metrics.distinct_n(["春风", "春风"], 2) == pytest.approx(1 / 2)
    assert metrics.distinct_n(["one", "two words"], 3) == 0.0  # no 3-grams at all
    with pytest.raises(ValueError, match="n must be"):
        metrics.distinct_n(["a"], 0)


def test_has_cjk() -> None:
    assert metrics.has_cjk("Tom说")
    assert metrics.has_cjk("ひらがな")
    assert not metrics.has_cjk("Hello, world!")
    assert not metrics.has_cjk("，。！")  # punctuation alone is not CJK text
