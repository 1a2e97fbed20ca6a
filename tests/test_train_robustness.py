"""Training survives the real world: SIGTERM, kill -9 leftovers, two trainers, a full disk, big files."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from conftest import tiny_couplet_lines

from textgen_core.errors import CheckpointError, TextGenError, TrainingError
from textgen_core.generation import Generator
from textgen_core.project import Project
from textgen_core.training import checkpoint, events, lock
from textgen_core.training.checkpoint import load_checkpoint, read_summary
from textgen_core.training.progress import Progress, format_eta
from textgen_core.training.run import train_project

SETTINGS = ["train.eval_every=5", "train.log_every=1", "train.bleu_examples=2",
            "train.eval_batches=1", "train.num_samples=1"]


def assert_clean_error(result, *needles: str) -> None:
    lines = result.err.strip().splitlines()
    assert result.code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project trained for 5 steps (one evaluation: last and best at step 5), made once."""
    folder = tmp_path_factory.mktemp("template")
    files = [folder / "in.txt", folder / "out.txt"]
    for path, lines in zip(files, tiny_couplet_lines()):
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    project = Project.create(folder / "p", "couplet", files, overrides=SETTINGS)
    train_project(project, steps=5, device="cpu")
    return project.root


@pytest.fixture
def trained(template, tmp_path) -> Project:
    shutil.copytree(template, tmp_path / "p")
    return Project.open(tmp_path / "p")


@pytest.fixture
def project(template, tmp_path) -> Project:
    """The same project before training."""
    shutil.copytree(template, tmp_path / "p", ignore=shutil.ignore_patterns("checkpoints", "runs"))
    return Project.open(tmp_path / "p")


def write_lock(project: Project, pid: int, **fields) -> Path:
    path = project.root / lock.LOCK_NAME
    holder = {"pid": pid, "host": socket.gethostname(), "started": time.time(),
              "program": "textgen train", "process_start": None, **fields}
    path.write_text(json.dumps(holder), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- SIGTERM, lock refusal
@pytest.mark.timeout(180)
def test_sigterm_stops_after_the_step_saves_last_and_a_second_trainer_is_refused(project, cli, tmp_path):
    project.config = project.config.with_overrides(["train.eval_every=100000"])
    project.save_config()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "textgen_core.cli", "train", str(project.root), "--steps", "100000",
           "--device", "cpu"]
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    lines: list[str] = []
    stepping = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("step "):
                stepping.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert stepping.wait(120), "".join(lines) + (tmp_path / "stderr.txt").read_text()
        # one trainer per project: a second one is refused, naming the first
        assert_clean_error(cli("train", project.root, "--restart", "--device", "cpu"),
                           f"pid {proc.pid}", "textgen train", str(project.root))
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    out = "".join(lines)
    assert code == 0 and took < 10, (code, took, out[-2000:])
    stopped = next(line for line in lines if line.startswith("stopped at step "))
    step = int(stopped.split()[3].rstrip(","))
    ckpt = load_checkpoint(project.checkpoint_path("last"))
    assert ckpt["step"] == step and "optimizer" in ckpt["algorithm"]
    assert not (project.root / lock.LOCK_NAME).exists()                    # released
    outcome = train_project(Project.open(project.root), steps=step + 2, device="cpu", resume=True)
    assert outcome.status == "finished" and outcome.step == step + 2


# ----------------------------------------------------------------------------- stale lock and leftovers
def test_a_lock_left_by_a_dead_process_does_not_block_and_leftover_temporaries_are_removed(project):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_file = write_lock(project, dead.pid)
    folder = project.checkpoint_dir
    folder.mkdir()
    ours = [folder / ".last.pt.k3j_9x2a.tmp", folder / ".best.pt.abcdefgh.tmp"]
    theirs = [folder / "notes.tmp", folder / ".last.pt.tmp", folder / "last.pt.abcdefgh.tmp",
              folder / ".last.pt.abcdefgh.tmp.keep", folder / "mine.pt"]
    for path in ours + theirs:
        path.write_bytes(b"x" * 100)

    outcome = train_project(project, steps=1, device="cpu")
    assert outcome.status == "finished"
    assert not any(p.exists() for p in ours)
    assert all(p.read_bytes() == b"x" * 100 for p in theirs)
    assert not lock_file.exists()


def test_lock_is_released_when_training_fails_and_reused_pids_are_stale(trained):
    with pytest.raises(TextGenError, match="already trained"):
        train_project(trained, steps=5, device="cpu", resume=True)
    assert not (trained.root / lock.LOCK_NAME).exists()
    if sys.platform.startswith("linux"):   # same pid, different process start: the pid was reused
        holder = lock.LockHolder(os.getpid(), socket.gethostname(), 0.0, "textgen train", "1")
        assert not lock.is_running(holder)


def test_lock_names_the_studio_and_another_host(project, monkeypatch):
    monkeypatch.setitem(sys.modules, "PySide6.QtWidgets", object())
    with lock.TrainingLock(project.root) as held:
        assert lock.read_holder(held.path).program == "TextGen Studio"
        with pytest.raises(TrainingError, match=rf"TextGen Studio \(pid {os.getpid()}, since"):
            lock.TrainingLock(project.root).acquire()
    assert not held.path.exists()
    write_lock(project, 1, host="render-farm-7")
    with pytest.raises(TrainingError, match=r"on render-farm-7.*delete .*training\.lock"):
        train_project(project, steps=1, device="cpu")


# ----------------------------------------------------------------------------- disk full
def test_disk_full_keeps_the_previous_checkpoint_and_says_so(trained, cli, monkeypatch):
    last = trained.checkpoint_path("last")
    good = last.read_bytes()

    def full_disk(handle, data):
        handle.write(bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "_write_all", full_disk)
    r = cli("train", trained.root, "--steps", "10", "--resume", "--device", "cpu")
    assert_clean_error(r, f"{trained.checkpoint_dir}: disk full", "checkpoint of step 10",
                       "last.pt needs", "free", "last.pt of step 5 is kept intact")
    assert "Errno" not in r.err and "--debug" not in r.err
    assert last.read_bytes() == good
    assert not list(trained.checkpoint_dir.glob("*.tmp"))
    assert not (trained.root / lock.LOCK_NAME).exists()
    events = trained.read_metrics(trained.run_ids()[-1])
    assert events[-1]["event"] == "failed" and "disk full" in events[-1]["message"]


def test_disk_full_while_recording_metrics_is_one_plain_error(tmp_path):
    from textgen_core.training.run import _MetricsWriter

    class FullDisk(io.StringIO):
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    writer = _MetricsWriter(tmp_path / "run" / "metrics.jsonl", True)
    writer.handle.close()
    writer.handle = FullDisk()
    with pytest.raises(TrainingError, match=r"run: disk full while recording metrics.jsonl at step 7"):
        writer.write(events.Checkpoint(step=7, kind="last", path="last.pt"))
    writer.write(events.Checkpoint(step=8, kind="last", path="last.pt"))   # nothing more, nothing raised
    writer.close()


# ----------------------------------------------------------------------------- slim best.pt
def test_best_is_slim_loads_for_writing_and_is_never_resumed(trained, cli, tmp_path):
    best, last = trained.checkpoint_path("best"), trained.checkpoint_path("last")
    slim, full = load_checkpoint(best), load_checkpoint(last)
    assert best.stat().st_size < 0.6 * last.stat().st_size
    assert not {"algorithm", "optimizer", "rng", "data_state", "scaler"} & set(slim)
    assert slim["step"] == full["step"] == 5

    result = Generator.open(trained, "best", "cpu").generate("春风得意", trained.config.generate)
    assert result.hypotheses and result.hypotheses[0].text
    assert cli("generate", trained.root, "春风得意", "--checkpoint", "best").code == 0
    data = [tmp_path / "a.txt", tmp_path / "b.txt"]
    for path, lines in zip(data, tiny_couplet_lines(6)):
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = cli("evaluate", trained.root, "--data", *data, "--json")
    assert r.code == 0 and json.loads(r.out)["examples"] == 6, r

    info = json.loads(cli("info", trained.root, "--json").out)
    assert info["checkpoints"]["last"] == {"path": str(last), "bytes": last.stat().st_size,
                                           "step": 5, "resumable": True}
    assert info["checkpoints"]["best"]["bytes"] == best.stat().st_size
    assert info["checkpoints"]["best"]["resumable"] is False
    assert {"examples", "task", "model", "tokenizer", "runs"} <= set(info)
    human = cli("info", trained.root).out
    assert "checkpoint last: step 5, " in human and (" kB" in human or " MB" in human)

    # --resume reads last.pt alone: never best.pt, and a slim file is refused
    last.write_bytes(best.read_bytes())
    with pytest.raises(CheckpointError, match="cannot be resumed"):
        train_project(trained, steps=8, device="cpu", resume=True)
    last.unlink()
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train_project(trained, steps=8, device="cpu", resume=True)


def test_version_1_checkpoints_still_load(trained, tmp_path):
    import hashlib

    content = load_checkpoint(trained.checkpoint_path("best"))
    inner = io.BytesIO()
    torch.save(content, inner)
    payload = inner.getvalue()
    old = tmp_path / "old.pt"
    torch.save({"format": checkpoint.FORMAT, "version": 1,
                "sha256": hashlib.sha256(payload).hexdigest(), "payload": payload}, old)
    assert load_checkpoint(old)["step"] == 5
    summary = read_summary(old)
    assert summary.bytes == old.stat().st_size and summary.step is None


# ----------------------------------------------------------------------------- progress line
def test_step_line_shows_progress_and_eta():
    progress = Progress()
    progress.update(events.Start(step=100, time=1000.0, steps=400))  # a resumed run
    line = progress.step_line(events.Step(step=120, time=1010.0, train_loss=3.21, lr=1e-3,
                                          tokens_per_s=2345.4))
    # 20 steps in 10 s, 280 to go: 140 s
    assert line == "step 120/400 (30%)  loss 3.2100  lr 1.00e-03  2345 tok/s  ETA 2m20s"
    assert progress.position(120) == "step 120/400"
    assert [format_eta(s) for s in (None, 0, 5.4, 65, 7380)] == ["?", "0s", "5s", "1m05s", "2h03m"]
    assert Progress().position(7) == "step 7"
