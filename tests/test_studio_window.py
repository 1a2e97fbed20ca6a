"""The studio's entry point opens a real window on a project."""

from __future__ import annotations

from app.window import MainWindow
from textgen_core.project import Project


def test_window_opens_a_project(qtbot, couplet_files, tmp_path):
    project = Project.create(tmp_path / "demo", "couplet", couplet_files)
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    assert window.windowTitle() == "TextGen Studio"
    window.open_project(project.root)
    assert window.windowTitle() == "TextGen Studio — demo"
    assert "couplet" in window.summary.text()
