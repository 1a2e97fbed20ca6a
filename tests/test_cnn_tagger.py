"""The CNN couplet tagger: shapes, padding, overfitting, the aligned loss, and the CLI round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import TRANSLATION, tiny_couplet_lines

from textgen_core import models
from textgen_core.data import BucketBatcher, Seq2SeqBatch
from textgen_core.decoding.search import DecodeConfig
from textgen_core.decoding.steppers import TaggerStepper
from textgen_core.errors import ConfigError
from textgen_core.generation import Generator
from textgen_core.models.cnn_tagger import CNNTagger, CNNTaggerConfig
from textgen_core.tokenizer import Tokenizer, TokenizerConfig

SPEC = models.get_spec("cnn-tagger")
FAST = ["--set", "train.eval_every=20", "--set", "train.log_every=5",
        "--set", "train.bleu_examples=16", "--set", "train.eval_batches=2"]


def tiny(**overrides) -> CNNTagger:
    torch.manual_seed(0)
    settings = dict(src_vocab_size=30, tgt_vocab_size=25, n_embd=16, n_layer=3, dropout=0.0, block_size=16)
    return CNNTagger(CNNTaggerConfig(**{**settings, **overrides})).eval()


@pytest.mark.parametrize("bilstm", [False, True])
def test_one_output_per_source_position(bilstm):
    model = tiny(bilstm=bilstm)
    for length in (1, 5, 16):
        src = torch.randint(4, 30, (3, length))
        assert model(src).shape == (3, length, 25)              # (B, S, V_tgt)


@pytest.mark.parametrize("bilstm", [False, True])
def test_padding_does_not_change_a_rows_output(bilstm):
    model = tiny(bilstm=bilstm, kernel_size=5)
    short = torch.tensor([[7, 8, 9, 3]])                        # three characters and eos
    alone = model(short)                                        # (1, 4, V)
    batch = torch.tensor([[7, 8, 9, 3, 0, 0, 0, 0, 0],         # right-padded next to a longer row
                          [5, 6, 7, 8, 9, 10, 11, 12, 3]])
    padded = model(batch)                                       # (2, 9, V)
    torch.testing.assert_close(padded[0, :4], alone[0], rtol=1e-5, atol=1e-5)


def test_longer_than_block_size_is_refused():
    with pytest.raises(ConfigError, match="block_size=16"):
        tiny()(torch.ones(1, 17, dtype=torch.long))


@pytest.mark.parametrize(("overrides", "field"), [
    (dict(kernel_size=4), "kernel_size"),
    (dict(bilstm=True, n_embd=15), "n_embd"),
    (dict(dilation_cycle=0), "dilation_cycle"),
    (dict(dropout=1.0), "dropout"),
])
def test_bad_settings_name_the_setting(overrides, field):
    with pytest.raises(ConfigError, match=f"model.{field}"):
        tiny(**overrides)


def test_spec_is_a_same_length_couplet_model_without_attention():
    assert SPEC.kind == "seq2seq" and SPEC.same_length and not SPEC.has_attention
    assert set(SPEC.presets) == {"tiny", "small", "base"}
    with pytest.raises(ConfigError, match="cnn-tagger writes couplets only"):
        SPEC.check_task("translation")
    model = tiny()
    assert isinstance(models.make_stepper(model, torch.tensor([[5, 6, 3]])), TaggerStepper)


def test_unaligned_pairs_are_refused():
    model = tiny()
    batch = Seq2SeqBatch(src=torch.tensor([[5, 6, 7, 3]]), tgt_in=torch.tensor([[2, 8, 9]]),
                         tgt_out=torch.tensor([[8, 9, 3]]))
    ctx = models.TrainContext(step=0, total_steps=1, pad_id=0)
    with pytest.raises(ConfigError, match=r"character-aligned couplets.*3 source and 2 target"):
        SPEC.loss(model, batch, ctx)


def test_overfits_32_couplets_and_writes_them_back(tmp_path: Path):
    first, second = tiny_couplet_lines(32)
    pairs = [("".join(a.split()), "".join(b.split())) for a, b in zip(first, second)]
    tok = Tokenizer.train([s for p in pairs for s in p], TokenizerConfig(kind="char"), tmp_path / "t.model")
    examples = [(tok.encode(a, per_char=True), tok.encode(b, per_char=True)) for a, b in pairs]
    batch = BucketBatcher(examples, batch_size=32, pad_id=tok.pad_id, bos_id=tok.bos_id,
                          eos_id=tok.eos_id, max_len=32, shuffle=False).next_batch()
    torch.manual_seed(0)
    config = models.build_config("cnn-tagger", dict(n_embd=64, n_layer=4, dropout=0.0, block_size=32),
                                 src_vocab_size=tok.vocab_size, tgt_vocab_size=tok.vocab_size,
                                 pad_id=tok.pad_id)
    model = models.build_model("cnn-tagger", config)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    ctx = models.TrainContext(step=0, total_steps=150, pad_id=tok.pad_id)
    for _ in range(150):
        loss = SPEC.loss(model, batch, ctx)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05
    gen = Generator(model, "couplet", tok, tok, torch.device("cpu"))
    free = DecodeConfig(strategy="greedy", couplet_punctuation=False, couplet_repeats=False,
                        couplet_no_reuse=False, tone="off")
    outputs = gen.generate_many([a for a, _ in pairs], free, batch_size=5)
    assert [r.hypotheses[0].text for r in outputs] == [b for _, b in pairs]
    eos_rows = model.eval()(batch.src).argmax(-1)[batch.src == tok.eos_id]   # the eos position
    assert (eos_rows == tok.eos_id).all()


def test_translation_project_is_refused(cli, tmp_path):
    r = cli("init", tmp_path / "t", "--task", "translation", "--data", TRANSLATION, "--model", "cnn-tagger")
    assert r.code == 2 and r.err.count("\n") == 1
    assert "cnn-tagger writes couplets only" in r.err
    assert not (tmp_path / "t").exists()


def test_a_subword_tokenizer_is_refused_at_init(cli, couplet_files, tmp_path):
    r = cli("init", tmp_path / "b", "--task", "couplet", "--data", *couplet_files, "--model", "cnn-tagger",
            "--tokenizer", "bpe")
    assert r.code == 2 and r.err.count("\n") == 1, r
    assert "needs --tokenizer char, not bpe" in r.err
    assert not (tmp_path / "b").exists()


def test_cli_round_trip_on_sample_couplets(cli, couplet_files, tmp_path):
    from textgen_core.generation import Generator
    from textgen_core.project import Project

    project = tmp_path / "tagger"
    r = cli("init", project, "--task", "couplet", "--data", *couplet_files, "--model", "cnn-tagger", *FAST)
    assert r.code == 0, r
    r = cli("train", project, "--steps", "40", "--device", "cpu")
    assert r.code == 0, r
    run = next((project / "runs").iterdir())
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [e["train_loss"] for e in events if e["event"] == "step"]
    assert losses[-1] < losses[0] - 1.0, losses
    evals = [e for e in events if e["event"] == "eval"]                 # validation BLEU via the stepper
    assert len(evals) == 2 and all(0 <= e["bleu"] <= 100 and e["chrf"] > 0 for e in evals)
    samples = [s for e in events if e["event"] == "sample" for s in e["samples"]]
    assert samples and all(len(s["output"]) == len(s["prompt"]) for s in samples)

    r = cli("generate", project, "晚 风 摇 树 树 还 挺", "春风得意", "--greedy", "--json")
    assert r.code == 0, r
    for line, n in zip(r.out.splitlines(), (7, 4)):
        assert len(json.loads(line)["hypotheses"][0]["text"]) == n
    r = cli("generate", project, "春风得意", "--beam", "5", "--n-best", "3", "--json")
    assert r.code == 0, r
    hyps = json.loads(r.out)["hypotheses"]
    assert len({h["text"] for h in hyps}) == 3 and all(len(h["text"]) == 4 for h in hyps)
    assert hyps[0]["score"] >= hyps[1]["score"] >= hyps[2]["score"]

    r = cli("evaluate", project, "--data", *couplet_files, "--json")
    assert r.code == 0, r
    scores = json.loads(r.out)
    assert 0 <= scores["bleu"] <= 100 and scores["chrf"] > 0 and scores["ppl"] > 1

    gen = Generator.from_project(Project.open(project), device="cpu")
    result = gen.generate("春风得意", DecodeConfig(strategy="greedy"), with_attention=True)
    assert result.attention is None and gen.attention(result.prompt_ids, result.hypotheses[0].ids) is None
