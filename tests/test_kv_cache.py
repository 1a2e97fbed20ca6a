"""KV cache: the cached Transformer and GPT steppers give the logits of the uncached ones.

Tiny randomly initialised models (fixed seeds; weights spread so that the last logits move
visibly with every token of the prefix) are decoded in lockstep by a cached and an uncached
stepper, with the row bookkeeping of beam search in between (expansion of each input into k rows,
reordering, dropping rows), and whole searches must give the same hypotheses.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from textgen_core import models
from textgen_core.decoding import DecodeConfig, generate
from textgen_core.decoding.search import generate_batch
from textgen_core.decoding.steppers import LMStepper, PromptedLMStepper, Seq2SeqStepper, Stepper
from textgen_core.models.layers import KVCache

PAD, BOS, EOS, SEP = 0, 2, 3, 4
VOCAB = 40
ATOL = 1e-5


def _spread(model: nn.Module, seed: int, std: float) -> nn.Module:
    """Re-draw every matrix N(0, std) so that attention is far from uniform; eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.copy_(torch.randn(param.shape, generator=gen) * std)
    return model.eval()


def _transformer(**overrides: object) -> nn.Module:
    settings = {"n_layer": 2, "n_head": 4, "n_embd": 32, "ffn_dim": 64, "dropout": 0.0,
                "block_size": 32, **overrides}
    config = models.build_config("transformer", settings, src_vocab_size=VOCAB, tgt_vocab_size=VOCAB,
                                 pad_id=PAD)
    return _spread(models.build_model("transformer", config), seed=1, std=0.15)


def _gpt(block_size: int = 32) -> nn.Module:
    settings = {"n_layer": 2, "n_head": 4, "n_embd": 32, "block_size": block_size, "dropout": 0.0}
    config = models.build_config("gpt", settings, src_vocab_size=VOCAB, tgt_vocab_size=VOCAB, pad_id=PAD)
    return _spread(models.build_model("gpt", config), seed=2, std=0.15)


SOURCES = torch.tensor([[5, 6, 7, 8, 9, 3], [10, 11, 3, 0, 0, 0], [12, 13, 14, 3, 0, 0]])  # (3, 6)


def _selection(rows: int, step: int, gen: torch.Generator) -> Tensor:
    """Beam-search-like row bookkeeping: expand each row into 3, reorder, drop, repeat."""
    if step == 0:
        return torch.arange(rows).repeat_interleave(3)                       # 1 -> k rows
    if step % 3 == 2 and rows > 2:
        keep = torch.randperm(rows, generator=gen)[: rows - 2]                # drop rows
        return keep.sort().values
    return torch.randint(0, rows, (rows,), generator=gen)                   # reorder, repeat


def _lockstep(cached: Stepper, uncached: Stepper, prefix: Tensor, steps: int, seed: int,
              pad_every: int = 0) -> float:
    """Run both steppers ``steps`` times from ``prefix`` (N, T), selecting rows between calls;
    asserts equal logits at every step and returns the largest difference seen."""
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    with torch.inference_mode():
        for step in range(steps):
            got, want = cached.logits(prefix), uncached.logits(prefix)     # (N, V)
            assert got.shape == want.shape and got.dtype == torch.float32
            torch.testing.assert_close(got, want, atol=ATOL, rtol=0)
            worst = max(worst, (got - want).abs().max().item())
            index = _selection(prefix.size(0), step, gen)
            cached.select(index)
            uncached.select(index)
            nxt = torch.randint(5, VOCAB, (index.numel(), 1), generator=gen)
            if pad_every and step % pad_every == pad_every - 1:
                nxt[0] = PAD                       # a finished row padded on, as greedy_batch does
            prefix = torch.cat([prefix.index_select(0, index), nxt], dim=1)
    return worst


def _depends_on_whole_prefix(stepper_of, prefix: Tensor, at: int = 0) -> None:
    """Changing token ``at`` of ``prefix`` (the first one the model reads) moves the last logits
    well beyond ATOL, so equal logits do check every cached position."""
    changed = prefix.clone()
    changed[:, at] = (changed[:, at] + 7) % VOCAB
    with torch.inference_mode():
        gap = (stepper_of().logits(prefix) - stepper_of().logits(changed)).abs().max().item()
    assert gap > 1e3 * ATOL


# ----------------------------------------------------------------------------- model level


def test_transformer_decode_cached_in_chunks_equals_decode():
    model = _transformer()
    gen = torch.Generator().manual_seed(3)
    tgt = torch.randint(5, VOCAB, (3, 9), generator=gen)
    tgt[1, 4] = PAD                                                         # a padded key
    with torch.inference_mode():
        memory = model.encode(SOURCES)
        want = model.decode(memory, SOURCES, tgt).logits                    # (3, 9, V)
        cache = model.start_decoding(memory, SOURCES)
        got = [model.decode_cached(tgt[:, a:b], cache) for a, b in ((0, 3), (3, 4), (4, 9))]
    torch.testing.assert_close(torch.cat(got, dim=1), want, atol=ATOL, rtol=0)
    assert cache.length == 9 and cache.self_kv[0].length == 9


def test_gpt_forward_with_cache_in_chunks_equals_forward():
    model = _gpt()
    idx = torch.randint(5, VOCAB, (2, 11), generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        want = model(idx)                                                    # (2, 11, V)
        cache = model.new_cache(2)
        got = [model(idx[:, a:b], cache=cache) for a, b in ((0, 1), (1, 6), (6, 7), (7, 11))]
    torch.testing.assert_close(torch.cat(got, dim=1), want, atol=ATOL, rtol=0)
    assert cache.length == 11


def test_kv_cache_grows_in_place_and_index_selects_rows():
    cache = KVCache.empty(2, 1, 3)
    for t in range(20):
        k = torch.full((2, 1, 1, 3), float(t))
        keys, _ = cache.append(k, -k)
        assert keys.shape == (2, 1, t + 1, 3)
    assert cache.k.size(2) >= 20 and cache.k.size(2) < 40          # doubled, not per step
    keys[1] += 100.0                                                         # mark row 1
    picked = cache.index_select(torch.tensor([1, 1, 0]))
    assert picked.length == 20 and picked.keys_values()[0][:2, 0, 0, 0].tolist() == [100.0, 100.0]
    assert picked.keys_values()[1][2, 0, :, 0].tolist() == [-float(t) for t in range(20)]


def test_cross_attention_memory_is_projected_once_per_source():
    model = _transformer()
    calls = []
    for layer in model.decoder_layers:
        layer.cross_attn.kv_proj.register_forward_hook(lambda *args: calls.append(1))
    stepper = Seq2SeqStepper(model, SOURCES)
    assert len(calls) == len(model.decoder_layers)
    prefix = torch.full((3, 1), BOS)
    with torch.inference_mode():
        for _ in range(4):
            stepper.logits(prefix)
            prefix = torch.cat([prefix, torch.full((3, 1), 7)], dim=1)
    assert len(calls) == len(model.decoder_layers)


# ----------------------------------------------------------------------------- steppers


def test_registered_models_decode_with_a_cache_by_default():
    assert models.make_stepper(_transformer(), SOURCES).cached
    assert models.make_stepper(_gpt(), None).cached
    assert models.make_stepper(_gpt(), torch.tensor([[5, 6, SEP]])).cached
    assert not Seq2SeqStepper(_transformer(), SOURCES, cache=False).cached


def test_transformer_cached_steps_equal_uncached_with_padding_and_selects():
    model = _transformer()
    prefix = torch.full((3, 1), BOS)
    _depends_on_whole_prefix(lambda: Seq2SeqStepper(model, SOURCES),
                             torch.tensor([[BOS, 5, 6], [BOS, 7, 8], [BOS, 9, 9]]))
    worst = _lockstep(Seq2SeqStepper(model, SOURCES), Seq2SeqStepper(model, SOURCES, cache=False),
                      prefix, steps=14, seed=5, pad_every=4)
    assert worst <= ATOL


@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
def test_transformer_post_norm_and_positions_cached_equal_uncached(positional: str):
    model = _transformer(pre_norm=False, positional=positional)
    prefix = torch.full((3, 1), BOS)
    _lockstep(Seq2SeqStepper(model, SOURCES), Seq2SeqStepper(model, SOURCES, cache=False),
              prefix, steps=8, seed=6)


def test_gpt_continuation_cached_steps_equal_uncached():
    model = _gpt(block_size=32)
    prompt = torch.randint(5, VOCAB, (1, 6), generator=torch.Generator().manual_seed(7))
    _depends_on_whole_prefix(lambda: LMStepper(model), prompt)
    _lockstep(LMStepper(model), LMStepper(model, cache=False), prompt, steps=20, seed=8)


def test_gpt_prefix_lm_cached_steps_equal_uncached():
    model = _gpt(block_size=32)
    prompt = torch.tensor([[11, 12, 13, SEP], [14, 15, 16, SEP], [17, 17, 18, SEP]])
    prefix = torch.full((3, 1), BOS)                                         # stands for the prompt
    _depends_on_whole_prefix(lambda: PromptedLMStepper(model, prompt),
                             torch.tensor([[BOS, 5, 6], [BOS, 7, 8], [BOS, 9, 9]]), at=1)
    _lockstep(PromptedLMStepper(model, prompt), PromptedLMStepper(model, prompt, cache=False),
              prefix, steps=14, seed=9)


def test_gpt_past_block_size_re_prefills_the_window():
    model = _gpt(block_size=8)
    prompt = torch.randint(5, VOCAB, (1, 3), generator=torch.Generator().manual_seed(10))
    cached = LMStepper(model)
    _lockstep(cached, LMStepper(model, cache=False), prompt, steps=16, seed=11)  # up to 18 > 8
    assert cached.state.length == 8 and cached.start > 0


def test_a_prefix_that_is_no_extension_re_prefills():
    model = _transformer()
    cached, uncached = Seq2SeqStepper(model, SOURCES), Seq2SeqStepper(model, SOURCES, cache=False)
    first = torch.tensor([[BOS, 5, 6, 7], [BOS, 8, 9, 10], [BOS, 11, 12, 13]])
    other = torch.tensor([[BOS, 5, 9], [BOS, 8, 8], [BOS, 6, 6]])           # a fresh search
    with torch.inference_mode():
        for prefix in (first[:, :2], first, first, other, first[:, :1], first):
            torch.testing.assert_close(cached.logits(prefix), uncached.logits(prefix), atol=ATOL, rtol=0)
        with pytest.raises(ValueError, match="select"):
            cached.logits(first[:2])


# ----------------------------------------------------------------------------- searches


def _hyps(stepper: Stepper, config: DecodeConfig, prefix: tuple[int, ...] = (BOS,)):
    hyps = generate(stepper, list(prefix), eos_id=EOS, config=config, banned_ids=(PAD, BOS))
    return [(h.ids, round(h.score, 4), h.finished) for h in hyps]


SEARCHES = [DecodeConfig(strategy="greedy", max_tokens=12),
            DecodeConfig(strategy="beam", beam_size=4, n_best=4, max_tokens=12)]


@pytest.mark.parametrize("config", SEARCHES, ids=["greedy", "beam4"])
def test_searches_find_the_same_hypotheses_cached_and_uncached(config: DecodeConfig):
    seq2seq, gpt = _transformer(), _gpt(block_size=16)
    src, prompt = SOURCES[:1], torch.tensor([[11, 12, 13, SEP]])
    story = (5, 6, 7, 8, 9, 10)                                               # passes block 16
    pairs = [
        (Seq2SeqStepper(seq2seq, src), Seq2SeqStepper(seq2seq, src, cache=False), (BOS,)),
        (LMStepper(gpt), LMStepper(gpt, cache=False), story),
        (PromptedLMStepper(gpt, prompt), PromptedLMStepper(gpt, prompt, cache=False), (BOS,)),
    ]
    for cached, uncached, prefix in pairs:
        got = _hyps(cached, config, prefix)
        assert got == _hyps(uncached, config, prefix)
        assert len(got[0][0]) > 1


@pytest.mark.parametrize("config", SEARCHES, ids=["greedy", "beam4"])
def test_batched_search_over_several_sources_is_the_same_cached(config: DecodeConfig):
    model = _transformer()

    def run(cache: bool) -> list:
        out = generate_batch(Seq2SeqStepper(model, SOURCES, cache=cache), [[BOS]] * 3, eos_id=EOS,
                             config=config, banned_ids=(PAD, BOS))
        return [[(h.ids, round(h.score, 4)) for h in hyps] for hyps in out]

    assert run(True) == run(False)
