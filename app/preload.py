"""Load torch and the core off the GUI thread while the window is already on screen.

Importing torch takes one to two seconds; done on the GUI thread it would freeze the window that
was just shown. A plain Python thread imports the heavy modules instead; the GUI thread polls it
with a timer and builds the panels once everything is loaded (the imports are then instant).
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

log = logging.getLogger(__name__)

HEAVY_MODULES = ("torch", "textgen_core.models", "textgen_core.training.run",
                 "textgen_core.generation", "textgen_core.devices")
POLL_MS = 30


class Preloader(QObject):
    """Imports :data:`HEAVY_MODULES` once, in a background thread; ``then(callback)`` runs
    ``callback`` on the GUI thread as soon as they are loaded (at once if they already are)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = threading.Thread(target=self._load, name="textgen-preload", daemon=True)
        self._waiting: list[Callable[[], None]] = []
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)

    def then(self, callback: Callable[[], None]) -> None:
        done = self._thread.ident is not None and not self._thread.is_alive()
        if done and not self._waiting:
            callback()                                  # loaded (or failed) already
            return
        self._waiting.append(callback)
        if self._thread.ident is None:
            self._thread.start()
            self._timer.start()

    def _load(self) -> None:
        for name in HEAVY_MODULES:
            try:
                importlib.import_module(name)
            except Exception:   # the GUI thread imports it again and reports the real error
                log.exception("could not preload %s", name)
                return

    def _poll(self) -> None:
        if self._thread.is_alive():
            return
        self._timer.stop()
        waiting, self._waiting = self._waiting, []
        for callback in waiting:
            callback()
