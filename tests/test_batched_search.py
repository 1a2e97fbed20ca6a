"""The batched search: many inputs in one search give what each gives alone (sources of different
lengths, per-input lengths and rules), forced prefixes branch, alternatives describe each step."""

from __future__ import annotations

import math

import pytest
import torch

from textgen_core import models
from textgen_core.decoding import DecodeConfig, generate, generate_batch
from textgen_core.decoding.constraints import CoupletRepetition
from textgen_core.errors import ConfigError

PAD, BOS, EOS, V = 0, 2, 3, 23
SOURCES = [[5, 6, 7, 8, 9], [10, 11], [12, 5, 12, 13, 14, 15, 16], [17, 18, 19]]


@pytest.fixture(scope="module", params=["transformer", "gru-seq2seq", "bahdanau-attention"])
def model(request) -> torch.nn.Module:
    torch.manual_seed(0)
    sizes = {"transformer": {"n_layer": 2, "n_head": 2, "n_embd": 32, "dropout": 0.0},
             "gru-seq2seq": {"emb_dim": 16, "hidden_size": 32, "dropout": 0.0},
             "bahdanau-attention": {"emb_dim": 16, "hidden_size": 32, "dropout": 0.0}}[request.param]
    config = models.config_from_dict(request.param, {"src_vocab_size": V, "tgt_vocab_size": V, "pad_id": PAD,
                                                     "block_size": 32, **sizes})
    return models.build_model(request.param, config).eval()


def stepper(model, rows):
    src = torch.full((len(rows), max(len(r) for r in rows) + 1), PAD)
    for b, row in enumerate(rows):
        src[b, : len(row) + 1] = torch.tensor([*row, EOS])
    return models.make_stepper(model, src)


def alone(model, rows, config, **per_input):
    out = []
    for b, row in enumerate(rows):
        kwargs = {k: v[b] for k, v in per_input.items()}
        out.append(generate(stepper(model, [row]), [BOS], eos_id=EOS, config=config, banned_ids=(PAD, BOS),
                            **kwargs))
    return out


def same(batched, single):
    assert len(batched) == len(single)
    for got, want in zip(batched, single):
        assert [h.ids for h in got] == [h.ids for h in want]
        assert [h.finished for h in got] == [h.finished for h in want]
        assert [h.score for h in got] == pytest.approx([h.score for h in want], abs=1e-4)


@pytest.mark.parametrize("config", [
    DecodeConfig(strategy="greedy", max_tokens=9),
    DecodeConfig(strategy="beam", beam_size=3, n_best=3, max_tokens=9),
    DecodeConfig(strategy="beam", beam_size=4, n_best=2, length_penalty=0.0, max_tokens=6),
], ids=["greedy", "beam3", "beam4-alpha0"])
def test_batched_equals_one_at_a_time(model, config):
    batched = generate_batch(stepper(model, SOURCES), [[BOS]] * len(SOURCES), eos_id=EOS, config=config,
                             banned_ids=(PAD, BOS))
    same(batched, alone(model, SOURCES, config))


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_per_input_lengths_and_rules_stay_with_their_input(model, strategy):
    config = DecodeConfig(strategy=strategy, beam_size=3, n_best=2 if strategy == "beam" else 1)
    lengths = [len(s) for s in SOURCES]
    rules = [[CoupletRepetition(s, [], 1)] for s in SOURCES]      # mirrors the repeat of input 2
    batched = generate_batch(stepper(model, SOURCES), [[BOS]] * len(SOURCES), eos_id=EOS, config=config,
                             banned_ids=(PAD, BOS), forced_lengths=lengths, constraints=rules)
    same(batched, alone(model, SOURCES, config, forced_length=lengths, constraints=rules))
    for hyps, n in zip(batched, lengths):
        assert all(len(h.ids) == n and h.finished for h in hyps)
    assert all(h.ids[0] == h.ids[2] for h in batched[2])               # 12 _ 12 -> x _ x


def test_a_forced_prefix_is_taken_and_the_rest_continues_from_it(model):
    config = DecodeConfig(strategy="greedy", max_tokens=8)
    free = generate(stepper(model, [SOURCES[0]]), [BOS], eos_id=EOS, config=config, banned_ids=(PAD, BOS))[0]
    second = next(t for t, _ in free.alternatives[0] if t != free.ids[0])     # the runner-up first token
    branch = generate(stepper(model, [SOURCES[0]]), [BOS], eos_id=EOS, config=config, banned_ids=(PAD, BOS),
                      forced_prefix=[second])[0]
    assert branch.ids[0] == second and branch.ids != free.ids
    # what follows is the model's own greedy continuation of that prefix
    step = stepper(model, [SOURCES[0]])
    prefix = torch.tensor([[BOS, second]])
    with torch.inference_mode():
        for t in branch.ids[1:]:
            logits = step.logits(prefix)[0].clone()
            logits[[PAD, BOS]] = -math.inf
            assert int(logits.argmax()) == t
            prefix = torch.cat([prefix, torch.tensor([[t]])], dim=1)
    for strategy in ("beam", "sample"):
        hyps = generate(stepper(model, [SOURCES[0]]), [BOS], eos_id=EOS, banned_ids=(PAD, BOS),
                        config=DecodeConfig(strategy=strategy, n_best=2, beam_size=3, seed=1, max_tokens=8),
                        forced_prefix=[second, 7])
        assert all(h.ids[:2] == (second, 7) for h in hyps), strategy


def test_alternatives_are_the_steps_most_likely_tokens(model):
    config = DecodeConfig(strategy="greedy", max_tokens=6, alternatives=4)
    (hyp,) = generate(stepper(model, [SOURCES[1]]), [BOS], eos_id=EOS, config=config, banned_ids=(PAD, BOS))
    assert len(hyp.alternatives) == len(hyp.ids)
    for tok, lp, alts in zip(hyp.ids, hyp.token_logprobs, hyp.alternatives):
        assert len(alts) == 4 and alts[0] == (tok, pytest.approx(math.exp(lp), rel=1e-5))
        probs = [p for _, p in alts]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
        assert PAD not in [t for t, _ in alts] and BOS not in [t for t, _ in alts]   # banned: p = 0
    (none,) = generate(stepper(model, [SOURCES[1]]), [BOS], eos_id=EOS, banned_ids=(PAD, BOS),
                       config=DecodeConfig(strategy="greedy", max_tokens=6, alternatives=0))
    assert none.alternatives == ((),) * len(none.ids)


def test_batch_argument_errors(model):
    config = DecodeConfig(strategy="greedy")
    with pytest.raises(ConfigError, match="one length"):
        generate_batch(stepper(model, SOURCES[:2]), [[BOS], [BOS, 5]], eos_id=EOS, config=config)
    with pytest.raises(ConfigError, match="forced_lengths has 1 entries for 2 inputs"):
        generate_batch(stepper(model, SOURCES[:2]), [[BOS], [BOS]], eos_id=EOS, config=config,
                       forced_lengths=[3])
    with pytest.raises(ConfigError, match="streaming needs one input"):
        generate_batch(stepper(model, SOURCES[:2]), [[BOS], [BOS]], eos_id=EOS, config=config,
                       on_token=lambda t: True)
    assert generate_batch(stepper(model, SOURCES[:1]), [], eos_id=EOS, config=config) == []


def test_coverage_penalty_is_gnmts():
    from textgen_core.decoding.coverage import coverage_penalty

    full = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.0, 0.3]])        # both sources covered (>= 1)
    assert coverage_penalty(full, 0.5) == 0.0
    half = torch.tensor([[0.5, 0.5], [0.5, 0.0]])                     # source 2 gets 0.5 in all
    assert coverage_penalty(half, 0.2) == pytest.approx(0.2 * math.log(0.5))
