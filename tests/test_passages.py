"""A novel as pairs of consecutive passages (sequence-to-sequence continuation)."""

from __future__ import annotations

import pytest
from conftest import NOVEL

from textgen_core.corpus import Pair, split_text
from textgen_core.passages import last_passage, passage_pairs, passages

TEXT = "　　却说宝玉。笑道：“你好！”黛玉不语……\n\n　　次日，天晴？众人散去\nHe left. She stayed!\n"


def test_sentences_end_at_marks_quotes_and_paragraphs():
    assert passages(TEXT, 60) == [
        "却说宝玉。", "笑道：“你好！”", "黛玉不语……\n", "次日，天晴？", "众人散去\n",
        "He left.", "She stayed!\n",
    ]


def test_pairs_are_consecutive_passages():
    cut = passages(TEXT, 60)
    pairs = passage_pairs(TEXT, 60)
    assert pairs[0] == Pair("却说宝玉。", "笑道：“你好！”")
    assert pairs[2] == Pair("黛玉不语……\n", "次日，天晴？")  # across a paragraph break
    assert [p.source for p in pairs] == cut[:-1] and [p.target for p in pairs] == cut[1:]


def test_long_sentences_are_cut_to_fit_after_a_comma_where_possible():
    sentence = "甲乙丙丁戊，己庚辛壬癸子丑，寅卯辰巳午未申酉戌亥。"
    assert passages(sentence, 12) == ["甲乙丙丁戊，", "己庚辛壬癸子丑，", "寅卯辰巳午未申酉戌亥。\n"]
    assert passages("长" * 30, 12) == ["长" * 11, "长" * 11, "长" * 8 + "\n"]   # no comma: a hard cut


def test_novel_passages_fit_and_keep_every_character():
    text = NOVEL.read_text(encoding="utf-8")[:30000]
    cut = passages(text, 63)
    assert len(cut) > 300 and max(map(len, cut)) <= 63
    assert "".join("".join(cut).split()) == "".join(text.split())   # nothing lost but whitespace
    assert sum(p.endswith("\n") for p in cut) == sum(1 for line in text.split("\n") if line.strip())


def test_pairs_from_reproducible_splits_are_reproducible_and_disjoint():
    text = NOVEL.read_text(encoding="utf-8")[:30000]
    first = split_text(text, valid_fraction=0.1, seed=7)
    again = split_text(text, valid_fraction=0.1, seed=7)
    train, valid = passage_pairs(first["train"], 63), passage_pairs(first["valid"], 63)
    assert train == passage_pairs(again["train"], 63) and valid == passage_pairs(again["valid"], 63)
    assert valid and not {p.target for p in valid} & {p.target for p in train if len(p.target) > 20}
    other = split_text(text, valid_fraction=0.1, seed=8)
    assert passage_pairs(other["valid"], 63) != valid


def test_last_passage_is_where_writing_goes_on():
    assert last_passage("却说宝玉。笑道：“你好！”他", 60) == "他"
    assert last_passage("却说宝玉。笑道：“你好！”", 60) == "笑道：“你好！”"
    assert last_passage("他走了。\n", 60) == "他走了。\n"
    assert last_passage("  \n", 60) == ""
    assert len(last_passage("长" * 200, 60)) <= 60


def test_max_chars_is_checked():
    with pytest.raises(ValueError, match="max_chars"):
        passages("abc", 1)
