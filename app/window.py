"""The main window: dockable panels around one open project.

The window itself appears before torch is imported: ``build_panels`` (which imports the core and the
panels) runs from the event loop right after the first paint.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QWidget,
)

from app import heap
from app.controllers import GenerationController, TrainingController
from app.preload import Preloader
from app.window_actions import connect_panels, load_dropped_files, new_project_from_model

log = logging.getLogger(__name__)
MAX_RECENT = 8
PREVIEW_ROWS = 200           # rows of a project's training split shown when its corpus is not here


class MainWindow(QMainWindow):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("TextGen Studio")
        self.setObjectName("MainWindow")
        self._fit_to_screen(1280, 820)
        self.setAcceptDrops(True)
        self.settings = QSettings("TextGen Studio", "TextGen Studio")
        self.project: Any = None
        self.panels: dict[str, QWidget] = {}
        self.docks: dict[str, QDockWidget] = {}
        self.training = TrainingController(self)
        self.generation = GenerationController(self)
        self.preloader = Preloader(self)
        self._asked_to_quit = False
        self.placeholder = QLabel("Loading TextGen Studio…")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setCentralWidget(self.placeholder)
        self.device_label = QLabel("")
        self.statusBar().addPermanentWidget(self.device_label)
        self.statusBar().showMessage("Ready")
        self._build_menus()

    # ------------------------------------------------------------------ layout
    def _fit_to_screen(self, width: int, height: int) -> None:
        """Start at ``width`` x ``height``, or smaller on a small screen (the title bar, the task bar
        and the status bar must stay visible); a saved geometry replaces this later."""
        screen = self.screen().availableGeometry() if self.screen() else None
        if screen is not None and screen.width() > 0:
            width = min(width, screen.width() - 40)
            height = min(height, screen.height() - 60)
        self.resize(width, height)

    def build_panels(self) -> None:
        """Create the panels (imports the core and torch); called once, after the first paint."""
        if self.panels:
            return
        from app.panels.attention import AttentionPanel
        from app.panels.dataset import DatasetPanel
        from app.panels.model import ModelPanel
        from app.panels.training import TrainingPanel
        from app.panels.write import WritePanel

        specs = [
            ("dataset", "Dataset", DatasetPanel(), Qt.DockWidgetArea.LeftDockWidgetArea),
            ("model", "Model", ModelPanel(), Qt.DockWidgetArea.LeftDockWidgetArea),
            ("training", "Training", TrainingPanel(), Qt.DockWidgetArea.RightDockWidgetArea),
            ("write", "Write", WritePanel(), Qt.DockWidgetArea.RightDockWidgetArea),
            ("attention", "Attention", AttentionPanel(), Qt.DockWidgetArea.RightDockWidgetArea),
        ]
        self.takeCentralWidget()
        self.setDockNestingEnabled(True)
        for key, title, panel, area in specs:
            dock = QDockWidget(title, self)
            dock.setObjectName(f"dock-{key}")
            dock.setWidget(panel)
            self.addDockWidget(area, dock)
            self.panels[key], self.docks[key] = panel, dock
            self.view_menu.addAction(dock.toggleViewAction())
        self.tabifyDockWidget(self.docks["dataset"], self.docks["model"])
        self.tabifyDockWidget(self.docks["training"], self.docks["write"])
        self.tabifyDockWidget(self.docks["write"], self.docks["attention"])
        self.show_panel("dataset")
        self.show_panel("training")
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state)
        else:   # first start: the writing and training side gets most of the room
            QTimer.singleShot(0, lambda: self.resizeDocks(
                [self.docks["dataset"], self.docks["training"]], [380, 900],
                Qt.Orientation.Horizontal))
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        connect_panels(self)
        from textgen_core.devices import resolve_device

        self.device_label.setText(f"device: {resolve_device('auto')}")
        heap.freeze_long_lived()           # torch and the panels are loaded: see app/heap.py

    def when_loaded(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once torch and the core are loaded (in the background) and the panels
        are built; the window stays responsive meanwhile."""
        def built() -> None:
            self.build_panels()
            callback()

        self.placeholder.setText("Loading TextGen Studio (PyTorch)…")
        self.preloader.then(built)

    def show_panel(self, key: str) -> None:
        self.docks[key].show()
        self.docks[key].raise_()

    # ------------------------------------------------------------------ menus
    def _build_menus(self) -> None:
        menu = self.menuBar().addMenu("&File")
        self._add_action(menu, "&New project from corpus…", QKeySequence.StandardKey.New,
                         self.new_project)
        self._add_action(menu, "New project from this &model…", None,
                         lambda: new_project_from_model(self))
        self._add_action(menu, "&Open project…", QKeySequence.StandardKey.Open,
                         self.choose_project)
        self._add_action(menu, "Open the &sample project (learn how it works)", None,
                         self.open_sample_project)
        self._add_action(menu, "&Save project", QKeySequence.StandardKey.Save, self.save_project)
        self.recent_menu = menu.addMenu("Open &recent")
        self._refresh_recent()
        menu.addSeparator()
        # Ctrl+Q (Cmd+Q on macOS) everywhere: the platform's standard Quit key is empty on Windows
        self._add_action(menu, "&Quit", QKeySequence("Ctrl+Q"), self.close)
        self.view_menu = self.menuBar().addMenu("&View")
        help_menu = self.menuBar().addMenu("&Help")
        self._add_action(help_menu, "&About TextGen Studio", None, self._about)

    def _add_action(self, menu: Any, text: str, shortcut: Any, slot: Any) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        for folder in self.recent_projects():
            action = self.recent_menu.addAction(folder)
            action.triggered.connect(lambda _=False, f=folder: self.open_project(Path(f)))
        self.recent_menu.setEnabled(bool(self.recent_projects()))

    def recent_projects(self) -> list[str]:
        value = self.settings.value("recent", [])
        items = [value] if isinstance(value, str) else list(value or [])
        return [f for f in items if Path(f, "project.toml").is_file()]

    def _remember(self, folder: Path) -> None:
        items = [str(folder)] + [f for f in self.recent_projects() if f != str(folder)]
        self.settings.setValue("recent", items[:MAX_RECENT])
        self._refresh_recent()

    def _about(self) -> None:
        """Help ▸ About: version, where the user's data lives, licences of the bundled parts."""
        from app.about import about_html
        from app.icon import app_icon

        box = QMessageBox(self)
        box.setWindowTitle("About TextGen Studio")
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(about_html())
        box.setStyleSheet("QLabel#qt_msgbox_label { min-width: 640px; }")  # a path on one line
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)  # copy a path
        icon = app_icon()
        if not icon.isNull():
            box.setIconPixmap(icon.pixmap(64, 64))
        box.exec()

    # ------------------------------------------------------------------ projects
    def open_project_later(self, folder: Path | None) -> None:
        """Build the panels and open a project once the window is on screen."""
        self.when_loaded(lambda: self.open_project(folder))

    def choose_project(self) -> None:
        folder = self.ask_for_project_folder()
        if folder:
            self.open_project(Path(folder))

    def ask_for_project_folder(self) -> str:
        """File ▸ Open's folder dialog, starting in the projects folder (tests replace it)."""
        from textgen_core.samples import user_projects_dir

        return QFileDialog.getExistingDirectory(self, "Open project folder", str(user_projects_dir()))

    def ask_for_corpus_files(self) -> list[str]:
        """The corpus files of a new project (tests replace it)."""
        return QFileDialog.getOpenFileNames(self, "Corpus files (one TSV, or first and second lines)")[0]

    def ask_for_new_project_folder(self, suggested: Path) -> str:
        """The folder a new project goes into: a save dialog at ``suggested`` (tests replace it)."""
        return QFileDialog.getSaveFileName(self, "New project folder", str(suggested))[0]

    def new_project(self) -> None:
        """File ▸ New: choose corpus files in the Dataset panel, then "Create project…" there."""
        self.build_panels()
        self.show_panel("dataset")
        self.panels["dataset"].choose_files()

    def open_sample_project(self) -> bool:
        """The untrained sample couplet project: train it to see how the studio works."""
        from textgen_core.errors import TextGenError
        from textgen_core.samples import ensure_sample_project

        try:
            return self.open_project(ensure_sample_project("couplet").root)
        except TextGenError as exc:
            self.error(str(exc))
            return False

    def open_project(self, folder: Path | None) -> bool:
        """Open ``folder`` (or the ready-to-write couplet model, else the sample couplet project);
        errors become a dialog."""
        from textgen_core.errors import TextGenError
        from textgen_core.project import Project
        from textgen_core.samples import ensure_start_project

        self.build_panels()
        if self.training.running:
            self.error("Stop training before opening another project.")
            return False
        try:
            self.statusBar().showMessage("Opening project…")
            project = Project.open(folder) if folder else ensure_start_project("couplet")
            info = project.info()
            runs = {run: project.read_metrics(run) for run in project.run_ids()}
            sources = [f for f in project.config.sources if Path(f).is_file()]
            complete = bool(sources) and len(sources) == len(project.config.sources)
            split = [] if complete or project.config.task == "continuation" else project.load_pairs("train")
        except TextGenError as exc:
            self.error(str(exc))
            self.statusBar().showMessage("Ready")
            return False
        self.project = project
        self.setWindowTitle(f"TextGen Studio — {project.config.name}")
        self._remember(project.root)
        cfg = project.config
        p = self.panels
        p["dataset"].load_files(sources if complete else [], task=cfg.task)   # preview of its corpus
        if split:
            p["dataset"].show_split_preview(
                [(x.source, x.target) for x in split[:PREVIEW_ROWS]], [len(x.source) for x in split],
                f"The project's training split ({len(split):,} pairs; its corpus files are not here)")
        p["dataset"].show_project_info(info)
        p["model"].set_task(cfg.task)
        p["model"].set_vocab_size(info["tokenizer"]["vocab_size"], info["tokenizer"]["tgt_vocab_size"])
        p["model"].load_settings(cfg.model_name, dict(cfg.model), dataclasses.asdict(cfg.train))
        p["training"].reset(cfg.train.steps)
        p["training"].show_history(runs)
        resumable = project.checkpoint_path("last").is_file()
        if resumable:
            p["training"].show_saved(runs)
        p["training"].set_can_resume(resumable)
        p["training"].set_state("idle")
        p["write"].set_task(cfg.task)
        p["write"].set_defaults(cfg.generate)
        p["attention"].show_attention(None)
        self.generation.open(str(project.root))
        if project.checkpoint_path("best").is_file():     # a model to write with: Write comes first
            self.show_panel("write")
        self.statusBar().showMessage(f"Opened {project.root}")
        return True

    def save_project(self) -> bool:
        """Write the model panel's settings into project.toml; False (and a dialog) if invalid."""
        if self.project is None:
            return False
        from textgen_core.errors import TextGenError

        before = self.project.config
        try:
            self.project.config = before.with_overrides(self.panels["model"].overrides())
            self.project.validate_model()
            self.project.save_config()
        except TextGenError as exc:
            self.project.config = before
            self.error(str(exc))
            return False
        self.statusBar().showMessage(f"Saved {self.project.config_path}")
        return True

    def error(self, message: str) -> None:
        log.error("%s", message)
        QMessageBox.critical(self, "TextGen Studio", message)

    # ------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and all(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            return
        self.build_panels()
        if len(paths) == 1 and Path(paths[0], "project.toml").is_file():
            self.open_project(Path(paths[0]))
        else:
            self.show_panel("dataset")
            load_dropped_files(self, paths[:2])
        event.acceptProposedAction()

    # ------------------------------------------------------------------ closing
    def quit_now(self) -> None:
        """Close without asking (the session ends, or the process was told to stop): training
        stops after the current step and saves its checkpoint, then the studio exits."""
        log.info("asked to quit: closing the studio")
        self._asked_to_quit = True
        self.close()
        QApplication.quit()            # also ends the loop of a dialog that may be open

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.training.running and not self._asked_to_quit:
            answer = QMessageBox.question(
                self, "TextGen Studio",
                "Training is running. Stop it, save a checkpoint and quit?",
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        if self.training.running:
            self.statusBar().showMessage("Stopping training and saving a checkpoint…")
            self.training.shutdown()
        self.generation.shutdown()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        event.accept()
