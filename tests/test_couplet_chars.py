"""Couplet form with characters outside the vocabulary: one source position per character."""

from __future__ import annotations

import pytest
import torch

from textgen_core.decoding.constraints import CoupletPunctuation, CoupletRepetition, is_punctuation
from textgen_core.decoding.search import DecodeConfig
from textgen_core.generation import Generator

RARE = "龘靐齉"  # not in the sample couplets' vocabulary


@pytest.fixture
def generator(couplet_generator) -> Generator:
    assert not any(couplet_generator.src_tok.has_char(ch) for ch in RARE)
    return couplet_generator


def test_each_unknown_character_is_its_own_position(generator):
    tok = generator.src_tok
    assert len(tok.encode("龘靐春风")) == 3                 # SentencePiece merges the unknown run
    ids = tok.encode("龘靐春风", per_char=True)
    assert len(ids) == 4 and ids[:2] == [tok.unk_id, tok.unk_id]
    assert tok.encode("春风", per_char=True) == tok.encode("春风")


@pytest.mark.parametrize("first", [
    "龘靐春风得意",        # a run at the start
    "春风龘靐齉得意",      # in the middle
    "春风得意龘靐",        # at the end
    "龘春风靐得意齉",      # scattered
    "春风😀得意AB12",     # emoji, Latin letters, digits
    "龘龘春风，靐靐得意",  # repeated rare characters and a comma
])
def test_second_line_keeps_the_first_lines_form(generator, first):
    for config in (DecodeConfig(strategy="greedy"), DecodeConfig(strategy="beam", n_best=3),
                   DecodeConfig(strategy="sample", top_k=5, seed=1)):
        result = generator.generate(first, config)
        for hyp in result.hypotheses:
            assert len(hyp.text) == len(first), (first, hyp.text)
            assert "⁇" not in hyp.text
            for i, ch in enumerate(first):
                assert (hyp.text[i] == "，") == (ch == "，"), (first, hyp.text)
            for i in range(len(first)):
                for j in range(i):
                    if first[i] == first[j] and first[i] != "，":
                        assert hyp.text[i] == hyp.text[j], (first, hyp.text)
                    elif first[i] != "，" and first[j] != "，":
                        assert hyp.text[i] != hyp.text[j], (first, hyp.text)


def test_ascii_mark_typed_in_a_couplet_becomes_full_width(generator):
    tok = generator.src_tok
    assert tok.has_char("，") and not tok.has_char(",") and not tok.has_char("!")
    exclamation = "！" if tok.has_char("！") else "!"     # a mark the vocabulary lacks stays
    assert generator.prepare("春风, 得意!") == "春风，得意" + exclamation
    result = generator.generate("春风,得意!", DecodeConfig(strategy="greedy"))
    text = result.hypotheses[0].text
    assert len(text) == 6 and text[2] == "，"
    assert is_punctuation(text[5]) and not any(is_punctuation(ch) for ch in text[:2] + text[3:5])


def test_two_different_unknown_characters_are_not_a_repeat():
    unk = 1
    rule = CoupletRepetition([unk, unk, 10], punctuation=[], chars="龘靐春")
    assert rule.earlier == [None, None, None]
    mirrored = CoupletRepetition([unk, unk, 10], punctuation=[], chars="龘龘春")
    assert mirrored.earlier == [None, 0, None]


def test_unknown_punctuation_mark_still_requires_a_mark():
    unk = 1
    rule = CoupletPunctuation([10, unk, 11], punctuation=[2, 3], punct_at=[1])
    scores = torch.zeros(1, 12)
    at_mark = rule(torch.tensor([[0, 5]]), scores)           # position 1: the unknown mark
    assert torch.isfinite(at_mark[0]).nonzero().flatten().tolist() == [2, 3]
    elsewhere = rule(torch.tensor([[0]]), scores)            # position 0: no mark allowed
    assert torch.isinf(elsewhere[0, [2, 3]]).all() and torch.isfinite(elsewhere[0, 4:]).all()
