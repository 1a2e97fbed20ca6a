"""Shared fixtures: bundled sample corpora, tiny projects, the CLI run in-process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
torch.set_num_threads(2)

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "resources" / "samples"
COUPLETS = [SAMPLES / "couplets.in.txt", SAMPLES / "couplets.out.txt"]
TRANSLATION = SAMPLES / "cmn-eng.tsv"
NOVEL = SAMPLES / "hongloumeng_ch1-10.txt"


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, out={self.out[-500:]!r}, err={self.err[-800:]!r})"


@pytest.fixture
def cli(capsys):
    """Run ``textgen ARGS`` in this process; returns exit code, stdout and stderr."""
    from textgen_core.cli import main

    def run(*args: str | os.PathLike) -> CliResult:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def tiny_couplet_lines(n: int = 400) -> tuple[list[str], list[str]]:
    first = COUPLETS[0].read_text(encoding="utf-8").splitlines()[:n]
    second = COUPLETS[1].read_text(encoding="utf-8").splitlines()[:n]
    return first, second


@pytest.fixture
def couplet_files(tmp_path: Path) -> list[Path]:
    """A 400-pair slice of the bundled couplets (space-separated characters, as the dataset has)."""
    first, second = tiny_couplet_lines()
    a, b = tmp_path / "in.txt", tmp_path / "out.txt"
    a.write_text("\n".join(first) + "\n", encoding="utf-8")
    b.write_text("\n".join(second) + "\n", encoding="utf-8")
    return [a, b]


@pytest.fixture
def no_thread_leaks(monkeypatch):
    """Fail a test that leaves one of the studio's worker QThreads running."""
    import app.controllers

    started = []
    real = app.controllers.start_in_thread

    def tracking(worker, entry="run"):
        thread = real(worker, entry)
        started.append(thread)
        return thread

    monkeypatch.setattr(app.controllers, "start_in_thread", tracking)
    yield started
    running = []
    for thread in started:
        try:
            if thread.isRunning():
                running.append(thread)
        except RuntimeError:      # already deleted by Qt: it had finished
            continue
    for thread in running:
        thread.quit()
        thread.wait(5000)
    assert not running, f"{len(running)} worker thread(s) left running"


@pytest.fixture
def studio_window(qtbot, no_thread_leaks, monkeypatch, tmp_path):
    """The main window, shown, with its settings and projects folder inside the test's folder."""
    from PySide6.QtWidgets import QMessageBox

    from app.window import MainWindow

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))   # QSettings stay in the test
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))       # and so does the projects folder
    # a failing test may leave training running: closing must not wait for a dialog's answer
    monkeypatch.setattr(QMessageBox, "question", lambda *args: QMessageBox.StandardButton.Yes)
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    yield win
    win.training.shutdown()
    win.generation.shutdown()


@pytest.fixture(scope="session")
def couplet_project(tmp_path_factory) -> Path:
    """A couplet transformer project trained 10 steps on 300 sample pairs (shared: do not train it)."""
    from textgen_core.project import Project
    from textgen_core.training.run import train_project

    root = tmp_path_factory.mktemp("gen")
    first, second = tiny_couplet_lines(300)
    a, b = root / "a.txt", root / "b.txt"
    a.write_text("\n".join(first), encoding="utf-8")
    b.write_text("\n".join(second), encoding="utf-8")
    quick = ["train.eval_every=10", "train.bleu_examples=4", "train.eval_batches=1"]
    project = Project.create(root / "p", "couplet", [a, b], overrides=quick)
    train_project(project, steps=10, device="cpu")
    return project.root


@pytest.fixture(scope="session")
def couplet_generator(couplet_project):
    """The couplet project's generator, ready to write (shared)."""
    from textgen_core.generation import Generator
    from textgen_core.project import Project

    return Generator.from_project(Project.open(couplet_project), device="cpu")
