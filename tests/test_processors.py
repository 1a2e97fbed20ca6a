"""Logits processors and decoding settings: values, validation, no in-place changes."""

from __future__ import annotations

import math

import pytest
import torch

from textgen_core.decoding import (
    DecodeConfig,
    MinPProcessor,
    NoRepeatNGramProcessor,
    RepetitionPenaltyProcessor,
    SuppressTokensProcessor,
    TemperatureProcessor,
    TopKProcessor,
    TopPProcessor,
    build_processors,
)
from textgen_core.errors import ConfigError

PAD, BOS, EOS, A, B, C, D, E = range(8)
BANNED = (PAD, BOS)
INF = math.inf



# ----------------------------------------------------------------------------- processors


def test_temperature_and_top_k_values():
    scores = torch.tensor([[1.0, 3.0, 2.0, 0.0]])
    ids = torch.zeros(1, 0, dtype=torch.long)
    expected = torch.tensor([[0.5, 1.5, 1.0, 0.0]])
    assert torch.allclose(TemperatureProcessor(2.0)(ids, scores), expected)
    assert torch.equal(TopKProcessor(2)(ids, scores), torch.tensor([[-INF, 3.0, 2.0, -INF]]))
    assert torch.equal(TopKProcessor(10)(ids, scores), scores)


@pytest.mark.parametrize(
    ("top_p", "kept"),
    [(0.45, {0}), (0.7, {0, 1}), (0.81, {0, 1, 2}), (1e-6, {0}), (1.0, {0, 1, 2, 3})],
)
def test_top_p_keeps_minimal_nucleus(top_p, kept):
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    perm = torch.tensor([2, 0, 3, 1])  # shuffled vocabulary order
    scores = torch.stack([probs[perm].log(), probs.log()])  # (2, 4): two rows, two orders
    out = TopPProcessor(top_p)(torch.zeros(2, 0, dtype=torch.long), scores)
    assert {int(perm[i]) for i in torch.isfinite(out[0]).nonzero().flatten()} == kept
    assert set(torch.isfinite(out[1]).nonzero().flatten().tolist()) == kept
    assert torch.equal(out[torch.isfinite(out)], scores[torch.isfinite(out)])


def test_repetition_penalty_is_ctrl_style():
    scores = torch.tensor([[2.0, -1.0, 0.5, 3.0]])
    ids = torch.tensor([[0, 1, 1]])
    assert torch.equal(
        RepetitionPenaltyProcessor(2.0)(ids, scores), torch.tensor([[1.0, -2.0, 0.5, 3.0]])
    )
    assert torch.equal(
        RepetitionPenaltyProcessor(0.5)(ids, scores), torch.tensor([[4.0, -0.5, 0.5, 3.0]])
    )


@pytest.mark.parametrize(
    ("n", "ids", "banned"),
    [
        (2, [3, 4, 5, 3], {4}),
        (3, [3, 4, 5, 3, 4], {5}),
        (1, [3, 4], {3, 4}),
        (2, [3], set()),
        (2, [3, 3], {3}),
        (3, [3, 4, 5, 4, 3], set()),
    ],
)
def test_no_repeat_ngram_bans_completions(n, ids, banned):
    out = NoRepeatNGramProcessor(n)(torch.tensor([ids]), torch.zeros(1, 6))
    assert set(torch.isinf(out[0]).nonzero().flatten().tolist()) == banned


def test_suppress_tokens_and_out_of_vocab():
    out = SuppressTokensProcessor([0, 1])(torch.zeros(1, 0, dtype=torch.long), torch.ones(1, 4))
    assert torch.equal(out, torch.tensor([[-INF, -INF, 1.0, 1.0]]))
    with pytest.raises(ConfigError, match="outside the vocabulary"):
        SuppressTokensProcessor([7])(torch.zeros(1, 0, dtype=torch.long), torch.ones(1, 4))


@pytest.mark.parametrize(
    ("cls", "arg", "message"),
    [
        (TemperatureProcessor, 0.0, "temperature must be > 0"),
        (TemperatureProcessor, float("nan"), "temperature"),
        (TopKProcessor, 0, "top_k must be >= 1"),
        (TopKProcessor, 1.5, "top_k must be an integer"),
        (TopPProcessor, 1.5, r"top_p must be in \(0, 1\], got 1.5"),
        (TopPProcessor, 0.0, "top_p"),
        (RepetitionPenaltyProcessor, 0.0, "repetition_penalty must be > 0"),
        (NoRepeatNGramProcessor, 0, "no_repeat_ngram must be >= 1"),
        (SuppressTokensProcessor, [-1], "banned token ids"),
        (MinPProcessor, 0.0, r"min_p must be a number in \(0, 1\]"),
        (MinPProcessor, 1.5, "min_p"),
    ],
)
def test_processor_arguments_are_validated(cls, arg, message):
    with pytest.raises(ConfigError, match=message):
        cls(arg)


def test_processors_do_not_modify_input():
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(3, 9, generator=gen)
    ids = torch.randint(0, 9, (3, 5), generator=gen)
    before_scores, before_ids = scores.clone(), ids.clone()
    for proc in (
        TemperatureProcessor(0.7),
        TopKProcessor(3),
        TopPProcessor(0.5),
        RepetitionPenaltyProcessor(1.3),
        NoRepeatNGramProcessor(1),
        SuppressTokensProcessor([0, 2]),
        MinPProcessor(0.3),
    ):
        out = proc(ids, scores)
        assert not torch.equal(out, scores), type(proc).__name__
        assert torch.equal(scores, before_scores) and torch.equal(ids, before_ids)


def test_min_p_keeps_tokens_within_a_share_of_the_top_one():
    # probabilities 0.5, 0.25, 0.125, 0.0625, 0.0625 (a ramp): min_p 0.25 keeps p >= 0.125
    probs = torch.tensor([[0.0625, 0.125, 0.5, 0.25, 0.0625]])
    out = MinPProcessor(0.25)(torch.zeros((1, 0), dtype=torch.long), probs.log())
    assert torch.isinf(out).tolist() == [[True, False, False, False, True]]
    assert torch.equal(out[0, 1:4], probs.log()[0, 1:4])              # the kept scores untouched
    assert not torch.isinf(MinPProcessor(1.0)(torch.zeros((1, 0)), probs.log())[0, 2])   # the top stays


def test_build_processors_per_strategy():
    full = dict(temperature=0.8, top_k=5, top_p=0.9, repetition_penalty=1.2, no_repeat_ngram=3)
    sample = build_processors(DecodeConfig(strategy="sample", **full), banned_ids=[0])
    assert [type(p) for p in sample] == [
        RepetitionPenaltyProcessor,
        NoRepeatNGramProcessor,
        SuppressTokensProcessor,
        TemperatureProcessor,
        TopKProcessor,
        TopPProcessor,
    ]
    beam = build_processors(DecodeConfig(strategy="beam", **full), banned_ids=[0])
    assert [type(p) for p in beam] == [type(p) for p in sample[:3]]
    assert build_processors(DecodeConfig()) == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"strategy": "topk"}, "strategy"),
        ({"temperature": 0}, "temperature"),
        ({"top_k": -1}, "top_k"),
        ({"top_k": True}, "top_k"),
        ({"top_p": 0.0}, "top_p"),
        ({"repetition_penalty": 0}, "repetition_penalty"),
        ({"beam_size": 0}, "beam_size"),
        ({"length_penalty": -1.0}, "length_penalty"),
        ({"n_best": 0}, "n_best"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"min_tokens": -1}, "min_tokens"),
        ({"seed": "x"}, "seed"),
        ({"no_repeat_ngram": -1}, "no_repeat_ngram"),
        ({"min_tokens": 5, "max_tokens": 4}, "min_tokens"),
        ({"strategy": "beam", "beam_size": 2, "n_best": 3}, "n_best"),
        ({"strategy": "greedy", "n_best": 2}, "n_best"),
    ],
)
def test_decode_config_validation_names_field(options, field):
    with pytest.raises(ConfigError, match=field):
        DecodeConfig(**options)
    assert DecodeConfig(strategy="sample", beam_size=2, n_best=5).n_best == 5
