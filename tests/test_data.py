"""Batching: padding, masks, bucketing, determinism, resumption and rank sharding."""

from __future__ import annotations

import io
import random
from itertools import islice
from pathlib import Path

import pytest
import torch

from textgen_core.data import BucketBatcher, LMBatch, LMWindows, Seq2SeqBatch, encode_pairs
from textgen_core.errors import CheckpointError, ConfigError, TextGenError
from textgen_core.tokenizer import Tokenizer, TokenizerConfig

DATA = Path("/work/shared/data")
PAD, BOS, EOS = 0, 2, 3


def _pairs(n: int) -> list[tuple[str, str]]:
    with open(DATA / "translation/cmn-eng.tsv", encoding="utf-8") as fh:
        rows = [line.rstrip("\n").split("\t") for line in islice(fh, n)]
    return [(r[0], r[1]) for r in rows]


@pytest.fixture(scope="module")
def real_examples(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[list[int], list[int]]]:
    """Encoded English-Chinese pairs of varied lengths (every 5th of the first 15000 lines)."""
    if not DATA.is_dir():
        pytest.skip("sample corpora not available")
    pairs = _pairs(15000)[::5]
    path = tmp_path_factory.mktemp("tok") / "m.model"
    tok = Tokenizer.train([s for p in pairs for s in p], TokenizerConfig(kind="char"), path)
    return encode_pairs(pairs, tok, tok, max_len=64)


def _tagged_examples(n: int, seed: int = 0) -> list[tuple[list[int], list[int]]]:
    """Example i has source [100 + i, 5, 5, ...] so batches can be traced back to examples."""
    rng = random.Random(seed)
    return [([100 + i] + [5] * rng.randint(0, 20), [7] * rng.randint(1, 20)) for i in range(n)]


def _batcher(examples: list, **kw: object) -> BucketBatcher:
    args: dict = dict(batch_size=8, pad_id=PAD, bos_id=BOS, eos_id=EOS, max_len=32)
    args.update(kw)
    return BucketBatcher(examples, **args)


def _ids(batch: Seq2SeqBatch) -> list[int]:
    return [int(i) - 100 for i in batch.src[:, 0]]


def _same(a: Seq2SeqBatch, b: Seq2SeqBatch) -> bool:
    return all(
        torch.equal(x, y)
        for x, y in zip((a.src, a.tgt_in, a.tgt_out), (b.src, b.tgt_in, b.tgt_out))
    )


# ------------------------------------------------------------------------- batch layout
def test_batch_layout_padding_shift_and_masks() -> None:
    examples = [([11, 12, 13], [21, 22]), ([14], [23, 24, 25, 26])]
    batch = _batcher(examples, batch_size=2, shuffle=False).next_batch()
    # sorted by source length inside the batch: the 1-token source first
    assert batch.src.tolist() == [[14, EOS, PAD, PAD], [11, 12, 13, EOS]]
    assert batch.tgt_in.tolist() == [[BOS, 23, 24, 25, 26], [BOS, 21, 22, PAD, PAD]]
    assert batch.tgt_out.tolist() == [[23, 24, 25, 26, EOS], [21, 22, EOS, PAD, PAD]]
    assert batch.src.dtype == torch.long and batch.tgt_in.dtype == torch.long
    assert batch.src_mask.tolist() == [[True, True, False, False], [True] * 4]
    assert batch.tgt_mask.tolist() == [[True] * 5, [True, True, True, False, False]]
    assert batch.n_tokens == 5 + 3


def test_tgt_in_is_tgt_out_shifted(real_examples: list) -> None:
    batcher = _batcher(real_examples, batch_size=16, max_len=64)
    for _ in range(5):
        batch = batcher.next_batch()
        assert torch.equal(batch.tgt_mask, batch.tgt_out != PAD)
        for row_in, row_out in zip(batch.tgt_in.tolist(), batch.tgt_out.tolist()):
            n = sum(t != PAD for t in row_out)
            assert row_in[0] == BOS and row_out[n - 1] == EOS
            assert row_in[1:n] == row_out[: n - 1]


def test_lengths_are_capped_counting_specials() -> None:
    examples = [(list(range(10, 110)), list(range(10, 60)))]
    batch = _batcher(examples, batch_size=1, max_len=10).next_batch()
    assert batch.src.shape == (1, 10) and batch.tgt_in.shape == (1, 10)
    assert batch.src[0, -1] == EOS and batch.src[0, -2] == 18
    assert batch.tgt_in[0, 0] == BOS and batch.tgt_out[0, -1] == EOS


def test_to_device_keeps_values() -> None:
    batch = _batcher([([11], [21])], batch_size=1).next_batch()
    moved = batch.to("cpu")
    assert _same(batch, moved) and moved.pad_id == batch.pad_id
    lm = LMBatch(torch.ones(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long))
    assert lm.to(torch.device("cpu")).n_tokens == 6


def test_encode_pairs_drops_empty_and_truncates(tmp_path: Path) -> None:
    en_zh = [("Hello there.", "你好。"), ("", "空"), ("Hi.", "   "), ("A " * 100, "长" * 100)]
    corpus = [s for p in en_zh for s in p]
    config = TokenizerConfig(character_coverage=1.0)
    tok = Tokenizer.train(corpus, config, tmp_path / "t.model")
    out = encode_pairs(en_zh, tok, tok, max_len=16)
    assert len(out) == 2
    assert tok.decode(out[0][0]) == "Hello there." and tok.decode(out[0][1]) == "你好。"
    assert len(out[1][0]) == 15 and len(out[1][1]) == 15
    assert not {PAD, BOS, EOS} & {i for s, t in out for i in s + t}
    with pytest.raises(ConfigError, match="max_len"):
        encode_pairs(en_zh, tok, tok, max_len=1)


# ----------------------------------------------------------------------------- bucketing
def test_bucketing_reduces_padding(real_examples: list) -> None:
    batch_size = 32
    batcher = _batcher(real_examples, batch_size=batch_size, max_len=64, seed=1)
    bucketed = real = 0
    for _ in range(len(batcher)):
        batch = batcher.next_batch()
        real += int(batch.src_mask.sum()) + int(batch.tgt_mask.sum())
        bucketed += batch.src.numel() + batch.tgt_in.numel()
    # the same data in random batches of the same size
    order = torch.randperm(len(real_examples), generator=torch.Generator().manual_seed(1))
    random_total = 0
    for start in range(0, len(order), batch_size):
        chunk = [real_examples[i] for i in order[start : start + batch_size].tolist()]
        random_total += len(chunk) * (max(len(s) for s, _ in chunk) + 1)
        random_total += len(chunk) * (max(len(t) for _, t in chunk) + 1)
    pad_bucketed, pad_random = bucketed - real, random_total - real
    assert pad_random > 0.2 * real  # varied lengths: random batching wastes a lot
    assert pad_bucketed < 0.4 * pad_random  # measured: about 0.2


def test_each_epoch_covers_every_example_once_in_a_new_order() -> None:
    examples = _tagged_examples(100)
    batcher = _batcher(examples, batch_size=8)
    assert len(batcher) == 13
    epochs = []
    for _ in range(2):
        seen = [i for _ in range(len(batcher)) for i in _ids(batcher.next_batch())]
        assert sorted(seen) == list(range(100))
        epochs.append(seen)
    assert epochs[0] != epochs[1]
    assert batcher.epoch == 1


def test_same_seed_same_batches_other_seed_other_batches() -> None:
    examples = _tagged_examples(60)
    a, b, c = (_batcher(examples, seed=s) for s in (3, 3, 4))
    run_a = [a.next_batch() for _ in range(20)]
    run_b = [b.next_batch() for _ in range(20)]
    run_c = [c.next_batch() for _ in range(20)]
    assert all(_same(x, y) for x, y in zip(run_a, run_b))
    assert not all(_same(x, y) for x, y in zip(run_a, run_c))


def test_global_rng_is_untouched() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    batcher = _batcher(_tagged_examples(40))
    for _ in range(10):
        batcher.next_batch()
    windows = LMWindows(torch.arange(100), block_size=8, batch_size=4)
    windows.next_batch()
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("k", [0, 5, 7, 13])
def test_resume_equals_uninterrupted(k: int) -> None:
    examples = _tagged_examples(50)  # 7 batches per epoch: k crosses epoch boundaries
    straight = _batcher(examples, seed=9)
    expected = [straight.next_batch() for _ in range(k + 10)]
    first = _batcher(examples, seed=9)
    for _ in range(k):
        first.next_batch()
    state = first.state_dict()
    assert all(type(v) is int for v in state.values())
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    resumed = _batcher(examples, seed=9)
    resumed.load_state_dict(torch.load(buf, weights_only=True))
    assert all(_same(resumed.next_batch(), e) for e in expected[k:])


def test_bad_state_is_a_checkpoint_error() -> None:
    batcher = _batcher(_tagged_examples(20))
    with pytest.raises(CheckpointError, match="cursor"):
        batcher.load_state_dict({"epoch": 1})
    with pytest.raises(CheckpointError, match="epoch"):
        batcher.load_state_dict({"epoch": "x", "cursor": 0})


def test_ranks_see_disjoint_data_and_the_same_number_of_batches() -> None:
    examples = _tagged_examples(103)
    world = 3
    batchers = [_batcher(examples, rank=r, world_size=world, seed=5) for r in range(world)]
    assert {len(b) for b in batchers} == {4}  # 13 batches -> 12 used, 4 per rank
    for _epoch in range(2):
        per_rank = [[i for _ in range(len(b)) for i in _ids(b.next_batch())] for b in batchers]
        union = set().union(*map(set, per_rank))
        assert sum(map(len, per_rank)) == len(union)  # disjoint
        assert len(union) >= 103 - 8 - 7  # at most one full and one partial batch left out


def test_iter_batches_is_one_ordered_pass_and_keeps_position() -> None:
    examples = _tagged_examples(30)
    batcher = _batcher(examples, batch_size=8)
    batcher.next_batch()
    state = batcher.state_dict()
    seen = [i for batch in batcher.iter_batches() for i in _ids(batch)]
    assert seen == list(range(30))
    assert batcher.state_dict() == state
    shards = [
        [i for b in _batcher(examples, rank=r, world_size=2).iter_batches() for i in _ids(b)]
        for r in range(2)
    ]
    assert sorted(shards[0] + shards[1]) == list(range(30)) and shards[0][:8] == list(range(8))


def test_batcher_errors() -> None:
    with pytest.raises(TextGenError, match="no examples"):
        _batcher([])
    with pytest.raises(TextGenError, match="fewer than the 4 training processes"):
        _batcher(_tagged_examples(10), batch_size=8, world_size=4)
    with pytest.raises(ConfigError, match="batch_size"):
        _batcher(_tagged_examples(10), batch_size=0)
    with pytest.raises(ConfigError, match="rank"):
        _batcher(_tagged_examples(10), rank=2, world_size=2)


# ---------------------------------------------------------------------------- LM windows
def test_lm_windows_are_shifted_slices_of_the_stream() -> None:
    ids = torch.arange(1000) * 3
    windows = LMWindows(ids, block_size=16, batch_size=5, seed=1)
    batch = windows.next_batch()
    assert batch.x.shape == batch.y.shape == (5, 16) and batch.x.dtype == torch.long
    assert torch.equal(batch.x[:, 1:], batch.y[:, :-1])
    starts = batch.x[:, 0] // 3
    assert torch.equal(batch.x, ids[starts[:, None] + torch.arange(16)])
    assert batch.n_tokens == 80


def test_lm_windows_reach_both_ends_of_the_stream() -> None:
    windows = LMWindows(torch.arange(10), block_size=8, batch_size=64)
    starts = {int(s) for _ in range(5) for s in windows.next_batch().x[:, 0]}
    assert starts == {0, 1}  # the only starts that fit 9 tokens into 10


def test_lm_windows_resume_through_weights_only_load(tmp_path: Path) -> None:
    ids = torch.randint(0, 50, (500,), generator=torch.Generator().manual_seed(0))
    straight = LMWindows(ids, block_size=8, batch_size=4, seed=2)
    expected = [straight.next_batch() for _ in range(12)]
    first = LMWindows(ids, block_size=8, batch_size=4, seed=2)
    for _ in range(5):
        first.next_batch()
    torch.save({"data_state": first.state_dict()}, tmp_path / "ckpt.pt")
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)["data_state"]
    resumed = LMWindows(ids, block_size=8, batch_size=4, seed=2)
    resumed.load_state_dict(state)
    for e in expected[5:]:
        got = resumed.next_batch()
        assert torch.equal(got.x, e.x) and torch.equal(got.y, e.y)
    with pytest.raises(CheckpointError):
        resumed.load_state_dict({"batches": -1})


def test_lm_windows_ranks_differ_and_resume_from_rank0_state() -> None:
    ids = torch.arange(5000)
    rank0 = LMWindows(ids, block_size=8, batch_size=4, seed=2, rank=0, world_size=2)
    rank1 = LMWindows(ids, block_size=8, batch_size=4, seed=2, rank=1, world_size=2)
    b0, b1 = rank0.next_batch(), rank1.next_batch()
    assert not torch.equal(b0.x, b1.x)
    expected = rank1.next_batch()
    resumed = LMWindows(ids, block_size=8, batch_size=4, seed=2, rank=1, world_size=2)
    resumed.load_state_dict(rank0.state_dict())  # only rank 0's state is saved in checkpoints
    assert torch.equal(resumed.next_batch().x, expected.x)


def test_lm_iter_batches_consecutive_and_limited() -> None:
    ids = torch.arange(100)
    windows = LMWindows(ids, block_size=10, batch_size=3)
    batches = list(windows.iter_batches())
    starts = [int(s) for b in batches for s in b.x[:, 0]]
    assert starts == list(range(0, 90, 10))  # start 90 would need 11 tokens from 10 left
    assert [b.x.shape[0] for b in batches] == [3, 3, 3]
    assert torch.equal(batches[1].y[0], torch.arange(31, 41))
    assert len(list(windows.iter_batches(max_batches=2))) == 2
    shard = LMWindows(ids, block_size=10, batch_size=3, rank=1, world_size=2)
    assert [int(s) for b in shard.iter_batches() for s in b.x[:, 0]] == [30, 40, 50]
    assert windows.state_dict() == {"batches": 0}


def test_lm_stream_too_short_says_so() -> None:
    with pytest.raises(TextGenError, match=r"fewer than block_size \+ 1 = 65.*block_size"):
        LMWindows(torch.arange(40), block_size=64, batch_size=2)
