"""What the window does when a panel asks for something: create, train, write, show attention."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtWidgets import QMessageBox

if TYPE_CHECKING:
    from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

    from app.controllers import GenerationController, TrainingController

log = logging.getLogger(__name__)
NOT_TRAINED = "This project has no trained model yet: press Start in the Training panel first."
STILL_WRITING = "The model is still writing; try again when it has finished."
NOT_TRAINED_RUNNING = ("Training has not saved a model yet; it does at its first evaluation. "
                       "Write again after that.")


class StudioWindow(Protocol):
    """What these actions use of the studio's main window (:class:`app.window.MainWindow`, which
    imports this module to connect its panels)."""

    panels: dict[str, Any]
    project: Any
    training: TrainingController
    generation: GenerationController
    device_label: QLabel

    def window(self) -> QWidget: ...
    def statusBar(self) -> QStatusBar: ...
    def error(self, message: str) -> None: ...
    def save_project(self) -> bool: ...
    def open_project(self, folder: Path | None) -> bool: ...
    def ask_for_new_project_folder(self, suggested: Path) -> str: ...
    def ask_for_corpus_files(self) -> list[str]: ...
    def build_panels(self) -> None: ...


def connect_panels(win: StudioWindow) -> None:
    p = win.panels
    train = p["training"]
    train.start_requested.connect(lambda: start_training(win, resume=False))
    train.resume_requested.connect(lambda: start_training(win, resume=True))
    train.pause_requested.connect(lambda: pause_training(win))
    train.stop_requested.connect(lambda: stop_training(win))
    win.training.events.connect(lambda events: on_training_events(win, events))
    win.training.finished.connect(lambda outcome: on_training_finished(win, outcome))
    win.training.failed.connect(lambda message: on_training_failed(win, message))

    write = p["write"]
    write.generate_requested.connect(lambda request: request_generation(win, request))
    write.compare_requested.connect(lambda request: request_comparison(win, request))
    write.hypothesis_selected.connect(lambda selection: show_hypothesis_attention(win, selection))
    write.stop_requested.connect(win.generation.request_stop)
    win.generation.piece.connect(write.append_stream)
    win.generation.result.connect(lambda result: on_generation_result(win, result))
    win.generation.compared.connect(write.show_comparison)
    win.generation.attention_ready.connect(lambda key, found: on_attention_ready(win, key, found))
    win.generation.failed.connect(lambda message: on_generation_failed(win, message))
    win.generation.done.connect(lambda: write.set_busy(False))

    p["model"].apply_requested.connect(lambda: apply_model_settings(win))
    p["dataset"].create_requested.connect(
        lambda task, paths, swap: create_project(win, task, paths, swap))
    p["dataset"].task_changed.connect(lambda task: _model_follows_task(win, task))


def _model_follows_task(win: StudioWindow, task: str) -> None:
    """With no project open, the Model panel offers the architectures of the task the Dataset panel
    shows (its settings are for the project created next); otherwise it keeps the open project's."""
    if win.project is None:
        win.panels["model"].set_task(task)


# ---------------------------------------------------------------------- training
def apply_model_settings(win: StudioWindow) -> None:
    """The model panel's Apply: save its settings into the open project (or keep them for a new one)."""
    if win.project is None:
        win.statusBar().showMessage("These settings will be used for the project you create next.")
        return
    if not win.save_project():
        return
    if win.training.running:
        note = "the run in progress keeps its settings; they apply from the next Start"
    elif win.project.checkpoint_path("last").is_file():
        note = "Resume continues the trained model as it is; Start trains one with these settings"
    else:
        note = "Start trains with these settings"
    win.statusBar().showMessage(f"Model settings saved to {win.project.config_path.name}: {note}.")


def start_training(win: StudioWindow, *, resume: bool, steps: int | None = None) -> None:
    if win.project is None or win.training.running:
        return
    restart = False
    trained = any(win.project.checkpoint_path(w).is_file() for w in ("last", "best"))
    if not resume and trained:
        answer = QMessageBox.question(
            win.window(), "TextGen Studio",
            "This project already has a trained model. Start over from scratch and replace it?\n\n"
            "(To fine-tune it on your own corpus instead, use File ▸ New project from this model.)",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        restart = True
    model = win.panels["model"]
    overrides = model.overrides()
    if resume and steps is None:
        steps = win.training.target_steps        # a paused run goes on to the target it had
    if not resume:
        target = steps or _target_steps(win, overrides)
        win.panels["training"].reset(target)
    win.panels["training"].set_state("running")
    win.training.start(str(win.project.root), steps=steps, device=model.device(), resume=resume,
                       restart=restart, overrides=overrides)


def _target_steps(win: StudioWindow, overrides: list[str]) -> int:
    for item in overrides:
        if item.startswith("train.steps="):
            return int(item.split("=", 1)[1])
    return win.project.config.train.steps


def pause_training(win: StudioWindow) -> None:
    win.training.request_stop("pause")
    win.panels["training"].set_state("paused")
    win.statusBar().showMessage("Pausing after this step…")


def stop_training(win: StudioWindow) -> None:
    win.training.request_stop("stop")
    win.statusBar().showMessage("Stopping after this step…")


def on_training_events(win: StudioWindow, events: list[dict[str, Any]]) -> None:
    panel = win.panels["training"]
    panel.add_events(events)
    for event in events:
        if event["event"] == "config":
            win.device_label.setText(f"device: {event['device']}")
    win.statusBar().showMessage(panel.status_text())


def on_training_finished(win: StudioWindow, outcome: dict[str, Any]) -> None:
    panel = win.panels["training"]
    paused = outcome["status"] == "stopped" and outcome.get("requested") == "pause"
    panel.set_can_resume(True)
    panel.set_state("paused" if paused else "finished")
    panel.redraw_now()
    win.statusBar().showMessage(f"Training {outcome['status']} at step {outcome['step']}")


def on_training_failed(win: StudioWindow, message: str) -> None:
    win.panels["training"].set_state("idle")
    win.error(message)


# ---------------------------------------------------------------------- writing
def _can_write(win: StudioWindow) -> bool:
    """A project with a trained model is open; otherwise the Write panel says why not."""
    if win.project is None:
        return False
    if not any(win.project.checkpoint_path(which).is_file() for which in ("best", "last")):
        win.panels["write"].show_error(NOT_TRAINED_RUNNING if win.training.running else NOT_TRAINED)
        return False
    return True


def request_generation(win: StudioWindow, request: Any) -> None:
    """The Write panel's :class:`~app.write_request.WriteRequest` (a write or a branch)."""
    if _can_write(win):
        _started(win, win.generation.generate(request))


def request_comparison(win: StudioWindow, request: Any) -> None:
    """The Write panel's Compare: the same input with greedy, beam search and sampling."""
    if _can_write(win):
        _started(win, win.generation.compare(request))


def _started(win: StudioWindow, started: bool) -> None:
    if started:
        win.panels["write"].set_busy(True)
    else:
        win.panels["write"].show_error(STILL_WRITING)


def on_generation_result(win: StudioWindow, result: Any) -> None:
    """Show a result; the Write panel then selects its best hypothesis, whose attention the
    Attention panel shows (:func:`show_hypothesis_attention`)."""
    win.panels["write"].show_result(result)


def show_hypothesis_attention(win: StudioWindow, selection: Any) -> None:
    """The Attention panel follows the hypothesis the Write panel shows: the first one's attention
    came with the result; any other's is computed in the worker thread."""
    from app.write_request import AttentionRequest

    result, index = selection.result, selection.index
    panel = win.panels["attention"]
    if result.no_attention:                         # a model without attention: say so
        panel.show_attention(None, result.no_attention)
    elif index == 0 and result.attention is not None:
        panel.show_attention(result.attention)
    else:
        win.generation.attention(AttentionRequest(selection.key, list(result.prompt_ids),
                                                  list(selection.candidate.ids)))


def on_attention_ready(win: StudioWindow, key: int, attention: Any) -> None:
    """A hypothesis's attention arrived; shown if that hypothesis is still the one selected."""
    selection = win.panels["write"].selection()
    if selection is not None and selection.key == key:
        win.panels["attention"].show_attention(attention)


def on_generation_failed(win: StudioWindow, message: str) -> None:
    win.panels["write"].show_error(message)


# ---------------------------------------------------------------------- projects
def load_dropped_files(win: StudioWindow, paths: list[str]) -> None:
    """Preview corpus files dropped on the window; a file that cannot be read gets a dialog too
    (the person dropped it anywhere on the window and may not be looking at the dataset panel)."""
    panel = win.panels["dataset"]

    def parsed() -> None:
        panel.parsed.disconnect(parsed)
        if panel.error_text():
            win.error(panel.error_text())

    panel.parsed.connect(parsed)
    panel.load_files(paths)


def create_project(win: StudioWindow, task: str, paths: list[str], swap: bool) -> None:
    from textgen_core.errors import TextGenError
    from textgen_core.project import Project

    folder = win.ask_for_new_project_folder(suggested_project_folder(task))
    if not folder:
        return
    name, overrides = new_project_model(win, task)
    overrides += ["data.swap=true"] if swap else []
    try:
        win.statusBar().showMessage("Creating project (training the tokenizer)…")
        project = Project.create(folder, task, paths, model=name, overrides=overrides)
    except TextGenError as exc:
        win.error(str(exc))
        return
    win.open_project(project.root)


def new_project_from_model(win: StudioWindow) -> bool:
    """File ▸ New project from this model: the open project's tokenizer and weights, the user's
    corpus; the new project opens ready to fine-tune (see textgen_core.project_from)."""
    from textgen_core.errors import TextGenError
    from textgen_core.project_from import base_checkpoint, create_from

    win.build_panels()
    base = win.project
    if base is None:
        win.error("Open a trained project first: its model is where the new project starts.")
        return False
    if win.training.running:
        win.error("Stop training before starting a project from this model.")
        return False
    try:
        base_checkpoint(base)
    except TextGenError as exc:
        win.error(f"{exc}. Train it in the Training panel, or open a trained project.")
        return False
    paths = win.ask_for_corpus_files()
    if not paths:
        return False
    folder = win.ask_for_new_project_folder(suggested_project_folder(f"{base.config.name}-tuned"))
    if not folder:
        return False
    try:
        win.statusBar().showMessage(f"Creating a project from the model of {base.config.name}…")
        project, report = create_from(folder, base.root, paths[:2])
    except TextGenError as exc:
        win.error(str(exc))
        return False
    if not win.open_project(project.root):
        return False
    message = (f"{project.root.name} starts from the model of {base.config.name}: press Start in the "
               f"Training panel to fine-tune it on your corpus. {report.message().capitalize()}.")
    win.statusBar().showMessage(message)
    box = QMessageBox(QMessageBox.Icon.Information, "New project from this model", message,
                      parent=win.window())
    box.open()                      # not modal: the studio stays usable
    return True


def new_project_model(win: StudioWindow, task: str) -> tuple[str | None, list[str]]:
    """The architecture and settings of a new ``task`` project: the Model panel's when it shows an
    architecture for that task (the open project's, or one the user picked), else the task's
    default (None) with its default settings."""
    from textgen_core import models

    model = win.panels["model"]
    name, _, _ = model.settings()
    if model.task() != task or not name or task not in models.get_spec(name).tasks:
        return None, []
    return name, model.overrides()


def suggested_project_folder(stem: str) -> Path:
    """A new folder in the projects folder (where the sample projects live): ``<stem>-project``
    (``<task>-project`` for a new corpus), or ``<stem>-project-2`` and so on when that exists."""
    from textgen_core.samples import user_projects_dir

    base = user_projects_dir()
    base.mkdir(parents=True, exist_ok=True)
    folder, n = base / f"{stem}-project", 1
    while folder.exists():
        n += 1
        folder = base / f"{stem}-project-{n}"
    return folder
