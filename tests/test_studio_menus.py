"""Every menu action and shortcut of the main window, tried as a new user would; first projects of
each task created through File ▸ New."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication

from app.window import MainWindow
from tests.conftest import NOVEL, TRANSLATION
from textgen_core import models
from textgen_core.project import Project
from textgen_core.samples import user_projects_dir

QUICK = ["train.eval_every=5", "train.log_every=1", "train.bleu_examples=4", "train.eval_batches=1"]
MENU = {
    "File": ["New project from corpus…", "New project from this model…", "Open project…",
             "Open the sample project (learn how it works)", "Save project", "Open recent", "Quit"],
    "View": ["Dataset", "Model", "Training", "Write", "Attention"],
    "Help": ["About TextGen Studio"],
}
SHORTCUTS = {"New project from corpus…": "Ctrl+N", "Open project…": "Ctrl+O", "Save project": "Ctrl+S",
             "Quit": "Ctrl+Q"}


@pytest.fixture
def window(studio_window):
    studio_window.build_panels()
    return studio_window


@pytest.fixture
def project(couplet_files, tmp_path) -> Project:
    return Project.create(tmp_path / "demo", "couplet", couplet_files, overrides=QUICK)


def _actions(window: MainWindow) -> dict[str, QAction]:
    """Menu title -> its actions, by text without the "&" marks (submenus by their title)."""
    found = {}
    for top in window.menuBar().actions():
        for action in top.menu().actions():
            if not action.isSeparator():
                found[f"{top.text()}/{action.text()}".replace("&", "")] = action
    return found


def _press(qtbot, window: MainWindow, shortcut: str) -> None:
    """Type a shortcut at the window, as a person would."""
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=2_000)
    combo = QKeySequence(shortcut)[0]
    qtbot.keyClick(window, combo.key(), combo.keyboardModifiers())


def _answer_dialog(check) -> list:
    """Close the next modal dialog from the event loop (after ``check(dialog)``): the dialog is
    real, and the test does not block."""
    seen: list = []

    def close() -> None:
        dialog = QApplication.activeModalWidget()
        if dialog is None:
            QTimer.singleShot(20, close)
            return
        seen.append(check(dialog))
        dialog.close()

    QTimer.singleShot(0, close)
    return seen


def test_the_menus_hold_these_actions_with_these_shortcuts(window):
    actions = _actions(window)
    assert sorted(actions) == sorted(f"{menu}/{text}" for menu, texts in MENU.items() for text in texts)
    for text, keys in SHORTCUTS.items():
        assert actions[f"File/{text}"].shortcut().toString() == keys


def test_new_asks_for_files_guesses_the_task_and_creates_a_novel_project(qtbot, window, project,
                                                                         monkeypatch):
    window.open_project(project.root)                     # the couplet project is open
    dataset, model = window.panels["dataset"], window.panels["model"]
    window.show_panel("training")
    monkeypatch.setattr(dataset, "ask_for_files", lambda start: [str(NOVEL)])
    _press(qtbot, window, "Ctrl+N")
    assert window.docks["dataset"].isVisible()
    assert dataset.task() == "continuation" and dataset.corpus() is not None
    assert "one plain-text file" in dataset.guess_text()
    assert model.task() == "couplet"                      # it still shows the open project's model

    suggested: list[Path] = []
    folder = user_projects_dir() / "my-novel"
    monkeypatch.setattr(window, "ask_for_new_project_folder", lambda s: suggested.append(s) or str(folder))
    dataset.create_button.click()
    assert suggested == [user_projects_dir() / "continuation-project"]
    assert window.project is not None and window.project.root == folder
    assert window.project.config.task == "continuation" and window.project.config.model_name == "gpt"
    story_models = [spec.name for spec in models.list_specs() if "continuation" in spec.tasks]
    assert [model.arch_combo.itemData(i) for i in range(model.arch_combo.count())] == story_models
    assert window.windowTitle() == "TextGen Studio — my-novel"


def test_a_new_translation_project_from_the_sample_tsv(qtbot, window, monkeypatch, tmp_path):
    dataset = window.panels["dataset"]
    monkeypatch.setattr(dataset, "ask_for_files", lambda start: [str(TRANSLATION)])
    _actions(window)["File/New project from corpus…"].trigger()
    assert dataset.task() == "translation" and "two languages" in dataset.guess_text()
    assert window.panels["model"].task() == "translation"   # no project open: the model follows
    monkeypatch.setattr(window, "ask_for_new_project_folder", lambda s: str(tmp_path / "tr"))
    dataset.create_button.click()
    assert window.project.config.task == "translation"
    assert window.project.config.model_name == "transformer"


def test_the_create_dialog_starts_in_the_projects_folder(qtbot, window):
    folder = user_projects_dir() / "couplet-project"
    folder.mkdir(parents=True)                                 # taken: the next name is offered
    from app.window_actions import suggested_project_folder

    suggested = suggested_project_folder("couplet")
    assert suggested == user_projects_dir() / "couplet-project-2"
    seen = _answer_dialog(lambda d: (Path(d.directory().absolutePath()), d.selectedFiles()))
    assert window.ask_for_new_project_folder(suggested) == ""   # closed: nothing is created
    assert seen == [(user_projects_dir(), [str(suggested)])]


def test_open_asks_for_a_folder_in_the_projects_folder(qtbot, window, project, monkeypatch):
    seen = _answer_dialog(lambda d: Path(d.directory().absolutePath()))
    user_projects_dir().mkdir(parents=True)
    assert window.ask_for_project_folder() == ""
    assert seen == [user_projects_dir()]
    monkeypatch.setattr(window, "ask_for_project_folder", lambda: str(project.root))
    _press(qtbot, window, "Ctrl+O")
    assert window.project is not None and window.project.root == project.root
    assert window.windowTitle() == "TextGen Studio — demo"


def test_the_corpus_dialog_starts_beside_the_last_files(qtbot, window):
    dataset = window.panels["dataset"]
    dataset.load_files([str(NOVEL)])
    seen = _answer_dialog(lambda d: (Path(d.directory().absolutePath()), d.isModal()))
    dataset.choose_files()
    assert seen == [(NOVEL.parent, True)]
    assert dataset.paths() == [str(NOVEL)]                   # cancelled: the files stay


def test_save_writes_the_model_settings(qtbot, window, project):
    window.open_project(project.root)
    window.panels["model"].steps_spin.setValue(77)
    _press(qtbot, window, "Ctrl+S")
    assert Project.open(project.root).config.train.steps == 77
    assert "Saved" in window.statusBar().currentMessage()


def test_open_recent_reopens_a_project(qtbot, window, project, couplet_files, tmp_path):
    other = Project.create(tmp_path / "other", "couplet", couplet_files, overrides=QUICK)
    window.open_project(project.root)
    window.open_project(other.root)
    recent = _actions(window)["File/Open recent"].menu()
    assert [a.text() for a in recent.actions()][:2] == [str(other.root), str(project.root)]
    recent.actions()[1].trigger()
    assert window.project.root == project.root


def test_view_actions_hide_and_show_the_panels(window):
    actions = _actions(window)
    for key, title in (("dataset", "Dataset"), ("model", "Model"), ("training", "Training"),
                       ("write", "Write"), ("attention", "Attention")):
        window.show_panel(key)
        assert window.docks[key].isVisible()
        actions[f"View/{title}"].trigger()
        assert not window.docks[key].isVisible()
        actions[f"View/{title}"].trigger()
        assert window.docks[key].isVisible()


def test_about_shows_what_the_studio_is(qtbot, window):
    seen = _answer_dialog(lambda d: d.text())
    _actions(window)["Help/About TextGen Studio"].trigger()
    assert len(seen) == 1 and "TextGen Studio" in seen[0]


def test_quit_closes_the_window(qtbot, window):
    _press(qtbot, window, "Ctrl+Q")
    assert not window.isVisible()


def test_writing_before_training_says_what_to_press(qtbot, window, project):
    window.open_project(project.root)
    write = window.panels["write"]
    write.first_line.setText("晚风摇树树还挺")
    qtbot.mouseClick(write.write_button, Qt.MouseButton.LeftButton)
    assert "press Start in the Training panel" in write.error_text()
    assert "textgen" not in write.error_text()


def test_a_project_whose_corpus_moved_opens_without_a_stale_preview(window, project, couplet_files):
    dataset = window.panels["dataset"]
    dataset.load_files([str(NOVEL)])
    couplet_files[0].unlink()
    assert window.open_project(project.root)
    assert dataset.task() == "couplet" and dataset.paths() == [] and dataset.error_text() == ""
    assert dataset.info_box.isVisible()
