"""End the studio cleanly when the system asks it to: SIGTERM (logging out, ``kill``), SIGHUP (the
terminal went away) or Ctrl+C in the terminal that started it.

Like closing the window, such a request stops training after the current step, saves its checkpoint
and exits within seconds. Python runs a signal handler only when the interpreter gets control, which
a Qt event loop waiting for events never gives it; so the C-level handler also writes the signal
number to a socket (``signal.set_wakeup_fd``) whose other end a ``QSocketNotifier`` watches: the event
loop wakes, Python runs the handler, and the handler queues the window's quit path for the loop to
run next (never inside the handler itself, which may have interrupted any code).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QSocketNotifier, QTimer

log = logging.getLogger(__name__)

SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGINT") if hasattr(signal, name))


class TerminationWatcher(QObject):
    """Calls ``on_signal(signum)`` from the event loop when one of ``signals`` arrives."""

    def __init__(self, on_signal: Callable[[int], None], parent: QObject | None = None,
                 signals: tuple[int, ...] = SIGNALS) -> None:
        super().__init__(parent)
        self._on_signal = on_signal
        self._reader, self._writer = socket.socketpair()
        for end in (self._reader, self._writer):
            end.setblocking(False)
        self._old_fd = signal.set_wakeup_fd(self._writer.fileno())
        self._notifier = QSocketNotifier(self._reader.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._drain)
        self._old_handlers: dict[int, Any] = {sig: signal.signal(sig, self._handle) for sig in signals}
        self.received: list[int] = []

    def uninstall(self, *_: object) -> None:
        """Put back the handlers and wake-up socket there were before (once)."""
        if not self._old_handlers:
            return
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)
        self._old_handlers = {}
        signal.set_wakeup_fd(self._old_fd)
        with contextlib.suppress(RuntimeError):       # the notifier may be gone with its parent
            self._notifier.setEnabled(False)
        self._reader.close()
        self._writer.close()

    def _handle(self, signum: int, _frame: object) -> None:
        log.info("received %s", signal.Signals(signum).name)
        self.received.append(signum)
        QTimer.singleShot(0, lambda: self._on_signal(signum))

    def _drain(self) -> None:
        """Empty the wake-up socket; waking the loop was its only job."""
        with contextlib.suppress(OSError):
            while self._reader.recv(64):
                pass


def quit_on_termination(window: Any) -> TerminationWatcher:
    """Make SIGTERM, SIGHUP and Ctrl+C run ``window.quit_now()`` (see the module docstring)."""
    return TerminationWatcher(lambda _signum: window.quit_now(), parent=window)
