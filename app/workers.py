"""Background work for the studio: training and generation in worker QObjects on QThreads.

The GUI thread never runs a training step or a decoding step. Workers call the core's plain
functions (``train_project``, ``Generator.generate``) and report through signals that carry plain
Python data — dicts, strings and dataclasses of numbers, never tensors. Training events are coalesced
to at most about ten signals a second; stops are requested through a thread-safe flag that the core
checks before every step.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

from app import heap
from app.stream_text import StreamDecoder

log = logging.getLogger(__name__)

EMIT_INTERVAL_S = 0.1                       # at most ~10 progress signals per second
URGENT = {"eval", "sample", "checkpoint", "finished", "stopped", "failed", "start", "config"}


class TrainingWorker(QObject):
    """Trains one project; see the module docstring."""

    events = Signal(list)            # list[dict]: a coalesced batch of training events
    finished = Signal(dict)          # {"status", "step", "best_val_loss", "run_id"}
    failed = Signal(str)             # a one-line message (the traceback goes to the log file)

    def __init__(self, project_dir: str, *, steps: int | None = None, device: str = "auto",
                 resume: bool = False, restart: bool = False,
                 overrides: list[str] | None = None) -> None:
        super().__init__()
        self.project_dir, self.steps, self.device = project_dir, steps, device
        self.resume, self.restart, self.overrides = resume, restart, list(overrides or [])
        self._stop = threading.Event()
        self._pending: list[dict[str, Any]] = []
        self._last_emit = 0.0
        self.emitted = 0                  # number of `events` signals sent (for tests)

    def request_stop(self) -> None:
        """Thread-safe: the run ends after the current step and saves a checkpoint."""
        self._stop.set()

    @Slot()
    def run(self) -> None:
        try:
            from textgen_core.errors import TextGenError
            from textgen_core.project import Project
            from textgen_core.training.run import train_project

            project = Project.open(self.project_dir)
            if self.overrides:
                project.config = project.config.with_overrides(self.overrides)
                project.validate_model()
                project.save_config()
            outcome = train_project(
                project, steps=self.steps, device=self.device, resume=self.resume,
                restart=self.restart, on_event=self._on_event, should_stop=self._stop.is_set,
            )
            self._flush()
            self.finished.emit({"status": outcome.status, "step": outcome.step,
                                "best_val_loss": outcome.best_val_loss, "run_id": outcome.run_id})
        except TextGenError as exc:
            self._flush()
            self.failed.emit(str(exc))
        except Exception as exc:  # a crash in the worker becomes a message, not a dead app
            self._flush()
            log.error("training crashed:\n%s", traceback.format_exc())
            self.failed.emit(f"training crashed: {type(exc).__name__}: {exc}")

    def _on_event(self, event: Any) -> None:
        """Takes a typed training event; the signal carries its metrics.jsonl object (a dict)."""
        data = event.to_json()
        if data["event"] == "config":    # model, batches and optimizer are built
            heap.freeze_long_lived()
        self._pending.append(data)
        now = time.monotonic()
        if data["event"] in URGENT or now - self._last_emit >= EMIT_INTERVAL_S:
            self._flush(now)

    def _flush(self, now: float | None = None) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self.events.emit(batch)
            self.emitted += 1
        self._last_emit = now if now is not None else time.monotonic()


class GenerationWorker(QObject):
    """Loads the project's model once and writes with it on request (see :mod:`app.write_request`).

    Streamed tokens are turned into text one token at a time (:class:`app.stream_text.StreamDecoder`);
    the result that follows carries the final text, which the panel shows in place of the stream.
    """

    result = Signal(object)          # textgen_core.generation.GenerationResult (numpy, no tensors)
    piece = Signal(str)              # streamed text, as it comes
    compared = Signal(object)        # list[CompareRow]
    attention_ready = Signal(int, object)   # (AttentionRequest.key, Attention or None)
    failed = Signal(str)
    done = Signal()

    def __init__(self, project_dir: str, device: str = "auto") -> None:
        super().__init__()
        self.project_dir, self.device = project_dir, device
        self._generator: Any = None
        self._loaded_from: tuple[str, float] | None = None
        self._stop = threading.Event()

    def request_stop(self) -> None:
        self._stop.set()

    @Slot(object)
    def generate(self, request: Any) -> None:
        """Write for a :class:`~app.write_request.WriteRequest`; streams when ``request.stream``."""
        self._stop.clear()
        with self._reporting("generation"):
            gen = self._load()
            decoder = StreamDecoder(gen.tgt_tok)

            def on_token(token: int) -> bool:
                if added := decoder.push(token):
                    self.piece.emit(added)
                return not self._stop.is_set()

            result = gen.generate(request.text, request.config, with_attention=True,
                                  on_token=on_token if request.stream else None,
                                  locks=request.locks or None, forced_prefix=request.forced_prefix)
            if rest := decoder.finish():
                self.piece.emit(rest)
            self.result.emit(result)

    @Slot(object)
    def compare(self, request: Any) -> None:
        """Write a :class:`~app.write_request.CompareRequest`'s input with each of its settings in
        turn; one settings' error (a sampling run that ends empty...) stays in its row."""
        from app.write_request import CompareRow
        from textgen_core.errors import TextGenError

        self._stop.clear()
        with self._reporting("comparison"):
            gen = self._load()
            rows = []
            for label, config in request.runs:
                if self._stop.is_set():
                    break
                try:
                    result = gen.generate(request.text, config, locks=request.locks or None)
                    rows.append(CompareRow(label, config, result))
                except TextGenError as exc:
                    if not rows:          # the input itself is refused: say so once, as a write does
                        raise
                    rows.append(CompareRow(label, config, error=str(exc)))
            self.compared.emit(rows)

    @Slot(object)
    def attention(self, request: Any) -> None:
        """The attention of one hypothesis (:class:`~app.write_request.AttentionRequest`)."""
        import torch

        try:
            gen = self._generator or self._load()     # the model that wrote the hypothesis
            with torch.inference_mode():
                found = gen.attention(list(request.prompt_ids), list(request.ids))
        except Exception as exc:             # the heatmap is a view: a failure is logged, not shown
            log.error("attention failed: %s\n%s", exc, traceback.format_exc())
            found = None
        self.attention_ready.emit(request.key, found)

    @contextmanager
    def _reporting(self, what: str) -> Iterator[None]:
        """Errors become :attr:`failed` (a one-line message); :attr:`done` always follows."""
        from textgen_core.errors import TextGenError

        try:
            yield
        except TextGenError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:
            log.error("%s crashed:\n%s", what, traceback.format_exc())
            self.failed.emit(f"{what} crashed: {type(exc).__name__}: {exc}")
        finally:
            self.done.emit()

    def _load(self) -> Any:
        """The best checkpoint, reloaded when training has written a newer one."""
        from textgen_core.generation import Generator
        from textgen_core.project import Project

        project = Project.open(self.project_dir)
        path = project.checkpoint_path("best")
        if not path.is_file():
            path = project.checkpoint_path("last")
        stamp = (str(path), path.stat().st_mtime if path.is_file() else 0.0)
        if self._generator is None or stamp != self._loaded_from:
            self._generator = Generator.from_project(project, device=self.device)
            heap.freeze_long_lived()
            self._loaded_from = stamp
        return self._generator


def start_in_thread(worker: QObject, entry: str | None = "run") -> QThread:
    """Move ``worker`` to a new QThread, start it, and clean both up when it ends."""
    thread = QThread()
    worker.moveToThread(thread)
    if entry is not None:
        thread.started.connect(getattr(worker, entry))
    # As its thread ends, the worker moves back to the GUI thread and is deleted there, with the
    # interpreter lock: deleted by the ending thread itself, its Python wrapper was torn down while
    # the GUI thread ran Python, a segmentation fault now and then (Resume right after Pause).
    gui = QCoreApplication.instance().thread()
    thread.finished.connect(lambda: worker.moveToThread(gui), Qt.ConnectionType.DirectConnection)
    thread.finished.connect(worker.deleteLater)      # queued to the GUI thread once moved there
    thread.start()
    return thread
