"""The main window (a first, minimal version: it opens a project and shows its summary)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox


class MainWindow(QMainWindow):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("TextGen Studio")
        self.resize(960, 640)
        self.summary = QLabel("Opening project…")
        self.summary.setMargin(24)
        self.setCentralWidget(self.summary)
        self.statusBar().showMessage("Ready")

    def open_project_later(self, folder: Path | None) -> None:
        """Open after the window is on screen (the core and torch load after it appears)."""
        QTimer.singleShot(0, lambda: self.open_project(folder))

    def open_project(self, folder: Path | None) -> None:
        from textgen_core.errors import TextGenError
        from textgen_core.project import Project
        from textgen_core.samples import ensure_sample_project

        try:
            project = Project.open(folder) if folder else ensure_sample_project("couplet")
            info = project.info()
        except TextGenError as exc:
            QMessageBox.critical(self, "TextGen Studio", str(exc))
            return
        self.setWindowTitle(f"TextGen Studio — {project.config.name}")
        ex = info["examples"]
        self.summary.setText(
            f"<h2>{project.config.name}</h2><p>Task: {info['task']}<br>Model: {info['model']}"
            f"<br>Examples: {ex['train']} train, {ex['valid']} valid, {ex['test']} test"
            f"<br>Vocabulary: {info['tokenizer']['vocab_size']}</p>"
        )
        self.statusBar().showMessage(str(project.root))
