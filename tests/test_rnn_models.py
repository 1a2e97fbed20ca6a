"""Recurrent seq2seq models (GRU, deep LSTM, Bahdanau, Luong): shapes, masks, attention, step-by-step
decoding against teacher forcing, beam search, scheduled sampling, reversed source, coverage loss and
overfitting a handful of couplets. Tiny dimensions, fixed seeds."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from conftest import COUPLETS

import textgen_core.models as zoo
from textgen_core.config import TrainConfig
from textgen_core.data import Seq2SeqBatch
from textgen_core.decoding.search import DecodeConfig, generate
from textgen_core.errors import ConfigError
from textgen_core.evaluation import batch_loss
from textgen_core.models import rnn
from textgen_core.models.contract import TrainContext
from textgen_core.training.algorithm import AlgorithmContext, TaskHooks

PAD, BOS, EOS = 0, 1, 2
V = 13
NAMES = ["gru-seq2seq", "lstm-seq2seq", "bahdanau-attention", "luong-attention"]
ATTENTION = ["bahdanau-attention", "luong-attention"]
TINY = dict(emb_dim=16, hidden_size=24, num_layers=1, dropout=0.0, block_size=16)
# every model, plus the variants whose decoding path differs
VARIANTS = [
    ("gru-seq2seq", {}),
    ("gru-seq2seq", {"num_layers": 2, "tie_embeddings": False}),
    ("lstm-seq2seq", {}),
    ("lstm-seq2seq", {"num_layers": 3, "reverse_source": False}),
    ("bahdanau-attention", {}),
    ("bahdanau-attention", {"num_layers": 2, "attention_size": 8}),
    ("luong-attention", {}),
    ("luong-attention", {"score": "dot", "num_layers": 2}),
    ("luong-attention", {"score": "concat"}),
    ("luong-attention", {"input_feeding": False}),
]
IDS = [f"{name}{'-' + '-'.join(f'{k}={v}' for k, v in o.items()) if o else ''}" for name, o in VARIANTS]


@pytest.fixture(autouse=True)
def _seed_and_one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def make(name: str, **overrides) -> rnn.RecurrentSeq2Seq:
    config = zoo.build_config(name, {**TINY, **overrides}, src_vocab_size=V, tgt_vocab_size=V, pad_id=PAD)
    return zoo.build_model(name, config).eval()


def padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """src (3, 6) and tgt_in (3, 5), rows of different lengths padded on the right."""
    src = torch.tensor([[5, 6, 7, 8, 9, EOS], [4, 5, 6, EOS, PAD, PAD], [3, EOS, PAD, PAD, PAD, PAD]])
    tgt_in = torch.tensor([[BOS, 10, 9, 8, 7], [BOS, 6, 5, PAD, PAD], [BOS, 11, PAD, PAD, PAD]])
    return src, tgt_in


# --------------------------------------------------------------------------- registry and config


def test_the_four_are_registered_for_couplets_and_translation() -> None:
    for name in NAMES:
        spec = zoo.get_spec(name)
        assert spec.kind == "seq2seq" and spec.tasks == ("couplet", "translation", "continuation")
        assert spec.has_attention == (name in ATTENTION)
        assert set(spec.presets) == {"tiny", "small", "base"}
        assert zoo.train_settings(name, "tiny")["learning_rate"] == 3e-3
        sizes = {}
        for preset in ("tiny", "small", "base"):
            config = zoo.build_config(name, zoo.preset_settings(name, preset),
                                      src_vocab_size=4000, tgt_vocab_size=4000, pad_id=0)
            sizes[preset] = spec.count_parameters(config)
            assert config.block_size >= 64
            assert spec.training_bytes(config, sizes[preset], 32) > sizes[preset] * 16
        assert sizes["tiny"] < 1_500_000 < 2_000_000 < sizes["small"] < sizes["base"]


def test_config_errors_name_the_setting() -> None:
    sizes = dict(src_vocab_size=V, tgt_vocab_size=V, pad_id=PAD)
    with pytest.raises(ConfigError, match=r"model\.score must be one of dot, general, concat"):
        zoo.build_config("luong-attention", {"score": "cosine"}, **sizes)
    with pytest.raises(ConfigError, match=r"model.ss_schedule"):
        zoo.build_config("gru-seq2seq", {"ss_schedule": "cosine"}, **sizes)
    with pytest.raises(ConfigError, match=r"model.ss_k must be above 1"):
        zoo.build_config("gru-seq2seq", {"ss_schedule": "inverse_sigmoid", "ss_k": 1.0}, **sizes)
    with pytest.raises(ConfigError, match=r"model.coverage_weight"):
        zoo.build_config("luong-attention", {"coverage_weight": -1.0}, **sizes)
    with pytest.raises(ConfigError, match=r"model.reverse_source must be true or false"):
        zoo.config_from_dict("lstm-seq2seq", {**sizes, "reverse_source": "maybe"})


def test_output_layer_is_tied_to_the_target_embedding() -> None:
    tied = make("luong-attention", emb_dim=16, hidden_size=24)
    assert tied.output.out.weight is tied.tgt_embed.weight
    assert isinstance(tied.output.proj, torch.nn.Linear)            # hidden 24 -> embedding 16
    same = make("lstm-seq2seq", emb_dim=24, hidden_size=24)
    assert isinstance(same.output.proj, torch.nn.Identity)
    untied = make("gru-seq2seq", tie_embeddings=False)
    assert untied.output.out.weight is not untied.tgt_embed.weight
    assert untied.num_parameters() > make("gru-seq2seq").num_parameters()


# --------------------------------------------------------------------------- shapes and masks


@pytest.mark.parametrize(("name", "overrides"), VARIANTS, ids=IDS)
def test_padding_does_not_change_a_rows_output(name: str, overrides: dict) -> None:
    model = make(name, **overrides)
    src, tgt_in = padded_batch()
    logits = model(src, tgt_in)
    assert logits.shape == (3, 5, V)
    for row in range(3):
        s, t = int((src[row] != PAD).sum()), int((tgt_in[row] != PAD).sum())
        alone = model(src[row : row + 1, :s], tgt_in[row : row + 1, :t])
        torch.testing.assert_close(logits[row : row + 1, :t], alone, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_an_empty_source_row_stays_finite(name: str) -> None:
    src, tgt_in = padded_batch()
    src[2] = PAD
    assert torch.isfinite(make(name)(src, tgt_in)).all()


def test_longer_than_block_size_is_refused() -> None:
    model = make("gru-seq2seq", block_size=4)
    src, tgt_in = padded_batch()
    with pytest.raises(ConfigError, match=r"exceeds model.block_size=4"):
        model(src, tgt_in[:, :4])


@pytest.mark.parametrize("name", ATTENTION)
def test_attention_rows_sum_to_one_over_real_source_positions(name: str) -> None:
    model = make(name)
    src, tgt_in = padded_batch()
    weights = zoo.get_spec(name).attention(model, src, tgt_in)
    assert weights.shape == (1, 3, 1, 5, 6)                       # (L, B, H, T, S)
    real = (src != PAD)[None, :, None, None, :].expand_as(weights)
    assert torch.all(weights[~real] == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(1, 3, 1, 5))
    assert weights[real].min() > 0


def test_models_without_attention_say_so() -> None:
    assert zoo.get_spec("gru-seq2seq").attention is None
    assert zoo.get_spec("lstm-seq2seq").attention is None


# --------------------------------------------------------------------------- decoding


@pytest.mark.parametrize(("name", "overrides"), VARIANTS, ids=IDS)
def test_step_by_step_decoding_matches_teacher_forcing(name: str, overrides: dict) -> None:
    model = make(name, **overrides)
    src, tgt_in = padded_batch()
    with torch.no_grad():
        expected = model(src, tgt_in)                               # (B, T, V)
        stepper = zoo.make_stepper(model, src)
        got = [stepper.logits(tgt_in[:, : t + 1]) for t in range(tgt_in.size(1))]
    real = tgt_in != PAD
    torch.testing.assert_close(torch.stack(got, 1)[real], expected[real], atol=1e-5, rtol=1e-4)


def _sequence_logprob(model: rnn.RecurrentSeq2Seq, src: torch.Tensor, ids: list[int]) -> float:
    """log p(ids + eos | src) by teacher forcing."""
    tgt_in = torch.tensor([[BOS, *ids]])
    target = torch.tensor([[*ids, EOS]])
    with torch.no_grad():
        logp = model(src[None], tgt_in).log_softmax(-1)
    return float(logp.gather(-1, target[..., None]).sum())


@pytest.mark.parametrize("name", NAMES)
def test_beam_search_scores_are_the_models_own_sequence_probabilities(name: str) -> None:
    model = make(name)
    src, _ = padded_batch()
    config = DecodeConfig(strategy="beam", beam_size=3, n_best=3, length_penalty=0.0, max_tokens=6)
    for row in src:
        real = row[row != PAD]
        hyps = generate(zoo.make_stepper(model, real[None]), [BOS], eos_id=EOS, config=config)
        assert len(hyps) == 3 and len({h.ids for h in hyps}) == 3
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        for hyp in hyps:
            if hyp.finished:                 # reordering the state per beam kept each beam's history
                assert hyp.score == pytest.approx(_sequence_logprob(model, real, list(hyp.ids)), abs=1e-4)
            assert sum(hyp.token_logprobs) <= 0


@pytest.mark.parametrize("name", NAMES)
def test_batched_greedy_decoding_equals_one_row_at_a_time(name: str) -> None:
    model = make(name)
    src, _ = padded_batch()
    greedy = DecodeConfig(strategy="greedy", max_tokens=6)
    with torch.no_grad():
        stepper = zoo.make_stepper(model, src)
        prefix = torch.full((3, 1), BOS)
        for _ in range(6):
            prefix = torch.cat([prefix, stepper.logits(prefix).argmax(-1, keepdim=True)], 1)
    for row in range(3):
        real = src[row][src[row] != PAD]
        hyp = generate(zoo.make_stepper(model, real[None]), [BOS], eos_id=EOS, config=greedy)[0]
        batched = prefix[row, 1:].tolist()
        expected = batched[: batched.index(EOS)] if EOS in batched else batched
        assert list(hyp.ids) == expected


# --------------------------------------------------------------------------- scheduled sampling


def test_teacher_forcing_schedules() -> None:
    ratio = rnn.teacher_forcing_ratio
    assert ratio("none", 0.7) == 1.0
    assert ratio("linear", 0.0) == 1.0 and ratio("linear", 0.25) == pytest.approx(0.75)
    assert ratio("linear", 1.0) == 0.0 and ratio("linear", 1.0, floor=0.3) == 0.3
    assert ratio("exponential", 0.0) == 1.0
    assert ratio("exponential", 0.5, k=2.0) == pytest.approx(math.exp(-1.0))
    assert ratio("inverse_sigmoid", 0.0, k=5.0) == pytest.approx(5 / 6)    # k / (k + 1)
    assert ratio("inverse_sigmoid", 0.5, k=5.0) == pytest.approx(0.5)
    assert ratio("inverse_sigmoid", 1.0, k=5.0) == pytest.approx(1 / 6)    # 1 / (1 + k)
    for schedule in ("linear", "exponential", "inverse_sigmoid"):
        values = [ratio(schedule, x / 10) for x in range(11)]
        assert values == sorted(values, reverse=True) and values[0] > values[-1]


def _fed_tokens(model: rnn.RecurrentSeq2Seq, src: torch.Tensor, tgt_in: torch.Tensor,
                teacher_ratio: float) -> torch.Tensor:
    """The tokens the decoder actually reads (B, T), recorded at its embedding."""
    fed: list[torch.Tensor] = []
    handle = model.tgt_embed.register_forward_hook(lambda _m, args, _out: fed.append(args[0]))
    try:
        model(src, tgt_in, teacher_ratio=teacher_ratio)
    finally:
        handle.remove()
    return torch.stack(fed, 1) if len(fed) > 1 else fed[0]


@pytest.mark.parametrize("name", ["gru-seq2seq", "bahdanau-attention"])
def test_scheduled_sampling_feeds_the_models_own_tokens_at_the_scheduled_rate(name: str) -> None:
    model = make(name)
    src = torch.randint(3, V, (400, 6))
    tgt_in = torch.cat([torch.full((400, 1), BOS), torch.randint(3, V, (400, 7))], 1)
    tgt_in[:200, 5:] = PAD
    assert torch.equal(_fed_tokens(model, src, tgt_in, 1.0), tgt_in)
    for ratio in (0.0, 0.5):
        fed = _fed_tokens(model, src, tgt_in, ratio)
        assert torch.equal(fed[:, 0], tgt_in[:, 0]) and torch.equal(fed == PAD, tgt_in == PAD)
        swapped = float((fed != tgt_in)[:, 1:][tgt_in[:, 1:] != PAD].float().mean())
        expected = (1 - ratio) * (1 - 1 / (V - 1))       # a sample can hit the true token
        assert swapped == pytest.approx(expected, abs=0.05)


def test_scheduled_sampling_only_while_training() -> None:
    model = make("gru-seq2seq", ss_schedule="linear", ss_min=0.0)
    src, tgt_in = padded_batch()
    tgt_out = torch.cat([tgt_in[:, 1:], torch.full((3, 1), PAD)], 1)
    batch = Seq2SeqBatch(src, tgt_in, tgt_out, PAD)
    end = TrainContext(step=100, total_steps=100, pad_id=PAD)        # linear: ratio 0 at the end
    loss = zoo.get_spec("gru-seq2seq").loss
    plain = F.cross_entropy(model(src, tgt_in).reshape(-1, V), tgt_out.reshape(-1), ignore_index=PAD).item()
    assert loss(model, batch, end).item() == pytest.approx(plain)              # eval: teacher forced
    model.train()
    start = TrainContext(step=0, total_steps=100, pad_id=PAD)
    assert loss(model, batch, start).item() == pytest.approx(plain)           # ratio 1 at the start
    assert loss(model, batch, end).item() != pytest.approx(plain)             # own samples at the end


class _OneBatch:
    """A training batch source that always gives the same batch."""

    def __init__(self, batch: Seq2SeqBatch) -> None:
        self.batch = batch

    def next_batch(self) -> Seq2SeqBatch:
        return self.batch

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        return None


def test_training_reports_the_teacher_forcing_ratio_when_sampling_is_scheduled() -> None:
    src, tgt_in = padded_batch()
    batch = Seq2SeqBatch(src, tgt_in, torch.cat([tgt_in[:, 1:], torch.full((3, 1), PAD)], 1), PAD)
    cfg = TrainConfig(steps=10, warmup_steps=0)
    hooks = TaskHooks(loss=lambda net, b, step: batch_loss(net, b, PAD, 0.0, step, cfg.steps),
                      tokens=lambda b: b.n_tokens, evaluate=lambda net: {})
    for schedule, expected in (("linear", [1.0, 0.9, 0.8]), ("none", None)):
        model = make("luong-attention", ss_schedule=schedule).train()
        ctx = AlgorithmContext(model=model, cfg=cfg, source=_OneBatch(batch), hooks=hooks,
                               device=torch.device("cpu"))
        algorithm = zoo.get_spec("luong-attention").algorithm(ctx)
        outs = [algorithm.train_step(step) for step in range(3)]
        if expected is None:
            assert all("tf_ratio" not in out.metrics for out in outs)
        else:
            assert [out.metrics["tf_ratio"] for out in outs] == pytest.approx(expected)
        assert all(math.isfinite(out.loss.item()) for out in outs)


# --------------------------------------------------------------------------- reversed source


def test_reverse_padded_reverses_real_tokens_and_keeps_padding_at_the_end() -> None:
    src, _ = padded_batch()
    assert rnn.reverse_padded(src, PAD).tolist() == [
        [EOS, 9, 8, 7, 6, 5], [EOS, 6, 5, 4, PAD, PAD], [EOS, 3, PAD, PAD, PAD, PAD],
    ]


def test_lstm_reads_the_source_reversed() -> None:
    reversing = make("lstm-seq2seq", reverse_source=True)
    plain = make("lstm-seq2seq", reverse_source=False)
    plain.load_state_dict(reversing.state_dict())
    src, tgt_in = padded_batch()
    torch.testing.assert_close(reversing(src, tgt_in), plain(rnn.reverse_padded(src, PAD), tgt_in))
    assert not torch.allclose(reversing(src, tgt_in), plain(src, tgt_in))


# --------------------------------------------------------------------------- coverage


def test_coverage_loss_penalises_attention_piling_on_one_position() -> None:
    mask = torch.ones(1, 3, dtype=torch.bool)
    diagonal = torch.eye(3)[None]                                    # a new position each step
    stuck = torch.tensor([[[1.0, 0, 0], [1.0, 0, 0], [1.0, 0, 0]]])  # always the first one
    assert rnn.coverage_loss(diagonal, mask) == 0.0
    assert rnn.coverage_loss(stuck, mask) == pytest.approx(2 / 3)    # steps 2 and 3 repeat it fully
    assert rnn.coverage_loss(stuck, torch.tensor([[True, True, False]])) == pytest.approx(1 / 2)


def test_luong_coverage_weight_adds_the_penalty_while_training() -> None:
    src, tgt_in = padded_batch()
    tgt_out = torch.cat([tgt_in[:, 1:], torch.full((3, 1), PAD)], 1)
    batch = Seq2SeqBatch(src, tgt_in, tgt_out, PAD)
    ctx = TrainContext(step=0, total_steps=10, pad_id=PAD)
    plain = make("luong-attention").train()
    covered = make("luong-attention", coverage_weight=2.0).train()
    covered.load_state_dict(plain.state_dict())
    _, weights = plain(src, tgt_in, need_weights=True)
    penalty = rnn.coverage_loss(weights, tgt_in != PAD)
    assert penalty > 0
    spec = zoo.get_spec("luong-attention")
    expected = spec.loss(plain, batch, ctx).item() + 2.0 * penalty.item()
    assert spec.loss(covered, batch, ctx).item() == pytest.approx(expected)
    validation = spec.loss(plain.eval(), batch, ctx).item()                 # plain NLL, no penalty
    assert spec.loss(covered.eval(), batch, ctx).item() == pytest.approx(validation)


# --------------------------------------------------------------------------- learning


def _couplet_batch(n: int = 32) -> tuple[Seq2SeqBatch, int]:
    first = COUPLETS[0].read_text(encoding="utf-8").splitlines()
    second = COUPLETS[1].read_text(encoding="utf-8").splitlines()
    pairs = [(a.split(), b.split()) for a, b in zip(first, second) if len(a.split()) <= 9][:n]
    vocab = {c: i + 3 for i, c in enumerate(sorted({c for a, b in pairs for c in a + b}))}
    width = max(len(a) for a, _ in pairs) + 1
    src, tgt_in, tgt_out = (torch.full((n, width), PAD) for _ in range(3))
    for row, (a, b) in enumerate(pairs):
        src[row, : len(a) + 1] = torch.tensor([vocab[c] for c in a] + [EOS])
        tgt_in[row, : len(b) + 1] = torch.tensor([BOS] + [vocab[c] for c in b])
        tgt_out[row, : len(b) + 1] = torch.tensor([vocab[c] for c in b] + [EOS])
    return Seq2SeqBatch(src, tgt_in, tgt_out, PAD), len(vocab) + 3


@pytest.mark.parametrize("name", NAMES)
def test_overfits_32_couplets(name: str) -> None:
    batch, vocab = _couplet_batch()
    settings = dict(emb_dim=32, hidden_size=64, num_layers=1, dropout=0.0, block_size=16)
    model = zoo.build_model(name, zoo.build_config(name, settings, src_vocab_size=vocab,
                                                   tgt_vocab_size=vocab, pad_id=PAD)).train()
    spec = zoo.get_spec(name)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(250):
        loss = spec.loss(model, batch, TrainContext(step=step, total_steps=250, pad_id=PAD))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    assert loss.item() < 0.05
    model.eval()
    src = batch.src[:4]
    lengths = (batch.tgt_out[:4] != PAD).sum(1)
    greedy = DecodeConfig(strategy="greedy", max_tokens=12)
    for row in range(4):
        real = src[row][src[row] != PAD]
        hyp = generate(zoo.make_stepper(model, real[None]), [BOS], eos_id=EOS, config=greedy)[0]
        assert list(hyp.ids) == batch.tgt_out[row, : lengths[row] - 1].tolist()
