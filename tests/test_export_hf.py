"""``textgen export DIR --format hf OUT``: a trained gpt loads in transformers as GPT2LMHeadModel and
computes the same logits, greedy continuations and token ids as TextGen itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sentencepiece as spm
import torch
from conftest import NOVEL
from transformers import AutoModelForCausalLM

from textgen_core import models
from textgen_core.decoding.config import DecodeConfig
from textgen_core.generation import Generator
from textgen_core.models.gpt import GPT, GPTConfig
from textgen_core.project import Project
from textgen_core.training.checkpoint import save_checkpoint
from textgen_core.training.run import train_project

TINY = ["model.n_layer=2", "model.n_embd=32", "model.n_head=2", "model.block_size=32",
        "train.batch_size=8", "train.eval_every=100", "train.eval_batches=1",
        "train.bleu_examples=0", "train.num_samples=0", "train.learning_rate=0.01"]
FILES = {"config.json", "generation_config.json", "model.safetensors", "tokenizer.model", "TOKENIZER.md"}


def _novel(folder: Path, chars: int = 12000) -> Path:
    path = folder / "novel.txt"
    path.write_text(NOVEL.read_text(encoding="utf-8")[:chars], encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Project:
    """A tiny gpt continuation project trained 4 steps (weights no longer the initial ones)."""
    root = tmp_path_factory.mktemp("export")
    project = Project.create(root / "gpt", "continuation", [_novel(root)], model="gpt", overrides=TINY)
    train_project(project, steps=4, device="cpu")
    return project


def _load(out: Path) -> torch.nn.Module:
    model, info = AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
    assert type(model).__name__ == "GPT2LMHeadModel"
    assert not any(info.values()), info            # no missing, unexpected or mismatched keys
    return model.eval()


def _assert_same_logits(ours: torch.nn.Module, theirs: torch.nn.Module, vocab: int, block: int) -> None:
    gen = torch.Generator().manual_seed(0)
    for shape in ((1, 1), (2, 7), (3, block)):      # one token, a short row, a full context
        ids = torch.randint(0, vocab, shape, generator=gen)
        with torch.no_grad():
            expected, got = ours(ids), theirs(ids).logits
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def _assert_same_greedy(generator: Generator, theirs: torch.nn.Module, prompt: str) -> list[int]:
    """HF's greedy ``generate`` continues ``prompt`` with the ids TextGen's greedy decoding writes."""
    written = generator.generate(prompt, DecodeConfig(strategy="greedy", max_tokens=12))
    expected = written.hypotheses[0]
    ids = torch.tensor([written.prompt_ids])
    with torch.no_grad():
        continued = theirs.generate(ids, do_sample=False, max_new_tokens=12)[0, ids.size(1):].tolist()
    assert continued[: len(expected.ids)] == expected.ids
    if expected.finished:
        assert continued[len(expected.ids)] == generator.tgt_tok.eos_id
    return expected.ids


def test_export_matches_textgen(cli, trained, tmp_path):
    out = tmp_path / "hf"
    out.mkdir()                                     # an empty folder is fine
    r = cli("export", trained.root, "--format", "hf", out)
    assert r.code == 0, r
    assert {p.name for p in out.iterdir()} == FILES
    config = json.loads((out / "config.json").read_text())
    assert config["activation_function"] == "gelu" and config["n_positions"] == 32
    assert (config["pad_token_id"], config["bos_token_id"], config["eos_token_id"]) == (0, 2, 3)

    theirs = _load(out)
    generator = Generator.open(trained, device="cpu")
    ours, tok = generator.model, generator.src_tok
    assert not torch.equal(ours.transformer.ln_f.weight, torch.ones(32))   # trained, not the init
    _assert_same_logits(ours, theirs, tok.vocab_size, 32)

    _assert_same_greedy(generator, theirs, "却说宝玉")

    sp = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))
    for text in ("却说宝玉\n听了", "甄士隐梦幻识通灵 龘"):
        assert sp.encode(text) == tok.encode(text)
    notes = (out / "TOKENIZER.md").read_text(encoding="utf-8")
    assert f"newline (\"\\n\", always one token) {tok.newline_id}" in notes


def test_a_model_without_biases_from_a_checkpoint_file(cli, trained, tmp_path):
    tok = trained.tokenizers()[0]
    config = GPTConfig(vocab_size=tok.vocab_size, n_layer=2, n_head=2, n_embd=16, block_size=16, bias=False)
    torch.manual_seed(0)
    model = GPT(config)
    with torch.no_grad():
        for p in model.parameters():                # LayerNorm weights away from 1, all away from init
            p.add_(0.5 * torch.randn_like(p))
    ckpt = save_checkpoint(tmp_path / "nobias.pt", {
        "model_name": "gpt", "model_config": models.config_to_dict(config), "task": "continuation",
        "tokenizers": {"src": tok.to_bytes()}, "model": model.state_dict(), "step": 1})
    out = tmp_path / "hf"
    r = cli("export", trained.root, "--format", "hf", out, "--checkpoint", ckpt)
    assert r.code == 0, r
    theirs = _load(out)
    assert torch.count_nonzero(theirs.transformer.h[0].attn.c_attn.bias) == 0
    _assert_same_logits(model.eval(), theirs, tok.vocab_size, 16)
    written = _assert_same_greedy(Generator.from_checkpoint(ckpt, device="cpu"), theirs, "却说宝玉")
    assert len(set(written)) > 3                    # random weights: a varied continuation


def test_a_folder_that_is_not_empty_is_refused(cli, trained, tmp_path):
    out = tmp_path / "hf"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = cli("export", trained.root, "--format", "hf", out)
    assert r.code == 2, r
    assert r.err.count("\n") == 1 and str(out) in r.err and "not an empty folder" in r.err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["hf"]          # no temporary left behind


def test_other_architectures_are_refused(cli, couplet_files, tmp_path):
    project = tmp_path / "couplets"
    r = cli("init", project, "--task", "couplet", "--data", *couplet_files, "--model", "transformer")
    assert r.code == 0, r
    r = cli("export", project, "--format", "hf", tmp_path / "hf")
    assert r.code == 2, r
    assert r.err == f"error: export --format hf writes gpt models; {project} holds a transformer model\n"
    assert not (tmp_path / "hf").exists()


def test_an_untrained_project_is_refused(cli, tmp_path):
    project = tmp_path / "gpt"
    r = cli("init", project, "--task", "continuation", "--data", _novel(tmp_path, 3000), "--model", "gpt",
            *[arg for setting in TINY for arg in ("--set", setting)])
    assert r.code == 0, r
    r = cli("export", project, "--format", "hf", tmp_path / "hf")
    assert r.code == 2, r
    assert r.err.count("\n") == 1 and "no trained model yet" in r.err and "textgen train" in r.err
    assert not (tmp_path / "hf").exists()
