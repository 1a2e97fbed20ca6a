"""Decoding: processors, steppers and searches, checked on tiny deterministic toy models.

The toy models implement the same interface as the real ones (``kind``, ``encode``/``decode`` or
``forward``/``block_size``) with fixed next-token tables, so every expected result below is
computed by hand (or by brute force) from the table.
"""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from textgen_core.decoding import (
    DecodeConfig,
    LMStepper,
    Seq2SeqStepper,
    generate,
    length_penalty,
)
from textgen_core.errors import ConfigError

PAD, BOS, EOS, A, B, C, D, E = range(8)
BANNED = (PAD, BOS)
INF = math.inf


def make_table(vocab: int, rows: dict[int, dict[int, float]]) -> torch.Tensor:
    """(V, V) next-token probabilities given the last token; unspecified mass is spread evenly
    over the unspecified tokens >= EOS (pad and bos get 0 unless given)."""
    table = torch.zeros(vocab, vocab, dtype=torch.float64)
    for prev in range(vocab):
        row = rows.get(prev, {})
        free = [t for t in range(EOS, vocab) if t not in row]
        rest = 1.0 - sum(row.values())
        for tok in free:
            table[prev, tok] = rest / len(free)
        for tok, p in row.items():
            table[prev, tok] = p
    return table


class TableLM(nn.Module):
    """Decoder-only toy: next-token log-probs depend only on the last token."""

    kind = "lm"

    def __init__(self, probs: torch.Tensor, block_size: int = 16) -> None:
        super().__init__()
        self.register_buffer("table", probs.log().float())  # (V, V)
        self._block_size = block_size
        self.seen: list[torch.Tensor] = []
        self.eval()

    @property
    def block_size(self) -> int:
        return self._block_size

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        self.seen.append(idx.clone())
        return self.table[idx]  # (B, T, V)


class CopySeq2Seq(nn.Module):
    """Encoder-decoder toy: output position t copies source token t (eos after the source).

    ``encode`` one-hot encodes the source, so ``decode`` only reads the copy target from
    ``memory`` (pad positions encode to zeros, like the end of the source); it also checks that
    memory and src rows still belong together.
    """

    kind = "seq2seq"

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.vocab = vocab
        self.weight = nn.Parameter(torch.zeros(1))  # gives the stepper a device
        self.eval()

    def encode(self, src: torch.Tensor) -> torch.Tensor:
        return F.one_hot(src, self.vocab).float() * (src != PAD)[..., None]  # (B, S, V)

    def decode(self, memory, src, tgt_in, need_weights=False):
        assert torch.equal(memory.argmax(-1), src), "memory and src rows were split up"
        steps = tgt_in.size(1)
        padded = F.pad(memory, (0, 0, 0, steps))  # (B, S+T, V)
        target = padded[:, :steps, :] * 10.0  # (B, T, V): copy source token t
        target[..., EOS] += 10.0 * (padded[:, :steps, :].sum(-1) == 0)  # past the source: eos
        return SimpleNamespace(logits=target - 5.0, self_attn=None, cross_attn=None)


# Greedy trap: bos->a (0.6) leads to a flat a-row; bos->b (0.4) then eos (0.9) is more likely.
TRAP = make_table(
    8,
    {
        BOS: {A: 0.6, B: 0.4},
        A: {C: 0.36, D: 0.33, EOS: 0.31},
        B: {EOS: 0.9, E: 0.1},
        C: {EOS: 1.0},
        D: {EOS: 1.0},
        E: {EOS: 1.0},
    },
)
# Length trade-off: stopping at once has p=0.5; going on via a has 0.5 * 0.9 = 0.45.
SHORT = make_table(8, {BOS: {EOS: 0.5, A: 0.5}, A: {EOS: 0.9, C: 0.1}, C: {EOS: 1.0}})


def run(table, prefix=(BOS,), **kwargs):
    extra = {k: kwargs.pop(k) for k in ("on_token", "forced_length") if k in kwargs}
    config = DecodeConfig(**kwargs)
    return generate(
        LMStepper(TableLM(table)),
        list(prefix),
        eos_id=EOS,
        config=config,
        banned_ids=BANNED,
        **extra,
    )


def random_table(vocab: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(vocab, vocab, generator=gen, dtype=torch.float64).softmax(-1)


# ----------------------------------------------------------------------------- steppers


def test_lm_stepper_crops_to_block_size():
    model = TableLM(random_table(8, 0), block_size=4)
    prefix = torch.tensor([[3, 4, 5, 6, 7, 3, 4, 5, 6, 7]])
    logits = LMStepper(model).logits(prefix)
    assert torch.equal(model.seen[-1], prefix[:, -4:])
    assert logits.shape == (1, 8) and logits.dtype == torch.float32
    assert torch.equal(logits[0], model.table[7])
    run(random_table(8, 0), prefix=[3] * 20, strategy="greedy", max_tokens=5)  # long prompt ok


def test_seq2seq_stepper_select_expands_memory_and_src():
    model = CopySeq2Seq(8)
    src = torch.tensor([[3, 4, 0], [5, 5, 6]])
    stepper = Seq2SeqStepper(model, src)
    stepper.select(torch.tensor([1, 1, 0]))
    assert stepper.memory.shape == (3, 3, 8)
    assert torch.equal(stepper.src, src[[1, 1, 0]])
    assert torch.equal(stepper.memory, model.encode(src[[1, 1, 0]]))
    logits = stepper.logits(torch.full((3, 1), BOS))
    assert logits.argmax(-1).tolist() == [5, 5, 3]
    with pytest.raises(ValueError, match="select"):
        stepper.logits(torch.full((2, 1), BOS))


def test_registered_models_pick_their_stepper():
    from textgen_core import models

    def tiny(name):
        config = models.build_config(name, models.preset_settings(name, "tiny"), src_vocab_size=16,
                                     tgt_vocab_size=16, pad_id=0)
        return models.build_model(name, config).eval()

    assert isinstance(models.make_stepper(tiny("gpt"), None), LMStepper)
    assert isinstance(models.make_stepper(tiny("transformer"), torch.tensor([[5, 3]])), Seq2SeqStepper)
    with pytest.raises(ConfigError, match="source"):
        models.make_stepper(tiny("transformer"), None)
    with pytest.raises(ConfigError, match="not a registered"):
        models.make_stepper(nn.Linear(2, 2), None)


# ----------------------------------------------------------------------------- greedy and beam


def test_greedy_follows_argmax_path():
    (hyp,) = run(TRAP, strategy="greedy")
    assert hyp.ids == (A, C) and hyp.finished
    assert hyp.token_logprobs == pytest.approx((math.log(0.6), math.log(0.36)), abs=1e-6)
    assert hyp.score == pytest.approx(math.log(0.6 * 0.36 * 1.0), abs=1e-6)


def test_beam_escapes_greedy_trap():
    (hyp,) = run(TRAP, strategy="beam", beam_size=2, length_penalty=0.0)
    assert hyp.ids == (B,) and hyp.finished
    assert hyp.score == pytest.approx(math.log(0.4 * 0.9), abs=1e-6)
    assert hyp.score > run(TRAP, strategy="greedy")[0].score


# bos->eos (0.4) is the runner-up of the first step: a width-1 beam must drop it, as greedy does.
RUNNER_UP = make_table(8, {BOS: {A: 0.6, EOS: 0.4}, A: {C: 0.55, D: 0.45}, C: {EOS: 1.0}})


@pytest.mark.parametrize("seed", [-1, 0, 1, 2, 3])
def test_beam_size_one_equals_greedy(seed):
    table = RUNNER_UP if seed < 0 else random_table(10, seed)
    for prefix in [[BOS], [A, E]] if seed < 0 else [[BOS], [3, 7], [9]]:
        greedy = run(table, prefix, strategy="greedy", max_tokens=8)
        beam = run(table, prefix, strategy="beam", beam_size=1, length_penalty=0.0, max_tokens=8)
        assert beam[0].ids == greedy[0].ids and beam[0].finished == greedy[0].finished
        assert beam[0].token_logprobs == pytest.approx(greedy[0].token_logprobs, abs=1e-5)
        assert beam[0].score == pytest.approx(greedy[0].score, abs=1e-5)


def test_length_penalty_changes_ranking():
    (short,) = run(SHORT, strategy="beam", beam_size=2, length_penalty=0.0, max_tokens=5)
    assert short.ids == () and short.score == pytest.approx(math.log(0.5), abs=1e-6)
    best, second = run(
        SHORT, strategy="beam", beam_size=2, n_best=2, length_penalty=2.0, max_tokens=5
    )
    assert best.ids == (A,) and second.ids == ()
    assert best.score == pytest.approx(math.log(0.45) / (7 / 6) ** 2, abs=1e-6)
    assert second.score == pytest.approx(math.log(0.5) / 1.0, abs=1e-6)
    assert length_penalty(1, 2.0) == 1.0
    # n_best=1: the early stop must wait, as the live beam can still win under the penalty
    (best,) = run(SHORT, strategy="beam", beam_size=2, length_penalty=2.0, max_tokens=5)
    assert best.ids == (A,)


def test_n_best_distinct_and_sorted():
    hyps = run(TRAP, strategy="beam", beam_size=3, n_best=3, length_penalty=0.0)
    assert [h.ids for h in hyps] == [(B,), (A, C), (A, D)]
    assert [h.score for h in hyps] == pytest.approx(
        [math.log(p) for p in (0.36, 0.216, 0.198)], abs=1e-6
    )


def _toy_logp(table: torch.Tensor) -> torch.Tensor:
    """The (V, V) log-probs greedy/beam see: the table with pad and bos banned."""
    logp = table.log().float()
    logp[:, list(BANNED)] = -INF
    return logp.log_softmax(-1)


def _brute_force(table: torch.Tensor, max_tokens: int, alpha: float):
    logp = _toy_logp(table)
    found = []
    for length in range(max_tokens + 1):
        for ids in itertools.product(range(EOS + 1, table.size(0)), repeat=length):
            path = (BOS, *ids)
            raw = sum(float(logp[p, t]) for p, t in itertools.pairwise(path))
            if length < max_tokens:  # finished: eos counts as a token
                raw += float(logp[path[-1], EOS])
                found.append((raw / length_penalty(length + 1, alpha), ids, True))
            else:
                found.append((raw / length_penalty(length, alpha), ids, False))
    return sorted(found, reverse=True)


@pytest.mark.parametrize("alpha", [0.0, 0.7])
def test_wide_beam_is_exact_search(alpha):
    table = random_table(5, 11)  # tokens 3 and 4 plus eos: 15 possible outputs of <= 3 tokens
    hyps = run(table, strategy="beam", beam_size=16, n_best=8, length_penalty=alpha, max_tokens=3)
    expected = _brute_force(table, 3, alpha)[:8]
    assert [(h.ids, h.finished) for h in hyps] == [(ids, fin) for _, ids, fin in expected]
    assert [h.score for h in hyps] == pytest.approx([s for s, _, _ in expected], abs=1e-5)


def _check_path_logprobs(hyp, table, prefix, alpha=0.0):
    logp = _toy_logp(table)
    path = [prefix[-1], *hyp.ids]
    expected = [float(logp[p, t]) for p, t in itertools.pairwise(path)]
    assert hyp.token_logprobs == pytest.approx(expected, abs=1e-5)
    raw = sum(expected) + (float(logp[path[-1], EOS]) if hyp.finished else 0.0)
    scored = len(hyp.ids) + hyp.finished
    assert hyp.score == pytest.approx(raw / length_penalty(scored, alpha), abs=1e-5)


def test_beam_bookkeeping_matches_paths():
    table = random_table(9, 5)
    hyps = run(table, strategy="beam", beam_size=5, n_best=5, length_penalty=1.0, max_tokens=6)
    assert len({h.ids for h in hyps}) == 5
    assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
    for hyp in hyps:
        _check_path_logprobs(hyp, table, [BOS], alpha=1.0)


def test_seq2seq_beam_copies_source():
    model = CopySeq2Seq(8)
    src = torch.tensor([[5, 3, 4, 0]])  # trailing pad
    config = DecodeConfig(strategy="beam", beam_size=3, n_best=3, max_tokens=10)
    hyps = generate(Seq2SeqStepper(model, src), [BOS], eos_id=EOS, config=config, banned_ids=BANNED)
    assert hyps[0].ids == (5, 3, 4) and hyps[0].finished
    assert len({h.ids for h in hyps}) == 3
    forced = generate(
        Seq2SeqStepper(model, src),
        [BOS],
        eos_id=EOS,
        config=config,
        banned_ids=BANNED,
        forced_length=2,
    )
    assert forced[0].ids == (5, 3)


def test_min_tokens_bans_early_eos():
    (hyp,) = run(SHORT, strategy="greedy", min_tokens=2, max_tokens=6)
    assert len(hyp.ids) >= 2 and hyp.finished


@pytest.mark.parametrize("strategy", ["greedy", "sample", "beam"])
def test_forced_length_is_exact(strategy):
    table = make_table(8, {t: {EOS: 0.7} for t in range(8)})  # eos is always the favourite
    for length in (1, 4, 9):
        hyps = run(
            table,
            strategy=strategy,
            forced_length=length,
            max_tokens=2,
            seed=0,
            beam_size=3,
            n_best=2 if strategy != "greedy" else 1,
        )
        assert all(len(h.ids) == length and h.finished and EOS not in h.ids for h in hyps)


def test_repetition_controls_in_generation():
    table = make_table(8, {BOS: {A: 0.9}, A: {A: 0.6, B: 0.4}})
    assert run(table, strategy="greedy", max_tokens=2)[0].ids == (A, A)
    # log 0.6 = -0.51 becomes -1.02 under penalty 2, below log 0.4 = -0.92
    assert run(table, strategy="greedy", max_tokens=2, repetition_penalty=2.0)[0].ids == (A, B)
    loop = make_table(8, {t: {A: 0.8, EOS: 0.0} for t in range(8)})
    ids = run(loop, strategy="greedy", max_tokens=5, no_repeat_ngram=1)[0].ids
    assert len(ids) == 5 and len(set(ids)) == 5


# ----------------------------------------------------------------------------- sampling


FLAT = make_table(40, {})  # uniform over 38 tokens: samples of different seeds differ


def test_sampling_is_reproducible_and_leaves_global_rng_alone():
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    first = run(FLAT, strategy="sample", seed=7, max_tokens=20, n_best=3)
    again = run(FLAT, strategy="sample", seed=7, max_tokens=20, n_best=3)
    other = run(FLAT, strategy="sample", seed=8, max_tokens=20, n_best=3)
    unseeded = run(FLAT, strategy="sample", max_tokens=20)
    assert torch.equal(torch.get_rng_state(), state)
    assert first == again
    assert [h.ids for h in first] != [h.ids for h in other]
    assert len(unseeded) == 1


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, {A: 0.5, B: 0.3, C: 0.2}),
        ({"temperature": 0.5}, {A: 0.25 / 0.38, B: 0.09 / 0.38, C: 0.04 / 0.38}),
        ({"top_k": 2}, {A: 0.625, B: 0.375, C: 0.0}),
        ({"top_p": 0.6}, {A: 0.625, B: 0.375, C: 0.0}),
    ],
)
def test_sampling_follows_processed_distribution(options, expected):
    table = make_table(8, {BOS: {A: 0.5, B: 0.3, C: 0.2}})
    hyps = run(table, strategy="sample", seed=3, max_tokens=1, n_best=4000, **options)
    for tok, prob in expected.items():
        freq = sum(h.ids == (tok,) for h in hyps) / len(hyps)
        assert freq == pytest.approx(prob, abs=0.03)
        if prob > 0:  # log-probs are those of the processed distribution
            lp = next(h.token_logprobs[0] for h in hyps if h.ids == (tok,))
            assert lp == pytest.approx(math.log(prob), abs=1e-5)


def test_sampled_rows_keep_their_own_paths():
    table = random_table(9, 2)
    hyps = run(table, strategy="sample", seed=0, n_best=30, max_tokens=6)
    assert len(hyps) == 30 and any(h.finished for h in hyps) and any(not h.finished for h in hyps)
    assert len({len(h.ids) for h in hyps}) > 2  # rows ended at different steps
    assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
    for hyp in hyps:
        _check_path_logprobs(hyp, table, [BOS])


def test_top_k_one_sampling_equals_greedy():
    table = random_table(10, 4)
    greedy = run(table, strategy="greedy", max_tokens=8)[0]
    assert run(table, strategy="sample", top_k=1, seed=5, max_tokens=8)[0].ids == greedy.ids


# ----------------------------------------------------------------------------- streaming, errors


@pytest.mark.parametrize("strategy", ["greedy", "sample"])
def test_on_token_streams_and_stops(strategy):
    table = make_table(40, {t: {EOS: 0.02} for t in range(40)})
    streamed: list[int] = []
    (full,) = run(
        table, strategy=strategy, seed=1, max_tokens=12, on_token=lambda t: streamed.append(t)
    )  # None return: keep going
    assert tuple(streamed) == full.ids and len(full.ids) > 3
    streamed.clear()
    (stopped,) = run(
        table,
        strategy=strategy,
        seed=1,
        max_tokens=12,
        on_token=lambda t: streamed.append(t) or len(streamed) < 3,
    )
    assert streamed == list(stopped.ids) and stopped.ids == full.ids[:3]
    assert not stopped.finished


def test_generate_argument_errors():
    with pytest.raises(ConfigError, match="on_token"):
        run(TRAP, strategy="beam", on_token=lambda t: True)
    with pytest.raises(ConfigError, match="prefix"):
        run(TRAP, prefix=(), strategy="greedy")
    with pytest.raises(ConfigError, match="forced_length"):
        run(TRAP, strategy="greedy", forced_length=0)
    with pytest.raises(ConfigError, match="eos"):
        generate(LMStepper(TableLM(TRAP)), [BOS], eos_id=99, config=DecodeConfig())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_search_on_cuda():
    for config in (
        DecodeConfig(strategy="greedy"),
        DecodeConfig(strategy="beam", beam_size=3),
        DecodeConfig(strategy="sample", seed=0, n_best=3, top_p=0.9),
    ):
        cpu = generate(
            LMStepper(TableLM(TRAP)), [BOS], eos_id=EOS, config=config, banned_ids=BANNED
        )
        gpu = generate(
            LMStepper(TableLM(TRAP).cuda()), [BOS], eos_id=EOS, config=config, banned_ids=BANNED
        )
        assert len(gpu) == len(cpu) and all(h.finished for h in gpu)
        if config.strategy != "sample":
            assert [h.ids for h in gpu] == [h.ids for h in cpu]
        stepper = Seq2SeqStepper(CopySeq2Seq(8).cuda(), torch.tensor([[5, 3, 4]]))
        assert generate(stepper, [BOS], eos_id=EOS, config=config)[0].ids == (5, 3, 4)
