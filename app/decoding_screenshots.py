"""Screenshots of the Write panel's decoding views, driven through the real window.

``python -m app.decoding_screenshots PROJECT OUT_DIR`` opens a trained couplet project, writes a
couplet with beam search, clicks one of its characters to list the alternatives there, saves
``04-nbest-alternatives.png``, presses Compare and saves ``05-compare.png``. Prints one JSON line
(the outputs shown) and exits 0, or 1 with the reason. Run it under Xvfb for the screenshots in
``docs/screenshots`` (``xvfb-run -s "-screen 0 1400x900x24"``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication

from app.window import MainWindow

PROMPT = "晚风摇树树还挺"       # repeats 树树: the second line mirrors them
TOKEN = 2                      # the character whose alternatives are shown
SETTLE_MS = 400
TIMEOUT_S = 300


class Shots(QObject):
    def __init__(self, window: MainWindow, project: Path, out: Path) -> None:
        super().__init__(window)
        self.win, self.project, self.out = window, project, out
        self.report: dict[str, Any] = {"screenshots": []}
        self.exit_code = 1

    def start(self) -> None:
        self.win.when_loaded(self._open)
        QTimer.singleShot(TIMEOUT_S * 1000, lambda: self._fail(f"timed out after {TIMEOUT_S} s"))

    def _open(self) -> None:
        if not self.win.open_project(self.project):
            self._fail(f"could not open {self.project}")
            return
        self.win.show_panel("write")
        gen = self.win.generation
        gen.failed.connect(lambda message: self._fail(f"writing failed: {message}"))
        gen.result.connect(lambda _result: QTimer.singleShot(SETTLE_MS, self._written))
        gen.compared.connect(lambda _rows: QTimer.singleShot(SETTLE_MS, self._compared))
        panel = self.win.panels["write"]
        controls = panel.controls
        controls.strategy.setCurrentIndex(controls.strategy.findData("beam"))
        controls.beam_size.setValue(5)
        controls.n_best.setValue(5)
        controls.temperature.setValue(0.8)
        controls.top_k.setValue(40)
        panel.first_line.setText(PROMPT)
        QTimer.singleShot(SETTLE_MS, self._write)

    def _write(self) -> None:
        """After the window's own first layout: most of the width to the Write panel, then Write."""
        self.win.resizeDocks([self.win.docks["dataset"], self.win.docks["write"]], [380, 1020],
                             Qt.Orientation.Horizontal)
        self.win.panels["write"].write_button.click()

    def _written(self) -> None:
        panel = self.win.panels["write"]
        selection = panel.selection()
        if selection is None:
            self._fail("the beam search wrote nothing")
            return
        self.report["nbest"] = [(h.text, round(h.score, 3), h.tone) for h in selection.result.hypotheses]
        panel.tokens.select_token(TOKEN)
        panel.tokens.choices.setCurrentRow(1)
        self.report["alternatives"] = [(t, round(p, 4), w) for t, p, w in panel.tokens.alternatives()]
        QTimer.singleShot(SETTLE_MS, self._shoot_alternatives)

    def _shoot_alternatives(self) -> None:
        self._shoot("04-nbest-alternatives")
        self.win.panels["write"].compare_button.click()

    def _compared(self) -> None:
        view = self.win.panels["write"].compare_view
        self.report["compare"] = dict(zip(view.labels(), view.outputs()))
        self._shoot("05-compare")
        self.exit_code = 0
        self._quit()

    def _shoot(self, name: str) -> None:
        QApplication.processEvents()
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / f"{name}.png"
        self.win.grab().save(str(path))
        self.report["screenshots"].append(str(path))

    def _fail(self, reason: str) -> None:
        if self.exit_code == 0 or "error" in self.report:
            return
        self.report["error"] = reason
        self._quit()

    def _quit(self) -> None:
        print(json.dumps(self.report, ensure_ascii=False), flush=True)
        self.win.generation.shutdown()
        QTimer.singleShot(0, QApplication.instance().quit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.decoding_screenshots")
    parser.add_argument("project", type=Path, help="a trained couplet project")
    parser.add_argument("out", type=Path, help="folder for the PNG files")
    parser.add_argument("--size", default="1400x860", help="window size, WIDTHxHEIGHT")
    args = parser.parse_args(argv)

    from app.fonts import register_cjk_font

    app = QApplication.instance() or QApplication(sys.argv[:1])
    register_cjk_font(app)
    window = MainWindow()
    width, height = (int(n) for n in args.size.lower().split("x"))
    window.resize(width, height)
    window.show()
    shots = Shots(window, args.project, args.out)
    shots.start()
    app.exec()
    return shots.exit_code


if __name__ == "__main__":
    sys.exit(main())
