"""Event-loop latency: how late the GUI thread serves a timer that should fire every 10 ms.

A responsive window serves it within a few milliseconds; a GUI thread busy with work (a training
step, a slow redraw) shows up as large delays. ``p99_ms`` is the 99th percentile of the delays.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Qt, QTimer

INTERVAL_MS = 10


class LatencyProbe(QObject):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.delays_ms: list[float] = []
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(INTERVAL_MS)
        self._timer.timeout.connect(self._tick)
        self._last = 0.0

    def start(self) -> None:
        self.delays_ms.clear()
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.delays_ms.append(max(0.0, (now - self._last) * 1000.0 - INTERVAL_MS))
        self._last = now

    def max_ms(self) -> float:
        return max(self.delays_ms, default=0.0)

    def p99_ms(self) -> float:
        if not self.delays_ms:
            return 0.0
        ordered = sorted(self.delays_ms)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
