"""The real main window driving real training and generation through its worker threads."""

from __future__ import annotations

import time

import pytest
from PySide6.QtWidgets import QMessageBox

from app.window import MainWindow
from textgen_core.project import Project
from textgen_core.training.checkpoint import load_checkpoint

QUICK = ["train.eval_every=5", "train.log_every=1", "train.bleu_examples=4", "train.eval_batches=1"]


@pytest.fixture
def window(studio_window):
    return studio_window


@pytest.fixture
def project(couplet_files, tmp_path) -> Project:
    return Project.create(tmp_path / "demo", "couplet", couplet_files, overrides=QUICK)


def test_window_opens_a_project(window, project):
    assert window.windowTitle() == "TextGen Studio"
    assert window.open_project(project.root)
    assert window.windowTitle() == "TextGen Studio — demo"
    assert window.panels["write"].mode() == "couplet"
    assert window.panels["dataset"].corpus() is not None or window.panels["dataset"].is_busy()
    assert str(project.root) in window.recent_projects()
    src, tgt = project.tokenizers()                     # the size shown is the model's real size
    from textgen_core import models

    config = models.build_config(project.config.model_name, project.config.model,
                                 src_vocab_size=src.vocab_size, tgt_vocab_size=tgt.vocab_size, pad_id=0)
    real = models.build_model(project.config.model_name, config).num_parameters()
    assert window.panels["model"].parameter_count() == real


def test_panels_are_built_once_the_core_has_loaded_in_the_background(qtbot, window):
    assert not window.panels and "Loading" in window.placeholder.text()
    seen: list[bool] = []
    window.when_loaded(lambda: seen.append("training" in window.panels))
    qtbot.waitUntil(lambda: len(seen) == 1, timeout=60_000)
    window.when_loaded(lambda: seen.append(True))            # already loaded: runs at once
    assert seen == [True, True]


def test_apply_writes_the_model_settings_into_the_project(window, project, monkeypatch):
    window.open_project(project.root)
    model = window.panels["model"]
    model._editors["n_layer"].widget.setValue(3)
    model.steps_spin.setValue(123)
    model.apply_button.click()
    saved = Project.open(project.root).config
    assert saved.model["n_layer"] == 3 and saved.train.steps == 123
    assert "Start trains with these settings" in window.statusBar().currentMessage()

    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda *args: shown.append(args[2]))
    model._editors["n_head"].widget.setValue(5)           # 64 is not divisible by 5
    model.apply_button.click()                           # disabled: nothing happens
    assert not shown and Project.open(project.root).config.model["n_layer"] == 3
    assert window.save_project() is False and len(shown) == 1   # Ctrl+S: a dialog says why
    assert "n_head" in shown[0] and "\n" not in shown[0]
    assert window.project.config.model["n_layer"] == 3     # the open project keeps valid settings


def _drop_on(window: MainWindow, paths: list) -> None:
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    window.dropEvent(QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime,
                                Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))


def test_a_failing_corpus_dropped_on_the_window_shows_an_error_dialog(qtbot, window, tmp_path,
                                                                       couplet_files, monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical", lambda *args: shown.append(args[2]))
    broken = tmp_path / "couplets.txt"
    broken.write_bytes(b"\x00\x01PK\x03\x04" * 200)         # binary, not text
    _drop_on(window, [broken])
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=30_000)
    assert "couplets.txt" in shown[0] and "\n" not in shown[0] and "Traceback" not in shown[0]
    dataset = window.panels["dataset"]
    assert dataset.error_text() == shown[0] and dataset.corpus() is None

    _drop_on(window, couplet_files)                              # a good drop: no dialog
    qtbot.waitUntil(lambda: dataset.corpus() is not None, timeout=30_000)
    assert len(shown) == 1 and not dataset.error_text()


def test_a_bad_project_folder_shows_an_error_dialog(window, tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda *args: shown.append(args[2]))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "project.toml").write_text("[project\n", encoding="utf-8")
    assert not window.open_project(tmp_path / "broken")
    assert len(shown) == 1 and "project.toml" in shown[0] and "\n" not in shown[0]


def test_train_then_write_then_attention(qtbot, window, project):
    from app import window_actions

    window.open_project(project.root)
    with qtbot.waitSignal(window.training.finished, timeout=120_000) as done:
        window_actions.start_training(window, resume=False, steps=8)
    assert done.args[0]["status"] == "finished" and done.args[0]["step"] == 8
    panel = window.panels["training"]
    panel.redraw_now()
    assert len(panel.series("train_loss")[0]) == 8
    assert panel.state() == "finished"
    write = window.panels["write"]
    write.first_line.setText("晚风摇树树还挺")
    with qtbot.waitSignal(window.generation.result, timeout=60_000) as got:
        write.write_button.click()
    assert len(got.args[0].hypotheses[0].text) == 7
    assert window.panels["attention"].current_matrix() is not None


def test_stop_ends_training_within_a_second(qtbot, window, project):
    from app import window_actions

    window.open_project(project.root)
    with qtbot.waitSignal(window.training.events, timeout=60_000):
        window_actions.start_training(window, resume=False, steps=100_000)
    with qtbot.waitSignal(window.training.finished, timeout=1_000) as done:
        window.panels["training"].stop_button.click()
    assert done.args[0]["status"] == "stopped" and done.args[0]["requested"] == "stop"
    qtbot.waitUntil(lambda: not window.training.running, timeout=2_000)
    assert load_checkpoint(project.checkpoint_path("last"))["step"] == done.args[0]["step"]
    assert window.panels["training"].state() == "finished"      # a stop is not a pause


def test_pause_then_resume_continues_to_the_target(qtbot, window, project):
    from app import window_actions

    window.open_project(project.root)
    panel = window.panels["training"]
    with qtbot.waitSignal(window.training.events, timeout=60_000):
        window_actions.start_training(window, resume=False, steps=30)
    qtbot.waitUntil(lambda: len(panel.series("train_loss")[0]) > 0, timeout=60_000)
    with qtbot.waitSignal(window.training.finished, timeout=5_000) as paused:
        panel.pause_button.click()
    assert paused.args[0]["status"] == "stopped" and paused.args[0]["requested"] == "pause"
    step = paused.args[0]["step"]
    assert 0 < step < 30 and load_checkpoint(project.checkpoint_path("last"))["step"] == step
    qtbot.waitUntil(lambda: not window.training.running, timeout=2_000)
    assert panel.state() == "paused" and panel.resume_button.isEnabled()

    with qtbot.waitSignal(window.training.finished, timeout=120_000) as done:
        panel.resume_button.click()
    assert done.args[0]["status"] == "finished" and done.args[0]["requested"] is None
    assert done.args[0]["step"] == 30 and done.args[0]["run_id"] == paused.args[0]["run_id"]
    qtbot.waitUntil(lambda: not window.training.running, timeout=2_000)
    panel.redraw_now()
    xs, _ = panel.series("train_loss")
    assert xs == sorted(xs) and xs[-1] == 30 and xs[0] == 1     # one curve across the pause
    assert panel.state() == "finished"
    assert load_checkpoint(project.checkpoint_path("last"))["step"] == 30


def test_closing_during_training_stops_and_saves(qtbot, window, project, monkeypatch):
    from app import window_actions

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.open_project(project.root)
    with qtbot.waitSignal(window.training.events, timeout=60_000):
        window_actions.start_training(window, resume=False, steps=100_000)
    started = time.perf_counter()
    window.close()
    assert time.perf_counter() - started < 5
    assert not window.training.running
    assert project.checkpoint_path("last").is_file()


@pytest.mark.timeout(300)
def test_self_test_command(tmp_path):
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_STATE_HOME": str(tmp_path / "state")}
    shots = tmp_path / "shots"
    proc = subprocess.run(
        [sys.executable, "-m", "app.main", "--self-test", "--screenshots", str(shots), "--steps", "10"],
        capture_output=True, text=True, env=env, timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])
    assert report["ok"] and report["steps"] == 10 and report["event_loop_p99_ms"] >= 0
    assert sorted(p.name for p in shots.glob("*.png")) == [
        "01-training.png", "02-writing.png", "03-attention.png"]
