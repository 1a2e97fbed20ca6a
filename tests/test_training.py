"""Trainer behaviour: exact resume, prompt stop, non-finite losses, data-parallel training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from textgen_core.errors import TrainingError
from textgen_core.project import Project
from textgen_core.training import events
from textgen_core.training.checkpoint import load_checkpoint
from textgen_core.training.run import train_project

SETTINGS = ["train.eval_every=5", "train.log_every=1", "train.bleu_examples=4",
            "train.eval_batches=1", "train.num_samples=1", "model.dropout=0.1"]


def make_project(root: Path, files: list[Path]) -> Project:
    return Project.create(root, "couplet", files, overrides=SETTINGS)


def stop_after(n: int):
    seen: list[events.Event] = []

    def on_event(event: events.Event) -> None:
        seen.append(event)

    return seen, on_event, lambda: sum(isinstance(e, events.Step) for e in seen) >= n


def test_resume_equals_uninterrupted(couplet_files, tmp_path):
    straight = make_project(tmp_path / "a", couplet_files)
    train_project(straight, steps=14, device="cpu")

    resumed = make_project(tmp_path / "b", couplet_files)
    _, on_event, should_stop = stop_after(7)
    outcome = train_project(resumed, steps=14, device="cpu", on_event=on_event,
                            should_stop=should_stop)
    assert outcome.status == "stopped" and outcome.step == 7
    outcome = train_project(resumed, steps=14, device="cpu", resume=True)
    assert outcome.status == "finished" and outcome.step == 14

    a = load_checkpoint(straight.checkpoint_path("last"))
    b = load_checkpoint(resumed.checkpoint_path("last"))
    assert a["step"] == b["step"] == 14
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert a["data_state"] == b["data_state"]


def test_stop_ends_within_one_step_and_leaves_a_loadable_checkpoint(couplet_files, tmp_path):
    project = make_project(tmp_path / "p", couplet_files)
    seen, on_event, should_stop = stop_after(3)
    outcome = train_project(project, steps=1000, device="cpu", on_event=on_event,
                            should_stop=should_stop)
    assert outcome.status == "stopped" and outcome.step == 3
    assert isinstance(seen[-1], events.Stopped)
    assert load_checkpoint(project.checkpoint_path("last"))["step"] == 3


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(couplet_files, tmp_path, monkeypatch):
    project = make_project(tmp_path / "p", couplet_files)
    train_project(project, steps=5, device="cpu")
    good = project.checkpoint_path("last").read_bytes()

    from textgen_core import evaluation

    real = evaluation.batch_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] > 3 else loss

    monkeypatch.setattr("textgen_core.training.tasks.batch_loss", poisoned)
    with pytest.raises(TrainingError, match=r"non-finite|nan"):
        train_project(project, steps=20, device="cpu", resume=True)
    assert project.checkpoint_path("last").read_bytes() == good


def test_metrics_jsonl_records_every_event(couplet_files, tmp_path):
    project = make_project(tmp_path / "p", couplet_files)
    outcome = train_project(project, steps=10, device="cpu")
    events = project.read_metrics(outcome.run_id)
    kinds = {e["event"] for e in events}
    assert {"config", "start", "step", "eval", "sample", "checkpoint", "finished"} <= kinds
    evals = [e for e in events if e["event"] == "eval"]
    assert all("val_loss" in e and "bleu" in e and "chrf" in e for e in evals)
    steps = [e for e in events if e["event"] == "step"]
    assert all(e["tokens_per_s"] > 0 and e["lr"] > 0 for e in steps)


def test_best_checkpoint_saved_with_last_has_the_same_weights(couplet_files, tmp_path):
    project = make_project(tmp_path / "p", couplet_files)
    outcome = train_project(project, steps=5, device="cpu")      # one evaluation: best = last
    best = load_checkpoint(project.checkpoint_path("best"))
    last = load_checkpoint(project.checkpoint_path("last"))
    assert best["step"] == last["step"] == outcome.step == 5
    for name, tensor in last["model"].items():
        assert torch.equal(tensor, best["model"][name]), name
    assert not list(project.checkpoint_dir.glob("*.tmp"))        # no temporary files left


@pytest.mark.timeout(240)
def test_two_process_data_parallel_training(couplet_files, tmp_path):
    project = make_project(tmp_path / "p", couplet_files)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", "29517", "-m", "textgen_core.cli", "train", str(project.root),
           "--steps", "6", "--device", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=220)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("finished at step 6") == 1, proc.stdout      # rank 0 alone speaks
    assert proc.stdout.count("training transformer") == 1, proc.stdout
    ckpt = load_checkpoint(project.checkpoint_path("last"))
    assert ckpt["step"] == 6
    run = project.run_ids()[0]
    events = project.read_metrics(run)
    assert next(e for e in events if e["event"] == "config")["world_size"] == 2
    # rank 0 alone writes: one "finished" event, not two
    assert sum(e["event"] == "finished" for e in events) == 1
    assert json.dumps(events)  # plain JSON all through


def test_couplet_samples_are_written_as_write_writes_them(couplet_files, tmp_path):
    project = Project.create(tmp_path / "p", "couplet", couplet_files,
                             overrides=[*SETTINGS, "train.num_samples=3"])
    outcome = train_project(project, steps=5, device="cpu")
    samples = [e for e in project.read_metrics(outcome.run_id) if e["event"] == "sample"][-1]
    assert len(samples["samples"]) == 3
    for sample in samples["samples"]:
        first, second = "".join(sample["prompt"].split()), sample["output"]
        assert len(second) == len(first)                     # the couplet's form, however young
        assert not set(second) & set(first) - set("，。！？、；：")
        pairs = [(i, j) for i in range(len(first)) for j in range(i + 1, len(first))]
        assert all((first[i] == first[j]) == (second[i] == second[j]) for i, j in pairs)
