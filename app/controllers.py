"""Controllers that own the worker threads: one for training, one for generation.

They keep thread lifetimes out of the window: start, stop and wait, so that closing the app never
leaves a thread running.
"""

from __future__ import annotations

import logging
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, Qt, QThread, Signal

from app.workers import GenerationWorker, TrainingWorker, start_in_thread

log = logging.getLogger(__name__)


class TrainingController(QObject):
    """Start / pause / stop / resume training of one project in a worker thread.

    Pause and Stop both end the run after the current step with a checkpoint; ``finished`` carries
    which of them the user asked for as ``outcome["requested"]`` ("pause", "stop", "close" or None
    when the run ended by itself), so the window can offer Resume after a pause.
    """

    events = Signal(list)
    finished = Signal(dict)     # the worker's outcome plus "requested"
    failed = Signal(str)
    running_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker: TrainingWorker | None = None
        self.thread: QThread | None = None
        self.requested: str | None = None      # why the user ended the current run, if they did
        self.target_steps: int | None = None   # the ``steps`` the last run was started with

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.isRunning()

    def start(self, project_dir: str, **kwargs: Any) -> None:
        if self.running:
            return
        if self.thread is not None:           # the last run ended; its queued clean-up has not run
            self._ended(self.thread)
        worker = TrainingWorker(project_dir, **kwargs)
        self.requested, self.target_steps = None, kwargs.get("steps")
        worker.events.connect(self.events)
        worker.finished.connect(self._finished)
        worker.failed.connect(self.failed)
        self.worker = worker
        self.thread = thread = start_in_thread(worker)
        # direct: the thread must end even while the GUI thread is blocked waiting for it
        worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        worker.failed.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        # bound to this run's thread: by the time it is delivered a new run may own self.thread
        thread.finished.connect(lambda: self._ended(thread))
        self.running_changed.emit(True)

    def request_stop(self, reason: str = "stop") -> None:
        """End the run after the current step, saving a checkpoint; ``reason``: pause/stop/close."""
        if self.worker is not None and self.running:
            self.requested = reason
            self.worker.request_stop()

    def shutdown(self, timeout_ms: int = 60_000) -> bool:
        """Stop (saving a checkpoint) and wait for the thread; True when it ended."""
        if not self.running:
            return True
        self.request_stop("close")
        assert self.thread is not None
        ended = self.thread.wait(timeout_ms)
        if ended:
            self._ended(self.thread)
        return ended

    def _finished(self, outcome: dict[str, Any]) -> None:
        self.finished.emit({**outcome, "requested": self.requested})

    def _ended(self, thread: QThread) -> None:
        """Release a finished run's thread (once, however many times it is called)."""
        if not shiboken6.isValid(thread):
            return
        if thread is self.thread:
            self.thread, self.worker = None, None
            self.running_changed.emit(False)
        thread.deleteLater()


class GenerationController(QObject):
    """One generation worker per open project, living in its own thread.

    Writes and comparisons run one at a time (``busy``); attention requests queue behind them and
    never make the controller busy.
    """

    result = Signal(object)
    piece = Signal(str)
    compared = Signal(object)
    attention_ready = Signal(int, object)
    failed = Signal(str)
    done = Signal()
    _write = Signal(object)
    _compare = Signal(object)
    _attention = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker: GenerationWorker | None = None
        self.thread: QThread | None = None
        self.busy = False

    def open(self, project_dir: str, device: str = "auto") -> None:
        self.shutdown()
        worker = GenerationWorker(project_dir, device)
        for name in ("result", "piece", "compared", "attention_ready", "failed"):
            getattr(worker, name).connect(getattr(self, name))
        worker.done.connect(self._done)
        self._write.connect(worker.generate)
        self._compare.connect(worker.compare)
        self._attention.connect(worker.attention)
        self.worker = worker
        self.thread = start_in_thread(worker, entry=None)

    def generate(self, request: Any) -> bool:
        """Write for a :class:`~app.write_request.WriteRequest`; False when busy or closed."""
        return self._start(self._write, request)

    def compare(self, request: Any) -> bool:
        """Write a :class:`~app.write_request.CompareRequest`; False when busy or closed."""
        return self._start(self._compare, request)

    def attention(self, request: Any) -> None:
        """Ask for one hypothesis's attention; :attr:`attention_ready` answers with its key."""
        if self.worker is not None:
            self._attention.emit(request)

    def request_stop(self) -> None:
        if self.worker is not None:
            self.worker.request_stop()

    def shutdown(self) -> None:
        if self.thread is None:
            return
        self.request_stop()
        for signal in (self._write, self._compare, self._attention):
            signal.disconnect()
        self.thread.quit()
        self.thread.wait(30_000)
        self.thread.deleteLater()
        self.thread, self.worker, self.busy = None, None, False

    def _start(self, signal: Any, request: Any) -> bool:
        if self.worker is None or self.busy:
            return False
        self.busy = True
        signal.emit(request)
        return True

    def _done(self) -> None:
        self.busy = False
        self.done.emit()
