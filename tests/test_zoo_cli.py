"""Every registered architecture, on every task it writes, goes init -> train -> generate -> evaluate
through the CLI; a new model is tested by being registered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import NOVEL, TRANSLATION, tiny_couplet_lines

from textgen_core import models

FAST = ["--set", "train.eval_every=15", "--set", "train.log_every=5", "--set", "train.bleu_examples=8",
        "--set", "train.eval_batches=1", "--set", "train.batch_size=16",
        "--set", "model.block_size=32"]              # short passages: the step-loop decoders stay quick
PROMPTS = {"couplet": "春风得意", "translation": "我们走吧。", "continuation": "却说宝玉"}
CASES = [(spec.name, task) for spec in models.list_specs() for task in spec.tasks]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> dict[str, list[Path]]:
    root = tmp_path_factory.mktemp("zoo-data")
    first, second = tiny_couplet_lines(240)
    a, b = root / "in.txt", root / "out.txt"
    a.write_text("\n".join(first) + "\n", encoding="utf-8")
    b.write_text("\n".join(second) + "\n", encoding="utf-8")
    tsv = root / "zh-en.tsv"
    tsv.write_text("\n".join(TRANSLATION.read_text(encoding="utf-8").splitlines()[:300]) + "\n",
                   encoding="utf-8")
    novel = root / "novel.txt"
    novel.write_text(NOVEL.read_text(encoding="utf-8")[:20000], encoding="utf-8")
    ea, eb, etsv, enovel = root / "ein.txt", root / "eout.txt", root / "e.tsv", root / "enovel.txt"
    ea.write_text("\n".join(first[:40]) + "\n", encoding="utf-8")
    eb.write_text("\n".join(second[:40]) + "\n", encoding="utf-8")
    etsv.write_text("\n".join(tsv.read_text(encoding="utf-8").splitlines()[:40]) + "\n", encoding="utf-8")
    enovel.write_text(novel.read_text(encoding="utf-8")[:3000], encoding="utf-8")
    return {"couplet": [a, b], "translation": [tsv], "continuation": [novel],
            "eval-couplet": [ea, eb], "eval-translation": [etsv], "eval-continuation": [enovel]}


def _losses(project: Path) -> list[float]:
    run = next((project / "runs").iterdir())
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [e["train_loss"] for e in events if e["event"] == "step"]


@pytest.mark.parametrize(("name", "task"), CASES, ids=[f"{n}-{t}" for n, t in CASES])
def test_every_model_trains_writes_and_evaluates(cli, corpora, tmp_path, name, task):
    project = tmp_path / f"{name}-{task}"
    swap = ["--swap"] if task == "translation" else []
    r = cli("init", project, "--task", task, "--data", *corpora[task], "--model", name, *swap, *FAST)
    assert r.code == 0, r
    assert json.loads(cli("info", project, "--json").out)["model"] == name

    r = cli("train", project, "--steps", "30", "--device", "cpu")
    assert r.code == 0, r
    losses = _losses(project)
    assert losses[-1] < losses[0], losses

    prompt = PROMPTS[task]
    for mode in (["--greedy"], ["--beam", "3", "--n-best", "2"], ["--temperature", "0.8", "--seed", "1"]):
        r = cli("generate", project, prompt, *mode, "--max-tokens", "12", "--json")
        assert r.code == 0, (mode, r)
        hyps = json.loads(r.out)["hypotheses"]
        assert hyps and all(isinstance(h["text"], str) for h in hyps)
        if task == "couplet":
            assert all(len(h["text"]) == len(prompt) for h in hyps), hyps   # the couplet's form

    r = cli("evaluate", project, "--data", *corpora[f"eval-{task}"], "--json")
    assert r.code == 0, r
    scores = json.loads(r.out)
    assert scores["loss"] > 0 and scores["ppl"] > 1
    if task != "continuation":
        assert 0 <= scores["bleu"] <= 100


@pytest.mark.parametrize("name", [s.name for s in models.list_specs()])
def test_tasks_a_model_does_not_write_are_refused(cli, corpora, tmp_path, name):
    spec = models.get_spec(name)
    for task in ("couplet", "translation", "continuation"):
        if task in spec.tasks:
            continue
        r = cli("init", tmp_path / task, "--task", task, "--data", *corpora[task], "--model", name)
        assert r.code == 2 and r.err.count("\n") == 1, r
        assert f"{name} writes " in r.err and " only" in r.err, r
