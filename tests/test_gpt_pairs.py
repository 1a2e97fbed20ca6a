"""GPT writes couplets and translations as a prefix language model (``source <sep> target``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import TRANSLATION, tiny_couplet_lines

from textgen_core.data import prefix_lm_side_len
from textgen_core.decoding.config import DecodeConfig
from textgen_core.decoding.constraints import is_punctuation
from textgen_core.errors import TextGenError
from textgen_core.generation import Generator
from textgen_core.project import Project

QUICK = ["--set", "train.eval_every=15", "--set", "train.bleu_examples=8", "--set", "train.eval_batches=1",
         "--set", "train.batch_size=16", "--set", "train.log_every=5"]


@pytest.fixture(scope="module")
def couplet_files(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("gpt-couplets")
    first, second = tiny_couplet_lines(240)
    a, b = root / "in.txt", root / "out.txt"
    a.write_text("\n".join(first) + "\n", encoding="utf-8")
    b.write_text("\n".join(second) + "\n", encoding="utf-8")
    return [a, b]


@pytest.fixture(scope="module")
def gpt_couplets(couplet_files, tmp_path_factory) -> Path:
    """A gpt couplet project trained 30 steps through the command line."""
    from textgen_core.cli import main

    root = tmp_path_factory.mktemp("gpt-couplet-project") / "p"
    assert main(["init", str(root), "--task", "couplet", "--data", *map(str, couplet_files),
                 "--model", "gpt", *QUICK]) == 0
    assert main(["-q", "train", str(root), "--steps", "30", "--device", "cpu"]) == 0
    return root


def _events(project: Path) -> list[dict]:
    run = next((project / "runs").iterdir())
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_gpt_learns_couplets_with_validation_bleu(gpt_couplets):
    events = _events(gpt_couplets)
    losses = [e["train_loss"] for e in events if e["event"] == "step"]
    assert losses[-1] < losses[0] - 0.5, losses
    evals = [e for e in events if e["event"] == "eval"]
    assert evals and all(0 <= e["bleu"] <= 100 and e["val_loss"] > 0 for e in evals), evals


def test_gpt_couplets_keep_the_form(cli, gpt_couplets):
    prompt = "风声雨声读书声，声声入耳"
    for mode in (["--greedy"], ["--beam", "3", "--n-best", "3"], ["--temperature", "1.2", "--seed", "3"]):
        r = cli("generate", gpt_couplets, prompt, *mode, "--json")
        assert r.code == 0, r
        for hyp in json.loads(r.out)["hypotheses"]:
            text = hyp["text"]
            assert len(text) == len(prompt) and text[7] == "，", (mode, text)       # length, the comma
            assert text[1] == text[3] == text[6] == text[8] == text[9], (mode, text)  # 声 mirrored
            assert len(set(text)) == len(text) - 4, (mode, text)                  # no other repeat
            assert not set(text) & (set(prompt) - {"，"}), (mode, text)           # none of its characters
            assert not any(is_punctuation(ch) for i, ch in enumerate(text) if i != 7), (mode, text)


def test_gpt_couplets_evaluate(cli, gpt_couplets, couplet_files):
    r = cli("evaluate", gpt_couplets, "--data", *couplet_files, "--json")
    assert r.code == 0, r
    scores = json.loads(r.out)
    assert scores["examples"] == 240 and 0 <= scores["bleu"] <= 100 and 0 < scores["chrf"] <= 100
    assert 1 < scores["ppl"] < 5000


def test_batched_outputs_are_the_prefix_lm_greedy_answers(gpt_couplets):
    gen = Generator.from_project(Project.open(gpt_couplets), device="cpu")
    tok, model = gen.tgt_tok, gen.model
    lines = ["春风得意", "一帆风顺年年好", "花开", "万事如意步步高", "明月"]       # mixed lengths, regrouped
    free = DecodeConfig(strategy="greedy", couplet_length=False, couplet_punctuation=False,
                        couplet_repeats=False, couplet_no_reuse=False, tone="off")
    batched = gen.generate_many(lines, free, batch_size=3)
    side = prefix_lm_side_len(model.config.block_size)
    for line, got in zip(lines, batched):
        row = [*tok.encode(line, per_char=True), tok.newline_id]       # source <sep>, then the answer
        want: list[int] = []
        for _ in range(side - 1):
            logits = model(torch.tensor([row + want]))[0, -1]
            logits[[tok.pad_id, tok.bos_id, tok.unk_id]] = float("-inf")
            nxt = int(logits.argmax())
            if nxt == tok.eos_id:
                break
            want.append(nxt)
        assert got.prompt == line and got.hypotheses[0].ids == want
    same = gen.generate_many(lines, DecodeConfig(strategy="greedy"), batch_size=3)
    assert [len(r.hypotheses[0].text) for r in same] == [len(line) for line in lines]


def test_generation_refuses_a_first_line_the_block_cannot_answer(gpt_couplets):
    gen = Generator.from_project(Project.open(gpt_couplets), device="cpu")
    block = gen.model.config.block_size
    with pytest.raises(TextGenError, match=f"reads at most {block // 2}"):
        gen.generate("春" * (block // 2 + 1), DecodeConfig(strategy="greedy"))
    longest = gen.generate("春" * (block // 2), DecodeConfig(strategy="greedy"))
    assert len(longest.hypotheses[0].text) == block // 2
    with pytest.raises(TextGenError, match="empty input: type the first line"):
        gen.generate("  ", DecodeConfig(strategy="greedy"))


def test_gpt_attention_covers_source_separator_and_answer(gpt_couplets):
    gen = Generator.from_project(Project.open(gpt_couplets), device="cpu")
    result = gen.generate("春风得意", DecodeConfig(strategy="greedy"), with_attention=True)
    att = result.attention
    assert att is not None and att.kind == "self"
    assert att.key_tokens[:5] == ["春", "风", "得", "意", "↵"] and len(att.key_tokens) == 5 + 4
    assert att.weights.shape[-2:] == (9, 9)


def test_gpt_translation_shares_one_vocabulary_of_both_languages(tmp_path):
    tsv = tmp_path / "zh-en.tsv"
    tsv.write_text("\n".join(TRANSLATION.read_text(encoding="utf-8").splitlines()[:200]) + "\n",
                   encoding="utf-8")
    project = Project.create(tmp_path / "p", "translation", [tsv], model="gpt", overrides=["data.swap=true"])
    src, tgt = project.tokenizers()
    assert src is tgt
    pairs = project.load_pairs("train")
    for side in ("source", "target"):                       # Chinese sources and English targets
        ids = [i for p in pairs for i in src.encode(getattr(p, side))]
        assert ids.count(src.unk_id) < 0.01 * len(ids), side


def test_an_undertrained_prefix_lm_never_writes_the_separator_into_a_couplet(couplet_files, tmp_path):
    """The newline is the prefix LM's separator: a barely trained model would start its second line
    with it (one character short); the search never lets an answer hold it."""
    from textgen_core.training.run import train_project

    project = Project.create(tmp_path / "p", "couplet", couplet_files, model="gpt",
                             overrides=[s for s in QUICK if s != "--set"])
    train_project(project, steps=1, device="cpu")
    gen = Generator.from_project(project, "last", device="cpu")
    firsts = [line.replace(" ", "") for line in tiny_couplet_lines(12)[0]]
    for result in gen.generate_many(firsts, DecodeConfig(strategy="beam", beam_size=3, n_best=3)):
        for hyp in result.hypotheses:
            assert gen.tgt_tok.newline_id not in hyp.ids and "\n" not in hyp.text
            assert len(hyp.text) == len(result.prompt.replace(" ", "")), hyp.text
