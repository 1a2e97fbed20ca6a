"""The studio's first start: the bundled ready-to-write couplet model opens by default and writes at
once; the sample project stays one menu entry away; "New project from this model…" starts a
fine-tuning project from the open one."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from tests.conftest import tiny_couplet_lines
from textgen_core.samples import pretrained_dir, user_projects_dir

WAIT_MS = 30_000
FIRST = "春风得意"

pytestmark = pytest.mark.skipif(pretrained_dir("couplet") is None,
                                reason="this checkout has no resources/pretrained/couplets")


@pytest.fixture
def window(studio_window, monkeypatch):
    dialogs: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical", lambda *args: dialogs.append(str(args[2])))
    studio_window.dialogs = dialogs
    yield studio_window
    assert dialogs == []


def _menu_action(win, text: str):
    for menu_action in win.menuBar().actions():
        for action in menu_action.menu().actions():
            if action.text().replace("&", "") == text:
                return action
    raise AssertionError(f"no menu entry {text!r}")


def test_the_first_start_opens_the_ready_model_and_it_writes_at_once(qtbot, window):
    assert window.open_project(None)
    folder = user_projects_dir() / "ready-couplets"
    assert window.project.root == folder and (folder / "checkpoints" / "best.pt").is_file()
    assert not (pretrained_dir("couplet") / "checkpoints" / "last.pt").exists()
    dataset = window.panels["dataset"]             # its corpus files are not here: its split is shown
    assert "training split" in dataset.files_label.text() and dataset.table.rowCount() == 200
    assert dataset.table.item(0, 0).text() == window.project.load_pairs("train")[0].source
    assert window.docks["write"].isVisible()
    panel = window.panels["write"]
    window.show_panel("write")
    panel.first_line.setText(FIRST)
    with qtbot.waitSignal(window.generation.result, timeout=WAIT_MS) as got:
        qtbot.mouseClick(panel.write_button, Qt.MouseButton.LeftButton)
    best = got.args[0].hypotheses[0].text
    assert len(best) == len(FIRST) and "⁇" not in best
    assert best != FIRST and not set(best) & set(FIRST), best      # it answers; it does not copy
    # a second start opens the copy that is there (the user's own fine-tuning is never overwritten)
    (folder / "marker").write_text("mine", encoding="utf-8")
    assert window.open_project(None) and (folder / "marker").is_file()


def test_the_sample_project_to_train_stays_on_the_file_menu(qtbot, window):
    _menu_action(window, "Open the sample project (learn how it works)").trigger()
    assert window.project.root == user_projects_dir() / "sample-couplet"
    assert not window.project.checkpoint_path("best").exists()


def test_new_project_from_this_model_starts_a_fine_tuning_project(qtbot, window, tmp_path, monkeypatch):
    first, second = tiny_couplet_lines(200)
    first[0], second[0] = "龘" + first[0][1:], "靐" + second[0][1:]
    a, b = tmp_path / "mine.in.txt", tmp_path / "mine.out.txt"
    a.write_text("\n".join(first) + "\n", encoding="utf-8")
    b.write_text("\n".join(second) + "\n", encoding="utf-8")
    target = tmp_path / "my-couplets"
    monkeypatch.setattr(window, "ask_for_corpus_files", lambda: [str(a), str(b)])
    monkeypatch.setattr(window, "ask_for_new_project_folder", lambda suggested: str(target))
    assert window.open_project(None)
    ready = window.project
    _menu_action(window, "New project from this model…").trigger()
    assert window.project is not None and window.project.root == Path(target)
    assert (target / "checkpoints" / "base.pt").is_file()
    assert window.project.config.model_name == ready.config.model_name
    assert window.project.config.base == str(ready.root.resolve())
    message = window.statusBar().currentMessage()
    assert "starts from the model of ready-couplets" in message, message
    if any("龘" in p.source for p in window.project.load_pairs("train")):
        assert "not in the base model's vocabulary" in message and "龘" in message
