"""The Qt binding the studio runs on must not corrupt the interpreter while it paints.

PySide6 6.12.0 drops a reference to ``None`` on every call of a void method (``QPainter.setPen``,
``save``, ...). On Python < 3.12, where ``None`` is not immortal, a window that repaints plots
aborts with "Fatal Python error: none_dealloc" after a few minutes of training. pyproject.toml
excludes those releases; this test fails if such a binding is installed anyway.
"""

from __future__ import annotations

import sys

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPainter


def test_void_calls_keep_none_alive(qapp) -> None:
    image = QImage(32, 32, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        before = sys.getrefcount(None)
        for _ in range(200):
            painter.setPen(Qt.GlobalColor.red)
            painter.save()
            painter.restore()
        lost = before - sys.getrefcount(None)
    finally:
        painter.end()
    assert lost < 50, f"the Qt binding lost {lost} references to None in 600 void calls"


def test_repainting_a_plot_keeps_none_alive(qtbot) -> None:
    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    curve = plot.plot([0, 1], [0, 1])
    plot.show()
    qtbot.waitExposed(plot)
    before = sys.getrefcount(None)
    for i in range(30):
        curve.setData([0, 1, 2, i + 3], [0, 1, 4, i])
        plot.grab()                    # a full paint of axes, grid and curve
    lost = before - sys.getrefcount(None)
    assert lost < 500, f"30 repaints of a plot lost {lost} references to None"
