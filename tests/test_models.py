"""Model zoo: registry, Transformer encoder-decoder and GPT, on tiny dimensions with fixed seeds."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

import textgen_core.models as zoo
from textgen_core.errors import ConfigError
from textgen_core.models import GPT, GPTConfig, Transformer, TransformerConfig
from textgen_core.models.layers import MultiHeadAttention, attention_mask

PAD, BOS, EOS = 0, 1, 2
V = 13  # ids 3..12 are "real" tokens
SIZES = dict(src_vocab_size=V, tgt_vocab_size=V, pad_id=PAD)  # what a tokenizer injects
TINY_T = dict(n_layer=2, n_head=4, n_embd=32, ffn_dim=64, dropout=0.1, block_size=16)


@pytest.fixture(autouse=True)
def _seed_and_one_thread() -> Iterator[None]:
    # Tiny models gain nothing from threads, and on a busy shared machine two OpenMP threads
    # can run ten times slower than one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def make_transformer(**overrides) -> Transformer:
    return Transformer(TransformerConfig(**SIZES, **{**TINY_T, **overrides})).eval()


def make_gpt(**overrides) -> GPT:
    settings = dict(vocab_size=V, n_layer=2, n_head=4, n_embd=32, block_size=16, dropout=0.1)
    return GPT(GPTConfig(**{**settings, **overrides})).eval()


def padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """src (3, 6) and tgt_in (3, 5), rows of different lengths padded with PAD."""
    src = torch.tensor([[5, 6, 7, 8, 9, 10], [4, 5, 6, PAD, PAD, PAD], [3, 11, PAD, PAD, PAD, PAD]])
    tgt_in = torch.tensor([[BOS, 10, 9, 8, 7], [BOS, 6, 5, PAD, PAD], [BOS, 11, PAD, PAD, PAD]])
    return src, tgt_in


TRANSFORMER_VARIANTS = [
    {},
    {"pre_norm": False},
    {"positional": "learned", "tie_embeddings": False},
    {"share_src_tgt_embeddings": True, "n_decoder_layer": 1},
]


# --------------------------------------------------------------------------- shapes


def test_transformer_shapes() -> None:
    model = make_transformer(n_decoder_layer=3)
    src, tgt_in = padded_batch()
    assert model(src, tgt_in).shape == (3, 5, V)
    memory = model.encode(src)
    assert memory.shape == (3, 6, 32)
    out = model.decode(memory, src, tgt_in, need_weights=True)
    assert out.logits.shape == (3, 5, V)
    assert out.self_attn.shape == (3, 3, 4, 5, 5)  # (L_dec, B, H, T, T)
    assert out.cross_attn.shape == (3, 3, 4, 5, 6)  # (L_dec, B, H, T, S)
    plain = model.decode(memory, src, tgt_in)
    assert plain.self_attn is None and plain.cross_attn is None


def test_gpt_shapes() -> None:
    model = make_gpt()
    idx = torch.randint(3, V, (2, 7))
    assert model(idx).shape == (2, 7, V)
    logits, attn = model(idx, need_weights=True)
    assert logits.shape == (2, 7, V)
    assert attn.shape == (2, 2, 4, 7, 7)
    assert model.block_size == 16 and zoo.spec_of(model).kind == "lm"


# --------------------------------------------------------------------------- attention paths


@pytest.mark.parametrize("overrides", TRANSFORMER_VARIANTS)
def test_transformer_fast_and_explicit_paths_agree(overrides: dict) -> None:
    model = make_transformer(**overrides)
    src, tgt_in = padded_batch()
    with torch.no_grad():
        memory = model.encode(src)
        fast = model.decode(memory, src, tgt_in).logits
        explicit = model.decode(memory, src, tgt_in, need_weights=True).logits
    torch.testing.assert_close(fast, explicit, atol=1e-5, rtol=1e-5)


def test_gpt_fast_and_explicit_paths_agree() -> None:
    model = make_gpt()
    idx = torch.randint(3, V, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(model(idx), model(idx, need_weights=True)[0], atol=1e-5, rtol=1e-5)


def test_attention_module_paths_agree_with_padding_and_causal() -> None:
    attn = MultiHeadAttention(16, 2).eval()
    x, mem = torch.randn(2, 5, 16), torch.randn(2, 7, 16)
    pad = torch.tensor([[False] * 7, [False] * 3 + [True] * 4])
    for memory, mask in [
        (mem, attention_mask(5, 7, key_padding_mask=pad)),
        (None, attention_mask(5, 5, key_padding_mask=pad[:, :5], causal=True)),
        (None, None),
    ]:
        fast, none = attn(x, memory, mask=mask, causal=mask is None)
        explicit, weights = attn(x, memory, mask=mask, causal=mask is None, need_weights=True)
        assert none is None and weights is not None
        torch.testing.assert_close(fast, explicit, atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- causality, padding


@pytest.mark.parametrize("need_weights", [False, True])
def test_transformer_decoder_is_causal(need_weights: bool) -> None:
    model = make_transformer()
    src, tgt_in = padded_batch()
    changed = tgt_in.clone()
    changed[0, 3] = 3  # was 8
    with torch.no_grad():
        memory = model.encode(src)
        before = model.decode(memory, src, tgt_in, need_weights).logits
        after = model.decode(memory, src, changed, need_weights).logits
    torch.testing.assert_close(before[0, :3], after[0, :3], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(before[0, 3:], after[0, 3:], atol=1e-4)


@pytest.mark.parametrize("need_weights", [False, True])
def test_gpt_is_causal(need_weights: bool) -> None:
    model = make_gpt()
    idx = torch.randint(3, V, (1, 8))
    changed = idx.clone()
    changed[0, 5] = 3 if idx[0, 5] != 3 else 4
    with torch.no_grad():
        before = model(idx, need_weights=need_weights)
        after = model(changed, need_weights=need_weights)
    before, after = (before[0], after[0]) if need_weights else (before, after)
    torch.testing.assert_close(before[0, :5], after[0, :5], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(before[0, 5:], after[0, 5:], atol=1e-4)


@pytest.mark.parametrize("overrides", TRANSFORMER_VARIANTS)
def test_padding_invariance(overrides: dict) -> None:
    model = make_transformer(**overrides)
    src, tgt_in = padded_batch()
    more_src = torch.cat([src, torch.full((3, 4), PAD)], dim=1)  # 4 more pads on the source
    more_tgt = torch.cat([tgt_in, torch.full((3, 2), PAD)], dim=1)  # and 2 on the target
    with torch.no_grad():
        base = model(src, tgt_in)
        padded = model(more_src, more_tgt)
    torch.testing.assert_close(padded[:, :5], base, atol=1e-5, rtol=1e-5)
    # Each row on its own (no padding at all) gives the same logits at its real positions.
    for row, (s_len, t_len) in enumerate([(6, 5), (3, 3), (2, 2)]):
        with torch.no_grad():
            alone = model(src[row : row + 1, :s_len], tgt_in[row : row + 1, :t_len])
        torch.testing.assert_close(alone[0], base[row, :t_len], atol=1e-5, rtol=1e-5)


def test_all_padding_source_row_stays_finite() -> None:
    model = make_transformer()
    src = torch.tensor([[5, 6, 7], [PAD, PAD, PAD]])
    tgt_in = torch.tensor([[BOS, 5, 6], [BOS, 4, PAD]])
    with torch.no_grad():
        assert torch.isfinite(model(src, tgt_in)).all()
        out = model.decode(model.encode(src), src, tgt_in, need_weights=True)
    assert torch.isfinite(out.logits).all()


def test_attention_weights_are_distributions_that_skip_padding() -> None:
    model = make_transformer()
    src, tgt_in = padded_batch()
    with torch.no_grad():
        out = model.decode(model.encode(src), src, tgt_in, need_weights=True)
    ones = torch.ones(2, 3, 4, 5)
    torch.testing.assert_close(out.self_attn.sum(-1), ones, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.cross_attn.sum(-1), ones, atol=1e-5, rtol=0)
    src_pad = (src == PAD)[None, :, None, None, :].expand_as(out.cross_attn)
    assert (out.cross_attn[src_pad] == 0).all()
    assert (out.cross_attn[~src_pad] > 0).all()
    # self-attention: nothing on future keys, nothing on padded keys (from any query: even a
    # padding query still has BOS to look at)
    future = torch.ones(5, 5, dtype=torch.bool).triu(1)
    assert (out.self_attn[..., future] == 0).all()
    for row, t_len in enumerate([5, 3, 2]):
        assert (out.self_attn[:, row, :, :, t_len:] == 0).all()
    _, gpt_attn = make_gpt()(torch.randint(3, V, (2, 6)), need_weights=True)
    torch.testing.assert_close(gpt_attn.sum(-1), torch.ones(2, 2, 4, 6), atol=1e-5, rtol=0)
    assert (gpt_attn[..., torch.ones(6, 6, dtype=torch.bool).triu(1)] == 0).all()


def test_inputs_longer_than_block_size_raise_config_error() -> None:
    transformer, gpt = make_transformer(), make_gpt()
    too_long = torch.full((1, 17), 5)
    with pytest.raises(ConfigError, match=r"17 tokens exceeds model\.block_size=16"):
        transformer.encode(too_long)
    with pytest.raises(ConfigError, match=r"model\.block_size=16"):
        transformer(torch.full((1, 3), 5), too_long)
    with pytest.raises(ConfigError, match=r"input of 17 tokens exceeds model\.block_size=16"):
        gpt(too_long)


# --------------------------------------------------------------------------- configs


BAD_CONFIGS = [
    (TransformerConfig, {"n_embd": 30, "n_head": 4}, "n_embd"),
    (TransformerConfig, {"dropout": 1.0}, "dropout"),
    (TransformerConfig, {"dropout": -0.1}, "dropout"),
    (TransformerConfig, {"positional": "rotary"}, "positional"),
    (TransformerConfig, {"n_layer": 0}, "n_layer"),
    (TransformerConfig, {"n_decoder_layer": 0}, "n_decoder_layer"),
    (TransformerConfig, {"ffn_dim": -1}, "ffn_dim"),
    (TransformerConfig, {"block_size": 0}, "block_size"),
    (TransformerConfig, {"src_vocab_size": 0}, "src_vocab_size"),
    (TransformerConfig, {"pad_id": V}, "pad_id"),
    (TransformerConfig, {"pre_norm": "yes"}, "pre_norm"),
    (TransformerConfig, {"share_src_tgt_embeddings": True, "tgt_vocab_size": 9}, "share_src"),
    (GPTConfig, {"n_embd": 30, "n_head": 4}, "n_embd"),
    (GPTConfig, {"dropout": 1.5}, "dropout"),
    (GPTConfig, {"vocab_size": 0}, "vocab_size"),
    (GPTConfig, {"block_size": 0}, "block_size"),
    (GPTConfig, {"n_head": 0}, "n_head"),
]


@pytest.mark.parametrize(("cls", "overrides", "field"), BAD_CONFIGS)
def test_config_validation_names_the_field(cls: type, overrides: dict, field: str) -> None:
    sizes = SIZES if cls is TransformerConfig else {"vocab_size": V}
    with pytest.raises(ConfigError, match=rf"model\.{field}"):
        cls(**{**sizes, **overrides})


# --------------------------------------------------------------------------- registry


def test_registry_lists_and_defaults() -> None:
    names = [spec.name for spec in zoo.list_specs()]
    assert names == sorted(names) and {"gpt", "transformer"} <= set(names)
    assert zoo.get_spec("gpt").kind == "lm" and zoo.get_spec("transformer").kind == "seq2seq"
    assert zoo.default_model("couplet") == "transformer"
    assert zoo.default_model("translation") == "transformer"
    assert zoo.default_model("continuation") == "gpt"
    with pytest.raises(ConfigError, match="unknown task 'poetry'"):
        zoo.default_model("poetry")
    with pytest.raises(ValueError, match="already registered"):
        zoo.register(zoo.get_spec("gpt"))
    with pytest.raises(ValueError, match="kind"):
        zoo.ModelSpec("odd", "gan", GPTConfig, GPT, ("continuation",), "x", {})
    for task in ("continuation", "couplet", "translation"):
        zoo.get_spec("gpt").check_task(task)                 # couplets and translation as a prefix LM
    story_only = dataclasses.replace(zoo.get_spec("gpt"), tasks=("continuation",))
    with pytest.raises(ConfigError, match="gpt writes continuations only, not couplets"):
        story_only.check_task("couplet")


def test_unknown_model() -> None:
    with pytest.raises(ConfigError) as info:
        zoo.get_spec("x")
    names = ", ".join(spec.name for spec in zoo.list_specs())
    assert str(info.value) == f"unknown model 'x'; available: {names}"
    with pytest.raises(ConfigError, match="unknown model 'rnn'"):
        zoo.build_config("rnn", {}, **SIZES)


def test_unknown_settings_are_named_with_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        zoo.build_config("gpt", {"n_embed": 64, "layers": 2}, **SIZES)
    message = str(info.value)
    assert "layers, n_embed" in message and "'gpt'" in message
    assert "valid: bias, block_size, dropout, n_embd, n_head, n_layer" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"n_layer": "abc"}, "n_layer"),
        ({"n_layer": 2.5}, "n_layer"),
        ({"n_layer": True}, "n_layer"),
        ({"dropout": "lots"}, "dropout"),
        ({"bias": "maybe"}, "bias"),
        ({"positional": 3}, "positional"),
        ({"ffn_dim": "x"}, "ffn_dim"),
    ],
)
def test_bad_setting_types(settings: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=rf"model\.{field}\b"):
        zoo.build_config("transformer", settings, **SIZES)


def test_settings_are_coerced() -> None:
    settings = dict(n_layer="3", n_embd=64.0, dropout=0, pre_norm="false", ffn_dim="none")
    cfg = zoo.build_config("transformer", settings, src_vocab_size=V, tgt_vocab_size=V + 2, pad_id=PAD)
    got = (cfg.n_layer, cfg.n_embd, cfg.dropout, cfg.pre_norm, cfg.ffn_dim, cfg.ffn_hidden)
    assert got == (3, 64, 0.0, False, None, 256)
    assert isinstance(cfg.n_embd, int) and isinstance(cfg.dropout, float)
    assert (cfg.src_vocab_size, cfg.tgt_vocab_size, cfg.decoder_layers) == (V, V + 2, 3)
    gpt = zoo.build_config("gpt", {}, src_vocab_size=99, tgt_vocab_size=V, pad_id=PAD)
    assert gpt == GPTConfig(vocab_size=V)


def test_injected_fields_must_match_the_tokenizer() -> None:
    with pytest.raises(ConfigError, match=r"model\.vocab_size=50 does not match"):
        zoo.build_config("gpt", {"vocab_size": 50}, **SIZES)


@pytest.mark.parametrize(
    ("name", "settings"),
    [
        ("transformer", {"n_decoder_layer": 1, "positional": "learned", "dropout": 0.25}),
        ("transformer", {"ffn_dim": 48, "tie_embeddings": False, "pre_norm": False}),
        ("gpt", {"n_layer": 3, "bias": False, "dropout": 0.2}),
    ],
)
def test_config_to_dict_round_trips(name: str, settings: dict) -> None:
    cfg = zoo.build_config(name, settings, **SIZES)
    data = json.loads(json.dumps(zoo.config_to_dict(cfg)))  # plain JSON values, no None
    assert None not in data.values()
    assert zoo.build_config(name, data, **SIZES) == cfg
    assert zoo.config_from_dict(name, data) == cfg
    with pytest.raises(ConfigError, match="missing"):
        zoo.config_from_dict("gpt", {"n_layer": 2})


@pytest.mark.parametrize("name", ["transformer", "gpt"])
def test_presets_build(name: str) -> None:
    spec = zoo.get_spec(name)
    assert set(spec.presets) == {"tiny", "small", "base"}
    counts = []
    for preset in ("tiny", "small", "base"):
        cfg = zoo.build_config(
            name,
            zoo.preset_settings(name, preset),
            src_vocab_size=100,
            tgt_vocab_size=100,
            pad_id=PAD,
        )
        model = zoo.build_model(name, cfg)
        assert isinstance(model, spec.model_cls) and zoo.spec_of(model) is spec
        counts.append(model.num_parameters())
        assert spec.count_parameters(cfg) == counts[-1]            # built on the meta device
    assert counts[0] < 200_000 < 1_000_000 < counts[1] < 10_000_000 < counts[2]
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        zoo.preset_settings(name, "huge")
    with pytest.raises(ConfigError, match="GPTConfig"):
        zoo.build_model("gpt", TransformerConfig(src_vocab_size=V, tgt_vocab_size=V))


# --------------------------------------------------------------------------- weights


def test_tied_embeddings_share_storage_and_are_counted_once() -> None:
    tied = make_transformer()
    assert tied.lm_head.weight is tied.tgt_tok_emb.weight
    assert tied.lm_head.weight.data_ptr() == tied.tgt_tok_emb.weight.data_ptr()
    assert tied.src_tok_emb.weight is not tied.tgt_tok_emb.weight
    untied = make_transformer(tie_embeddings=False)
    assert untied.lm_head.weight.data_ptr() != untied.tgt_tok_emb.weight.data_ptr()
    assert untied.num_parameters() - tied.num_parameters() == V * 32
    shared = make_transformer(share_src_tgt_embeddings=True)
    assert shared.src_tok_emb.weight.data_ptr() == shared.lm_head.weight.data_ptr()
    assert tied.num_parameters() - shared.num_parameters() == V * 32
    gpt = make_gpt()
    assert gpt.transformer.wte.weight.data_ptr() == gpt.lm_head.weight.data_ptr()
    assert gpt.num_parameters() == sum(p.numel() for p in set(gpt.parameters()))


def test_gpt_init_scales_residual_projections() -> None:
    model = make_gpt(n_layer=8, n_embd=128, n_head=4)
    proj = torch.cat([b.attn.out_proj.weight.flatten() for b in model.transformer.h])
    fc1 = torch.cat([b.mlp.fc1.weight.flatten() for b in model.transformer.h])
    assert proj.std().item() == pytest.approx(0.02 / math.sqrt(16), rel=0.1)
    assert fc1.std().item() == pytest.approx(0.02, rel=0.1)


def test_state_dict_has_no_sinusoid_table() -> None:
    keys = make_transformer().state_dict().keys()
    assert not any(key.endswith(".pe") for key in keys)
    assert any(key.endswith("wpe.weight") for key in make_gpt().state_dict())


# --------------------------------------------------------------------------- learning


def test_transformer_learns_to_reverse() -> None:
    model = make_transformer(n_embd=64, ffn_dim=128, dropout=0.0).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(100):
        src = torch.randint(3, V, (32, 6), generator=gen)
        tgt = src.flip(1)
        tgt_in = torch.cat([torch.full((32, 1), BOS), tgt], dim=1)
        tgt_out = torch.cat([tgt, torch.full((32, 1), EOS)], dim=1)
        loss = F.cross_entropy(model(src, tgt_in).reshape(-1, V), tgt_out.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) / 10 < 0.25 * sum(losses[:10]) / 10
    assert sum(losses[-10:]) / 10 < 0.6


def test_gpt_learns_a_repeating_pattern() -> None:
    model = make_gpt(n_embd=64, dropout=0.0).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    pattern = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6]).repeat(4)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(60):
        starts = torch.randint(0, 8, (16,), generator=gen)
        batch = torch.stack([pattern[s : s + 17] for s in starts.tolist()])  # (16, 17)
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, V), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 2.0
    assert sum(losses[-5:]) / 5 < 0.3
