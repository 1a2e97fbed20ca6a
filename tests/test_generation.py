"""Writing with trained models through the library API: form of outputs and attention maps."""

from __future__ import annotations

import numpy as np
from conftest import NOVEL

from textgen_core.decoding.search import DecodeConfig
from textgen_core.generation import Generator
from textgen_core.project import Project
from textgen_core.training.run import train_project

QUICK = ["train.eval_every=10", "train.bleu_examples=4", "train.eval_batches=1"]


def test_couplet_output_has_input_length_for_every_strategy(couplet_generator):
    for config in (DecodeConfig(strategy="greedy"), DecodeConfig(strategy="beam", n_best=3),
                   DecodeConfig(strategy="sample", top_k=5, seed=3)):
        result = couplet_generator.generate("海 阔 凭 鱼 跃", config)
        assert result.prompt == "海阔凭鱼跃"
        assert all(len(h.text) == 5 for h in result.hypotheses)


def test_cross_attention_of_the_chosen_output(couplet_generator):
    result = couplet_generator.generate("晚风摇树树还挺", DecodeConfig(strategy="beam"),
                                        with_attention=True)
    att = result.attention
    layers = couplet_generator.model.config.n_layer
    heads = couplet_generator.model.config.n_head
    assert att.kind == "cross"
    assert att.weights.shape == (layers, heads, 7, 8)            # 7 outputs x (7 inputs + </s>)
    np.testing.assert_allclose(att.weights.sum(-1), 1.0, atol=1e-5)
    assert att.key_tokens == [*"晚风摇树树还挺", "</s>"]
    assert "".join(att.query_tokens) == result.hypotheses[0].text


def test_language_model_self_attention_and_streaming(tmp_path):
    project = Project.create(tmp_path / "novel", "continuation", [NOVEL], overrides=QUICK)
    train_project(project, steps=5, device="cpu")
    gen = Generator.from_project(project, device="cpu")
    streamed: list[int] = []

    def on_token(token: int) -> bool:
        streamed.append(token)
        return len(streamed) < 8                  # the user presses Stop after 8 tokens

    config = DecodeConfig(strategy="sample", max_tokens=30, seed=1)
    result = gen.generate("却说", config, with_attention=True, on_token=on_token)
    hyp = result.hypotheses[0]
    assert list(hyp.ids) == streamed and len(streamed) == 8 and not hyp.finished
    t = len(result.prompt_ids) + 8
    assert result.attention.kind == "self" and result.attention.weights.shape[-2:] == (t, t)
    upper = np.triu(result.attention.weights[0, 0], k=1)
    assert np.all(upper == 0)                       # causal: no attention to later tokens


def test_separate_source_and_target_vocabularies(tmp_path):
    from conftest import TRANSLATION

    data = tmp_path / "pairs.tsv"
    data.write_text("\n".join(TRANSLATION.read_text(encoding="utf-8").splitlines()[:300]),
                    encoding="utf-8")
    project = Project.create(tmp_path / "p", "translation", [data],
                             overrides=["tokenizer.shared=false", "tokenizer.vocab_size=800",
                                        *QUICK])
    src, tgt = project.tokenizers()
    assert src is not tgt and project.tokenizer_path("tgt").is_file()
    train_project(project, steps=3, device="cpu")
    gen = Generator.from_project(project, device="cpu")
    assert gen.src_tok.vocab_size == src.vocab_size and gen.tgt_tok.vocab_size == tgt.vocab_size
    result = gen.generate("I like tea.", DecodeConfig(strategy="greedy", max_tokens=8))
    assert len(result.hypotheses[0].ids) <= 8


def test_couplet_punctuation_follows_the_first_line(couplet_generator):
    first = "晚风摇树，树还挺"
    for config in (DecodeConfig(strategy="greedy"), DecodeConfig(strategy="beam", n_best=2),
                   DecodeConfig(strategy="sample", seed=5)):
        for hyp in couplet_generator.generate(first, config).hypotheses:
            assert len(hyp.text) == len(first)
            assert hyp.text[4] == "，"
            assert "，" not in hyp.text[:4] + hyp.text[5:]


def test_couplet_punctuation_processor():
    import torch

    from textgen_core.decoding.constraints import CoupletPunctuation, punctuation_ids

    assert punctuation_ids(["<pad>", "春", "，", "。", "▁", "a!"]) == [2, 3]
    rule = CoupletPunctuation([10, 2, 11], punctuation=[2, 3])
    scores = torch.zeros(1, 12)
    at0 = rule(torch.tensor([[1]]), scores)                 # position 0: no punctuation allowed
    assert at0[0, 2] == float("-inf") and at0[0, 3] == float("-inf") and at0[0, 10] == 0
    at1 = rule(torch.tensor([[1, 10]]), scores)             # position 1: exactly the source's mark
    assert at1[0, 2] == 0 and torch.isinf(at1[0, [0, 3, 10, 11]]).all()
    assert torch.equal(scores, torch.zeros(1, 12))          # input untouched


def test_couplet_repetition_processor():
    import torch

    from textgen_core.decoding.constraints import CoupletRepetition

    rule = CoupletRepetition([10, 11, 11, 2, 12], punctuation=[2])     # 风 声 声 ， 雨
    scores = torch.zeros(2, 16)
    at0 = rule(torch.tensor([[1], [1]]), scores)
    assert torch.isinf(at0[:, [10, 11, 12]]).all() and (at0[:, [2, 13]] == 0).all()
    at1 = rule(torch.tensor([[1, 13], [1, 14]]), scores)               # 13/14 used: banned now
    assert at1[0, 13] == float("-inf") and at1[0, 14] == 0 and at1[1, 14] == float("-inf")
    at2 = rule(torch.tensor([[1, 13, 14], [1, 14, 15]]), scores)      # the first line repeats here
    assert at2[0, 14] == 0 and at2[1, 15] == 0                         # so each row repeats its own
    assert torch.isinf(at2[0, [13, 15]]).all() and torch.isinf(at2[1, [13, 14]]).all()
    at4 = rule(torch.tensor([[1, 13, 14, 14, 2]]), scores[:1])         # after punctuation
    assert at4[0, 2] == 0 and torch.isinf(at4[0, [13, 14]]).all()     # marks may recur, chars not


def test_couplet_second_line_keeps_the_repetition_rules(couplet_generator):
    first = "风声雨声读书声"
    for config in (DecodeConfig(strategy="greedy"), DecodeConfig(strategy="beam", n_best=3),
                   DecodeConfig(strategy="sample", seed=2)):
        for hyp in couplet_generator.generate(first, config).hypotheses:
            second = hyp.text
            assert len(second) == 7 and not set(second) & set(first)
            assert second[1] == second[3] == second[6]                 # 声 … 声 … 声 mirrored
            assert len(set(second)) == 5                               # no other repeats
