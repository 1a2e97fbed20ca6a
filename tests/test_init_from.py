"""``textgen init DIR --from PROJECT``: a project that starts from a trained one's tokenizer and weights."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import COUPLETS

QUICK = ["train.eval_every=20", "train.eval_batches=4", "train.bleu_examples=0", "train.num_samples=0",
         "train.log_every=10"]
QUICK_FLAGS = [arg for setting in QUICK for arg in ("--set", setting)]


def _write_pairs(folder: Path, first: list[str], second: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    a, b = folder / "in.txt", folder / "out.txt"
    a.write_text("\n".join(first) + "\n", encoding="utf-8")
    b.write_text("\n".join(second) + "\n", encoding="utf-8")
    return [a, b]


def _sample(lo: int, hi: int) -> tuple[list[str], list[str]]:
    first = COUPLETS[0].read_text(encoding="utf-8").splitlines()[lo:hi]
    second = COUPLETS[1].read_text(encoding="utf-8").splitlines()[lo:hi]
    return first, second


@pytest.fixture(scope="module")
def base_project(tmp_path_factory) -> Path:
    """A tiny GRU couplet model trained on 2,400 sample couplets (the last 600 are kept apart)."""
    from textgen_core.project import Project
    from textgen_core.training.run import train_project

    root = tmp_path_factory.mktemp("base")
    files = _write_pairs(root / "corpus", *_sample(0, 2400))
    project = Project.create(root / "base", "couplet", files, model="gru-seq2seq", overrides=QUICK)
    train_project(project, steps=200, device="cpu")
    return project.root


def test_fine_tuning_lowers_validation_loss_faster_than_training_from_scratch(base_project, tmp_path,
                                                                               cli):
    from textgen_core.project import Project
    from textgen_core.training.run import train_project

    files = _write_pairs(tmp_path / "mine", *_sample(2400, 3000))
    tuned = tmp_path / "tuned"
    result = cli("init", tuned, "--from", base_project, "--data", *files, *QUICK_FLAGS)
    assert result.code == 0, result
    assert (tuned / "checkpoints" / "base.pt").is_file()
    scratch = tmp_path / "scratch"           # the same project, tokenizer and split, without the weights
    shutil.copytree(tuned, scratch)
    (scratch / "checkpoints" / "base.pt").unlink()

    losses = {}
    for root in (tuned, scratch):
        outcome = train_project(Project.open(root), steps=40, device="cpu")
        losses[root.name] = outcome.best_val_loss
    assert losses["tuned"] < losses["scratch"] - 0.3, losses


def test_the_new_project_keeps_the_base_model_and_takes_its_own_corpus(base_project, tmp_path, cli):
    from textgen_core.project import Project

    files = _write_pairs(tmp_path / "mine", *_sample(2400, 2700))
    result = cli("init", tmp_path / "p", "--from", base_project, "--data", *files)
    assert result.code == 0, result
    base, new = Project.open(base_project), Project.open(tmp_path / "p")
    assert new.config.model_name == base.config.model_name == "gru-seq2seq"
    assert dict(new.config.model) == dict(base.config.model)
    assert new.tokenizer_path("src").read_bytes() == base.tokenizer_path("src").read_bytes()
    assert new.config.base == str(base_project.resolve())
    assert new.config.train.steps <= base.config.train.steps
    assert new.config.train.learning_rate < base.config.train.learning_rate
    assert new.config.train.schedule == "cosine" and new.config.train.warmup_steps <= 50
    info = cli("info", tmp_path / "p", "--json")
    assert '"base": ' in info.out and str(base_project.name) in info.out
    assert len(new.load_pairs("train")) + len(new.load_pairs("valid")) + len(new.load_pairs("test")) == 300


def test_characters_the_base_lacks_are_reported_and_read_as_one_unk_each(base_project, tmp_path, cli):
    from textgen_core.project import Project
    from textgen_core.project_from import vocabulary_report

    first, second = _sample(0, 300)
    for i in range(0, 300, 3):        # in every split whatever the shuffle: 龘 靐 ×100, 齉 龖 ×100
        first[i], second[i] = "龘靐" + first[i][2:], "齉龖" + second[i][2:]
    files = _write_pairs(tmp_path / "mine", first, second)
    result = cli("init", tmp_path / "p", "--from", base_project, "--data", *files)
    assert result.code == 0, result
    project = Project.open(tmp_path / "p")
    report = vocabulary_report(project)
    unknown = dict(report.unknown)
    assert all(unknown[ch] > 50 for ch in "龘靐齉龖"), report
    src, _ = project.tokenizers()
    assert all(not src.has_char(ch) for ch in unknown) and all(src.has_char(ch) for ch in "春风秋月")
    line = next(ln for ln in result.out.splitlines() if "not in the base model's vocabulary" in ln)
    assert line.startswith(f"{len(unknown)} characters ") and all(ch in line for ch in "龘靐齉龖"), line
    pair = next(p for p in project.load_pairs("train") if p.source.startswith("龘"))
    ids = src.encode(pair.source, per_char=True)
    assert len(ids) == len(pair.source) and ids[:2] == [src.unk_id, src.unk_id]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--model", "transformer"], "--model cannot be used with --from"),
        (["--preset", "small"], "--preset cannot be used with --from"),
        (["--task", "translation"], "is a couplet model; it cannot start a translation project"),
    ],
)
def test_conflicting_choices_are_one_line_errors(base_project, tmp_path, cli, extra, expected):
    files = _write_pairs(tmp_path / "mine", *_sample(2400, 2500))
    result = cli("init", tmp_path / "p", "--from", base_project, "--data", *files, *extra)
    assert result.code == 2 and expected in result.err and len(result.err.strip().splitlines()) == 1, result
    assert not (tmp_path / "p" / "project.toml").exists()


def test_a_base_without_a_trained_model_and_a_missing_task_are_one_line_errors(tmp_path, cli):
    files = _write_pairs(tmp_path / "mine", *_sample(0, 200))
    assert cli("init", tmp_path / "untrained", "--task", "couplet", "--data", *files).code == 0
    result = cli("init", tmp_path / "p", "--from", tmp_path / "untrained", "--data", *files)
    assert result.code == 2 and "no trained model to start from" in result.err, result
    result = cli("init", tmp_path / "q", "--data", *files)
    assert result.code == 2 and "--task is required" in result.err, result


def test_changed_model_settings_that_no_longer_fit_the_base_weights_are_a_clear_error(base_project,
                                                                                     tmp_path, cli):
    files = _write_pairs(tmp_path / "mine", *_sample(2400, 2600))
    assert cli("init", tmp_path / "p", "--from", base_project, "--data", *files,
               "--set", "model.hidden_size=64").code == 0
    result = cli("train", tmp_path / "p", "--steps", "2", "--device", "cpu")
    assert result.code == 2 and "base model does not fit this project's model settings" in result.err, result


def test_training_a_project_that_holds_only_a_model_for_writing_is_refused_until_restart(base_project,
                                                                                         tmp_path, cli):
    """A packed project (best.pt, no last.pt: the bundled ready-to-write model) must not be
    silently retrained from random weights by a plain ``train``."""
    ready = tmp_path / "ready"
    shutil.copytree(base_project, ready)
    (ready / "checkpoints" / "last.pt").unlink()
    before = (ready / "checkpoints" / "best.pt").read_bytes()
    result = cli("train", ready, "--steps", "2", "--device", "cpu")
    assert result.code == 2 and "--from" in result.err and "--restart" in result.err, result
    assert (ready / "checkpoints" / "best.pt").read_bytes() == before
