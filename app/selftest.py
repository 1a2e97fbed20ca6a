"""``textgen-studio --self-test``: the real window through training, writing and attention.

Stages, each driven through the same code paths a user's clicks take: open a fresh copy of the
bundled sample couplet project, train it for a few dozen steps in the worker thread while measuring
the GUI event loop's latency, write a couplet, show its attention. A screenshot of each stage goes to
``--screenshots DIR``. Prints one JSON line and exits 0, or non-zero with the reason.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication

from app import window_actions
from app.latency import LatencyProbe
from app.window import MainWindow

TIMEOUT_S = 600
PROMPT = "春风得意花千树"
SETTLE_MS = 300


class SelfTest(QObject):
    def __init__(self, window: MainWindow, screenshots: Path | None, steps: int,
                 visible_s: float) -> None:
        super().__init__(window)
        self.win, self.steps = window, steps
        self.shots_dir = screenshots
        self.report: dict[str, Any] = {"steps": 0, "screenshots": [],
                                       "window_visible_s": round(visible_s, 2)}
        self.exit_code = 1
        self.probe = LatencyProbe(self)
        self.tmp = tempfile.TemporaryDirectory(prefix="textgen-selftest-")
        self.started = time.perf_counter()

    def start(self) -> None:
        QTimer.singleShot(0, self._open)
        QTimer.singleShot(TIMEOUT_S * 1000, lambda: self._fail(f"timed out after {TIMEOUT_S} s"))

    # ------------------------------------------------------------------ stages
    def _open(self) -> None:
        self.win.when_loaded(self._loaded)

    def _loaded(self) -> None:
        from textgen_core.samples import ensure_sample_project

        try:
            project = ensure_sample_project("couplet", root=Path(self.tmp.name))
        except Exception as exc:
            self._fail(f"could not create the sample project: {exc}")
            return
        if not self.win.open_project(project.root):
            self._fail("could not open the sample project")
            return
        self.win.training.finished.connect(self._trained)
        self.win.training.failed.connect(lambda m: self._fail(f"training failed: {m}"))
        self.win.show_panel("training")
        self._start_when_settled()

    def _start_when_settled(self) -> None:
        """Press Start as a person would: once the dataset preview has loaded and the training
        panel has been painted (a click comes hundreds of milliseconds after a panel appears)."""
        if self.win.panels["dataset"].is_busy():
            QTimer.singleShot(50, self._start_when_settled)
            return
        QTimer.singleShot(SETTLE_MS, self._start_training)

    def _start_training(self) -> None:
        self.probe.start()
        window_actions.start_training(self.win, resume=False, steps=self.steps)

    def _trained(self, outcome: dict[str, Any]) -> None:
        self.probe.stop()
        self.report["steps"] = outcome["step"]
        self.report["event_loop_p99_ms"] = round(self.probe.p99_ms(), 1)
        self.report["event_loop_max_ms"] = round(self.probe.max_ms(), 1)
        self.report["event_loop_samples"] = len(self.probe.delays_ms)
        self.report["best_val_loss"] = round(outcome["best_val_loss"], 4)
        self.win.panels["training"].redraw_now()
        self._shoot("01-training")
        self.win.show_panel("write")
        gen = self.win.generation
        gen.result.connect(self._written)
        gen.failed.connect(lambda m: self._fail(f"generation failed: {m}"))
        panel = self.win.panels["write"]
        panel.first_line.setText(PROMPT)
        panel.write_button.click()                 # the path a user's click takes

    def _written(self, result: Any) -> None:
        if not result.hypotheses:
            self._fail("generation returned no hypotheses")
            return
        self.report["couplet"] = {"first": result.prompt, "second": result.hypotheses[0].text}
        if len(result.hypotheses[0].text) != len(result.prompt):
            self._fail("the generated line does not have the input's length")
            return
        QTimer.singleShot(200, self._shoot_writing)

    def _shoot_writing(self) -> None:
        self._shoot("02-writing")
        self.win.show_panel("attention")
        if self.win.panels["attention"].current_matrix() is None:
            self._fail("the attention panel shows no heatmap")
            return
        QTimer.singleShot(200, self._finish)

    def _finish(self) -> None:
        self._shoot("03-attention")
        self.exit_code = 0
        self.report["ok"] = True
        self._quit()

    # ------------------------------------------------------------------ helpers
    def _shoot(self, name: str) -> None:
        if self.shots_dir is None:
            return
        QApplication.processEvents()
        self.shots_dir.mkdir(parents=True, exist_ok=True)
        path = self.shots_dir / f"{name}.png"
        self.win.grab().save(str(path))
        self.report["screenshots"].append(str(path))

    def _fail(self, reason: str) -> None:
        if self.exit_code == 0 or self.report.get("error"):
            return
        self.report["ok"] = False
        self.report["error"] = reason
        self.exit_code = 1
        self._quit()

    def _quit(self) -> None:
        self.report["seconds"] = round(time.perf_counter() - self.started, 1)
        print(json.dumps(self.report, ensure_ascii=False), flush=True)
        if self.exit_code:
            print(f"self-test failed: {self.report['error']}", file=sys.stderr, flush=True)
        self.win.training.shutdown()
        self.win.generation.shutdown()
        QTimer.singleShot(0, QApplication.instance().quit)
