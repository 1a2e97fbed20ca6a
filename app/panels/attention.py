"""Where the model looked: a heatmap of the attention of the last generated output.

Rows are the queries (the generated tokens, top to bottom in reading order), columns the keys (the
input for cross-attention, the text itself for a language model's self-attention). A layer and a
head (or the average of the heads) are chosen with two combo boxes; hovering a cell tells its value.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QStackedWidget, QVBoxLayout, QWidget

from textgen_core.generation import Attention

PLACEHOLDER = "Generate something to see where the model looks."
AVERAGE = "Average of heads"
_VISIBLE = {"\n": "↵", " ": "␣", "\t": "⇥", "": "∅"}
_HOVER_HINT = "Point at a cell to see its weight."


def token_label(token: str) -> str:
    """A visible, short label for a token (newlines and spaces shown as symbols)."""
    if token in _VISIBLE:
        return _VISIBLE[token]
    label = token.replace("\n", "↵").replace("\t", "⇥")
    return label if len(label) <= 12 else label[:11] + "…"


class AttentionPanel(QWidget):
    """Heatmap of :class:`~textgen_core.generation.Attention` weights with layer/head choice."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._attention: Attention | None = None
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        self._qlabels: list[str] = []
        self._klabels: list[str] = []
        self._hover = ""

        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("Which layer's attention to show (1 = closest to the input)")
        self.head_combo = QComboBox()
        self.head_combo.setToolTip("One attention head, or the average over all heads of the layer")
        for combo in (self.layer_combo, self.head_combo):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.hover_label = QLabel(_HOVER_HINT)
        self.hover_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        top = QHBoxLayout()
        top.addWidget(QLabel("Layer"))
        top.addWidget(self.layer_combo)
        top.addSpacing(12)
        top.addWidget(QLabel("Head"))
        top.addWidget(self.head_combo)
        top.addSpacing(12)
        top.addWidget(self.hover_label, 1)

        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.plot: pg.PlotItem = self.graphics.addPlot()
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        self.plot.invertY(True)                 # first query on top, as text is read
        self.plot.showAxis("top")
        self.plot.getAxis("top").setStyle(showValues=False)
        self.plot.getAxis("bottom").setStyle(hideOverlappingLabels=False)   # keep the first key's label
        for name in ("left", "bottom", "top"):
            self.plot.getAxis(name).setTextPen("k")
            self.plot.getAxis(name).setPen("k")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=pg.colormap.get("viridis"),
                                        interactive=False, colorMapMenu=False)
        self.colorbar.setImageItem(self.image, insert_in=self.plot)
        bar_axis = self.colorbar.getAxis("right")
        bar_axis.enableAutoSIPrefix(False)
        bar_axis.setTextPen("k")
        bar_axis.setPen("k")
        bar_axis.setLabel("attention weight", color="k")
        self.plot.scene().sigMouseMoved.connect(self.on_mouse_moved)
        self.plot.getViewBox().sigResized.connect(self._update_ticks)

        self.placeholder = QLabel(PLACEHOLDER)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setStyleSheet("color: palette(mid); font-size: 14pt;")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(self.graphics)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.stack, 1)
        self.layer_combo.currentIndexChanged.connect(self._refresh)
        self.head_combo.currentIndexChanged.connect(self._refresh)
        self.show_attention(None)

    # ----------------------------------------------------------------- public API
    def show_attention(self, attention: Attention | None, note: str | None = None) -> None:
        """Show ``attention`` (the last generated output's), or for ``None`` the placeholder or
        ``note`` (why there is none, e.g. a model without attention).

        The chosen layer and head are kept when the new attention has them."""
        weights = None if attention is None else np.asarray(attention.weights, dtype=np.float32)
        if weights is None or weights.ndim != 4 or 0 in weights.shape:
            self._attention = None
            self._matrix = np.zeros((0, 0), dtype=np.float32)
            self._set_combos(0, 0)
            self.layer_combo.setEnabled(False)
            self.head_combo.setEnabled(False)
            self._set_hover(_HOVER_HINT)
            self.placeholder.setText(f"{note}." if note else PLACEHOLDER)
            self.stack.setCurrentWidget(self.placeholder)
            return
        assert attention is not None
        self._attention = attention
        layers, heads, tq, tk = weights.shape
        self._weights = weights
        self._qlabels = [token_label(t) for t in _fit(attention.query_tokens, tq)]
        self._klabels = [token_label(t) for t in _fit(attention.key_tokens, tk)]
        self._set_combos(layers, heads)
        self.layer_combo.setEnabled(True)
        self.head_combo.setEnabled(True)
        if attention.kind == "self":
            self.plot.setLabel("left", "token")
            self.plot.setLabel("bottom", "attends to (earlier tokens)")
        else:
            self.plot.setLabel("left", "generated")
            self.plot.setLabel("bottom", "input")
        for name in ("left", "bottom"):
            self.plot.getAxis(name).label.setDefaultTextColor(pg.mkColor("k"))
        self.stack.setCurrentWidget(self.graphics)
        self._refresh()
        self.plot.setLimits(xMin=0, xMax=tk, yMin=0, yMax=tq)
        self.plot.setRange(xRange=(0, tk), yRange=(0, tq), padding=0)

    def current_matrix(self) -> np.ndarray:
        """The (queries, keys) matrix shown."""
        return self._matrix

    def layer_count(self) -> int:
        return self.layer_combo.count()

    def head_labels(self) -> list[str]:
        return [self.head_combo.itemText(i) for i in range(self.head_combo.count())]

    def hover_text(self) -> str:
        """``"query → key: 0.123"`` of the cell last pointed at, or ``""``."""
        return self._hover

    def set_layer(self, index: int) -> None:
        self.layer_combo.setCurrentIndex(index)

    def set_head(self, head: int | None) -> None:
        """Show one head (0-based), or the average for ``None``."""
        self.head_combo.setCurrentIndex(0 if head is None else head + 1)

    def tick_labels(self) -> tuple[list[str], list[str]]:
        """The token labels of the rows (queries) and columns (keys), in order."""
        return list(self._qlabels), list(self._klabels)

    def on_mouse_moved(self, scene_pos: QPointF) -> None:
        """Show the value of the cell under ``scene_pos`` (a point in scene coordinates)."""
        if self._attention is None or self._matrix.size == 0:
            return
        point = self.image.mapFromScene(scene_pos)
        col, row = math.floor(point.x()), math.floor(point.y())
        rows, cols = self._matrix.shape
        if 0 <= row < rows and 0 <= col < cols:
            value = float(self._matrix[row, col])
            self._set_hover(f"{self._qlabels[row]} → {self._klabels[col]}: {value:.3f}")
        else:
            self._set_hover(_HOVER_HINT)

    # ----------------------------------------------------------------- internals
    def _set_hover(self, text: str) -> None:
        self._hover = "" if text == _HOVER_HINT else text
        self.hover_label.setText(text)

    def _set_combos(self, layers: int, heads: int) -> None:
        layer, head = self.layer_combo.currentIndex(), self.head_combo.currentIndex()
        same = layers == self.layer_combo.count() and heads + 1 == self.head_combo.count()
        for combo in (self.layer_combo, self.head_combo):
            combo.blockSignals(True)
            combo.clear()
        if layers:
            self.layer_combo.addItems([f"Layer {i + 1}" for i in range(layers)])
            self.head_combo.addItems([AVERAGE] + [f"Head {i + 1}" for i in range(heads)])
            self.layer_combo.setCurrentIndex(layer if same and layer >= 0 else layers - 1)
            self.head_combo.setCurrentIndex(head if same and head >= 0 else 0)
        for combo in (self.layer_combo, self.head_combo):
            combo.blockSignals(False)

    def _refresh(self, *_args: object) -> None:
        if self._attention is None:
            return
        layer = max(self.layer_combo.currentIndex(), 0)
        head = self.head_combo.currentIndex()
        weights = self._weights[layer]
        matrix = weights.mean(axis=0) if head <= 0 else weights[head - 1]
        self._matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self.image.setImage(self._matrix, autoLevels=False)
        high = float(np.nanmax(self._matrix)) if self._matrix.size else 1.0
        self.colorbar.setLevels((0.0, high if high > 0 else 1.0))
        self._set_hover(_HOVER_HINT)
        self._update_ticks()

    def _update_ticks(self, *_args: object) -> None:
        """Label every cell when there is room, else every n-th (the rest as a finer level)."""
        if not self._qlabels:
            return
        view = self.plot.getViewBox()
        for axis, labels, length in (("bottom", self._klabels, view.width()),
                                     ("left", self._qlabels, view.height())):
            widest = max(len(s) for s in labels) if axis == "bottom" else 1
            room = max(length, 200.0) / (9.0 * max(2, widest) + 4.0 if axis == "bottom" else 18.0)
            step = max(1, math.ceil(len(labels) / max(room, 1.0)))
            major = [(i + 0.5, s) for i, s in enumerate(labels) if i % step == 0]
            minor = [(i + 0.5, s) for i, s in enumerate(labels) if i % step != 0]
            self.plot.getAxis(axis).setTicks([major, minor])


def _fit(tokens: list[str], n: int) -> list[str]:
    """Exactly ``n`` labels: ``tokens`` cut or padded with positions."""
    tokens = [str(t) for t in tokens[:n]]
    return tokens + [str(i + 1) for i in range(len(tokens), n)]
