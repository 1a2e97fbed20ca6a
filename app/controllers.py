"""Controllers that own the worker threads: one for training, one for generation.

They keep thread lifetimes out of the window: start, stop and wait, so that closing the app never
leaves a thread running.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal

from app.workers import GenerationWorker, TrainingWorker, start_in_thread

log = logging.getLogger(__name__)


class TrainingController(QObject):
    """Start / pause / stop / resume training of one project in a worker thread."""

    events = Signal(list)
    finished = Signal(dict)
    failed = Signal(str)
    running_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker: TrainingWorker | None = None
        self.thread: QThread | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.isRunning()

    def start(self, project_dir: str, **kwargs: Any) -> None:
        if self.running:
            return
        worker = TrainingWorker(project_dir, **kwargs)
        worker.events.connect(self.events)
        worker.finished.connect(self.finished)
        worker.failed.connect(self.failed)
        self.worker = worker
        self.thread = start_in_thread(worker)
        # direct: the thread must end even while the GUI thread is blocked waiting for it
        worker.finished.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)
        worker.failed.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)
        self.thread.finished.connect(self._ended)
        self.running_changed.emit(True)

    def request_stop(self) -> None:
        if self.worker is not None and self.running:
            self.worker.request_stop()

    def shutdown(self, timeout_ms: int = 60_000) -> bool:
        """Stop (saving a checkpoint) and wait for the thread; True when it ended."""
        if not self.running:
            return True
        self.request_stop()
        assert self.thread is not None
        ended = self.thread.wait(timeout_ms)
        if ended:
            self._ended()
        return ended

    def _ended(self) -> None:
        if self.thread is None:
            return
        self.thread.deleteLater()
        self.thread, self.worker = None, None
        self.running_changed.emit(False)


class GenerationController(QObject):
    """One generation worker per open project, living in its own thread."""

    result = Signal(object)
    piece = Signal(str)
    failed = Signal(str)
    done = Signal()
    _request = Signal(str, object, bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker: GenerationWorker | None = None
        self.thread: QThread | None = None
        self.busy = False

    def open(self, project_dir: str, device: str = "auto") -> None:
        self.shutdown()
        worker = GenerationWorker(project_dir, device)
        worker.result.connect(self.result)
        worker.piece.connect(self.piece)
        worker.failed.connect(self.failed)
        worker.done.connect(self._done)
        self._request.connect(worker.generate)
        self.worker = worker
        self.thread = start_in_thread(worker, entry=None)

    def generate(self, text: str, config: Any, stream: bool = False) -> None:
        if self.worker is None or self.busy:
            return
        self.busy = True
        self._request.emit(text, config, stream)

    def request_stop(self) -> None:
        if self.worker is not None:
            self.worker.request_stop()

    def shutdown(self) -> None:
        if self.thread is None:
            return
        self.request_stop()
        self._request.disconnect()
        self.thread.quit()
        self.thread.wait(30_000)
        self.thread.deleteLater()
        self.thread, self.worker, self.busy = None, None, False

    def _done(self) -> None:
        self.busy = False
        self.done.emit()
