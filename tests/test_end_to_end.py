"""init -> train a few dozen steps -> loss falls -> generate -> evaluate, once per task, via the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import NOVEL, TRANSLATION

FAST = ["--set", "train.eval_every=20", "--set", "train.log_every=5",
        "--set", "train.bleu_examples=16", "--set", "train.eval_batches=2"]


def train_losses(project: Path) -> list[float]:
    run = next((project / "runs").iterdir())
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all("step" in e for e in events)
    return [e["train_loss"] for e in events if e["event"] == "step"]


def test_couplet_end_to_end(cli, couplet_files, tmp_path):
    project = tmp_path / "couplets"
    r = cli("init", project, "--task", "couplet", "--data", *couplet_files, *FAST)
    assert r.code == 0, r
    info = json.loads(cli("info", project, "--json").out)
    ex = info["examples"]
    assert ex["train"] + ex["valid"] + ex["test"] == 400 and ex["valid"] > 0 and ex["test"] > 0

    r = cli("train", project, "--steps", "60", "--device", "cpu")
    assert r.code == 0, r
    losses = train_losses(project)
    assert losses[-1] < losses[0] - 1.0, losses
    assert (project / "checkpoints" / "last.pt").is_file()
    assert (project / "checkpoints" / "best.pt").is_file()

    r = cli("generate", project, "晚 风 摇 树 树 还 挺", "春风得意", "--greedy", "--json")
    assert r.code == 0, r
    lines = [json.loads(x) for x in r.out.splitlines()]
    assert len(lines) == 2
    for obj, n in zip(lines, (7, 4)):
        assert len(obj["prompt_ids"]) == n
        hyp = obj["hypotheses"][0]
        assert set(hyp) >= {"text", "score", "ids"}
        assert len(hyp["text"]) == n            # a couplet answers with the input's length

    r = cli("generate", project, "春风得意", "--beam", "4", "--n-best", "3", "--json")
    hyps = json.loads(r.out)["hypotheses"]
    assert len(hyps) == 3 and len({h["text"] for h in hyps}) == 3
    assert hyps[0]["score"] >= hyps[1]["score"] >= hyps[2]["score"]

    r = cli("evaluate", project, "--data", *couplet_files, "--json")
    assert r.code == 0, r
    scores = json.loads(r.out)
    assert set(scores) >= {"bleu", "chrf", "loss", "ppl"}
    assert 0 <= scores["bleu"] <= 100 and scores["chrf"] > 0 and scores["ppl"] > 1


def test_translation_end_to_end(cli, tmp_path):
    project = tmp_path / "zh-en"
    lines = TRANSLATION.read_text(encoding="utf-8").splitlines()[:600]
    data = tmp_path / "pairs.tsv"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = cli("init", project, "--task", "translation", "--data", data, "--swap",
            "--tokenizer", "bpe", "--vocab-size", "1200", *FAST)
    assert r.code == 0, r
    r = cli("train", project, "--steps", "40", "--device", "cpu")
    assert r.code == 0, r
    losses = train_losses(project)
    assert losses[-1] < losses[0] - 0.8, losses
    r = cli("generate", project, "我们走吧。", "--beam", "3", "--n-best", "2", "--json")
    assert r.code == 0, r
    assert len(json.loads(r.out)["hypotheses"]) == 2
    r = cli("evaluate", project, "--data", data, "--json")
    scores = json.loads(r.out)
    assert r.code == 0 and scores["loss"] > 0 and scores["bleu"] is not None


def test_continuation_end_to_end(cli, tmp_path):
    project = tmp_path / "novel"
    r = cli("init", project, "--task", "continuation", "--data", NOVEL, *FAST)
    assert r.code == 0, r
    assert json.loads(cli("info", project, "--json").out)["model"] == "gpt"
    r = cli("train", project, "--steps", "40", "--device", "cpu")
    assert r.code == 0, r
    losses = train_losses(project)
    assert losses[-1] < losses[0] - 1.0, losses
    args = ("generate", project, "却说宝玉", "--max-tokens", "20", "--seed", "7", "--json")
    first, again = cli(*args), cli(*args)
    assert first.code == 0, first
    assert first.out == again.out                      # a seed makes samples reproducible
    hyp = json.loads(first.out)["hypotheses"][0]
    assert 0 < len(hyp["ids"]) <= 20
    r = cli("evaluate", project, "--data", NOVEL, "--json")
    scores = json.loads(r.out)
    assert r.code == 0 and scores["ppl"] > 1 and scores["bleu"] is None


def test_models_listing(cli):
    r = cli("models", "--json")
    names = {m["name"] for m in json.loads(r.out)}
    assert {"transformer", "gpt"} <= names


def test_bundled_sample_projects(tmp_path):
    from textgen_core.samples import ensure_sample_project

    for task in ("couplet", "translation", "continuation"):
        project = ensure_sample_project(task, root=tmp_path)
        info = project.info()
        assert info["task"] == task and info["examples"]["train"] > 100
        assert ensure_sample_project(task, root=tmp_path).root == project.root   # opened, not re-made
