"""Plotting helpers for the training panel: bounded series, smoothing, downsampling, styled plots.

Nothing here knows about the panel; everything is plain Python (and pyqtgraph for the plot factory),
so it is easy to test and reuse (the evaluation panel may want the same look).
"""

from __future__ import annotations

import html
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QGridLayout, QLabel, QScrollArea, QStackedWidget, QVBoxLayout, QWidget

from textgen_core.training import events as ev

MAX_POINTS = 20_000        # stored points per series (older points drop off the front)
MAX_DRAWN = 4_000          # points handed to pyqtgraph per curve; more are thinned by a stride

# Colours chosen to read on light and dark backgrounds alike.
TRAIN_COLOR = QColor(31, 119, 180)
VAL_COLOR = QColor(255, 127, 14)
BEST_COLOR = QColor(240, 190, 0)
BEST_EDGE = QColor(120, 90, 0)
EXTRA_COLOR = QColor(44, 160, 44)
PHASE_COLOR = QColor(148, 103, 189)
EXTRA_PLOT_HEIGHT = 170    # each extra metric's plot; the Metrics tab scrolls when they do not fit


def faded(color: QColor, alpha: int = 110) -> QColor:
    """``color`` made translucent (raw data behind a smoothed curve, earlier runs)."""
    out = QColor(color)
    out.setAlpha(alpha)
    return out


class Series:
    """A bounded (x, y) series: appends are O(1), the oldest points fall off past ``maxlen``."""

    def __init__(self, maxlen: int = MAX_POINTS) -> None:
        self.xs: deque[float] = deque(maxlen=maxlen)
        self.ys: deque[float] = deque(maxlen=maxlen)

    def __len__(self) -> int:
        return len(self.xs)

    def append(self, x: float, y: float) -> None:
        self.xs.append(x)
        self.ys.append(y)

    def clear(self) -> None:
        self.xs.clear()
        self.ys.clear()

    def truncate_after(self, x: float) -> None:
        """Drop the points beyond ``x`` (a run resumed from an earlier checkpoint rewinds)."""
        while self.xs and self.xs[-1] > x:
            self.xs.pop()
            self.ys.pop()

    def data(self) -> tuple[list[float], list[float]]:
        return list(self.xs), list(self.ys)


def number(value: Any) -> float | None:
    """``value`` as a finite float, or None (JSON nulls, NaN, inf, strings, bools)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def ema(values: Sequence[float], alpha: float) -> list[float]:
    """Debiased exponential moving average (as TensorBoard smooths): ``alpha`` 0 = no smoothing."""
    if alpha <= 0 or not values:
        return list(values)
    out, acc, weight = [], 0.0, 0.0
    for v in values:
        acc = alpha * acc + (1 - alpha) * v
        weight = alpha * weight + (1 - alpha)
        out.append(acc / weight)
    return out


def ema_by_phase(xs: Sequence[float], ys: Sequence[float], alpha: float,
                 starts: Sequence[float]) -> list[float]:
    """:func:`ema` started afresh at each phase start (a step in ``starts``), so that smoothing never
    blends one phase's loss into the next one's (an MLE loss of 6 into a discriminator's 0.7)."""
    out: list[float] = []
    begin = 0
    for cut in sorted(starts):
        end = begin
        while end < len(xs) and xs[end] <= cut:
            end += 1
        out += ema(ys[begin:end], alpha)
        begin = end
    return out + ema(ys[begin:], alpha)


def downsample(
    xs: Sequence[float], ys: Sequence[float], max_points: int = MAX_DRAWN
) -> tuple[list[float], list[float]]:
    """Every k-th point so that at most ``max_points`` remain; the last point is always kept."""
    n = len(xs)
    if n <= max_points:
        return list(xs), list(ys)
    stride = math.ceil(n / max_points)
    idx = list(range(0, n, stride))
    if idx[-1] != n - 1:
        idx[-1] = n - 1
    return [xs[i] for i in idx], [ys[i] for i in idx]


def run_losses(events: Iterable[Mapping[str, Any] | ev.Event]) -> tuple[Series, Series]:
    """Train and validation loss of one stored run (its ``metrics.jsonl`` events)."""
    train, val = Series(), Series()
    for event in ev.parse_events(events):
        step = event.step
        if isinstance(event, ev.Start):
            train.truncate_after(step)
            val.truncate_after(step)
        elif isinstance(event, ev.Step) and (y := number(event.train_loss)) is not None:
            train.append(step, y)
        elif isinstance(event, ev.Eval) and (y := number(event.val_loss)) is not None:
            val.append(step, y)
    return train, val


def make_plot(title: str, y_label: str, palette: QPalette, x_label: str = "step") -> pg.PlotWidget:
    """A PlotWidget in the application's colours (light or dark), with a grid and axis labels."""
    background = palette.color(QPalette.ColorRole.Base)
    foreground = palette.color(QPalette.ColorRole.Text)
    plot = pg.PlotWidget(background=background)
    item = plot.getPlotItem()
    item.setTitle(title, color=foreground.name(), size="10pt")
    for side, label in (("left", y_label), ("bottom", x_label)):
        axis = item.getAxis(side)
        axis.setPen(pg.mkPen(foreground))
        axis.setTextPen(pg.mkPen(foreground))
        axis.setLabel(label, color=foreground.name())
    item.showGrid(x=True, y=True, alpha=0.2)
    for side in ("left", "bottom"):    # major and minor grid lines only: the translucent third
        item.getAxis(side).setStyle(maxTickLevel=1)   # level tripled the paint time (~30 ms)
    item.setClipToView(True)
    item.setMenuEnabled(False)
    return plot


def add_legend(plot: pg.PlotWidget, palette: QPalette) -> pg.LegendItem:
    """A legend in the top right corner, on a translucent background so curves stay readable."""
    background = QColor(palette.color(QPalette.ColorRole.Base))
    background.setAlpha(200)
    return plot.addLegend(
        offset=(-10, 10), brush=background, pen=pg.mkPen(palette.color(QPalette.ColorRole.Mid)),
        labelTextColor=palette.color(QPalette.ColorRole.Text),
    )


def pen(color: QColor, width: float = 2.0, dashed: bool = False) -> Any:
    """A cosmetic pen; dashed for earlier runs."""
    style = Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
    return pg.mkPen(color, width=width, style=style)


def make_loss_plot(
    palette: QPalette,
) -> tuple[pg.PlotWidget, pg.PlotDataItem, dict[str, pg.PlotDataItem], pg.InfiniteLine]:
    """The loss plot: its widget, the faded raw train curve, the named curves and the best line."""
    plot = make_plot("Loss", "cross-entropy", palette)
    add_legend(plot, palette)
    raw = plot.plot(pen=pen(faded(TRAIN_COLOR), 1))
    named = {
        "train_loss": plot.plot(name="train loss", pen=pen(TRAIN_COLOR)),
        "val_loss": plot.plot(
            name="validation loss", pen=pen(VAL_COLOR), symbol="o", symbolSize=5,
            symbolBrush=VAL_COLOR, symbolPen=None,
        ),
        "best": plot.plot(
            name="best checkpoint", pen=None, symbol="star", symbolSize=16,
            symbolBrush=BEST_COLOR, symbolPen=pg.mkPen(BEST_EDGE, width=1),
        ),
    }
    named["best"].setZValue(10)
    line = pg.InfiniteLine(
        angle=90, movable=False, pen=pen(BEST_COLOR, 1.5, dashed=True), label="best",
        labelOpts={"position": 0.55, "color": BEST_EDGE, "movable": False},
    )
    line.hide()
    plot.addItem(line, ignoreBounds=True)
    return plot, raw, named, line


def phase_line(x: float, name: str, palette: QPalette) -> pg.InfiniteLine:
    """A dotted vertical line labelled with the phase that begins at step ``x`` (the name written
    along the line, from the top, to stay narrow beside the legend)."""
    line = pg.InfiniteLine(
        pos=x, angle=90, movable=False, pen=pg.mkPen(PHASE_COLOR, width=1.2, style=Qt.PenStyle.DotLine),
        label=name, labelOpts={"position": 0.97, "color": PHASE_COLOR, "movable": False,
                               "rotateAxis": (1, 0), "anchors": [(1, 0), (1, 0)]},   # along the line
    )
    line.setZValue(-2)
    return line


def history_item(is_train: bool, in_legend: bool) -> pg.PlotDataItem:
    """A faded dashed curve for an earlier run's train or validation loss (behind the current run)."""
    color = faded(TRAIN_COLOR if is_train else VAL_COLOR)
    name = f"earlier runs ({'train' if is_train else 'validation'})" if in_legend else None
    item = pg.PlotDataItem(name=name, pen=pen(color, 1.5, dashed=True))
    if not is_train:  # evaluations are sparse: a run with one evaluation is a single visible dot
        item.setSymbol("o")
        item.setSymbolSize(5)
        item.setSymbolBrush(color)
        item.setSymbolPen(None)
    item.setZValue(-5)
    return item


def describe_config(event: ev.Config) -> str:
    """``transformer · 0.36 M parameters · cpu`` from a Config event."""
    parts = [str(event.model)]
    params = number(event.parameters)
    if params is not None:
        parts.append(f"{params / 1e6:.2f} M parameters" if params >= 1e5 else f"{params:,.0f} parameters")
    world = number(event.world_size)
    parts.append(f"{event.device} × {int(world)}" if world and world > 1 else str(event.device))
    if event.resumed:
        parts.append("resumed")
    return " · ".join(parts)


def samples_html(blocks: Iterable[tuple[int, Sequence[ev.Written]]]) -> str:
    """The sample box: for each (step, samples) block, "step N" then prompt → output (reference)."""
    out = []
    for step, samples in blocks:
        rows = [f"<p style='margin-top:6px'><b>step {step:,}</b></p>"]
        for sample in samples:
            prompt = html.escape(sample.prompt)
            output = html.escape(sample.output)
            rows.append(f"<div>{prompt} → <b>{output}</b></div>")
            if sample.reference is not None:
                ref = html.escape(sample.reference)
                rows.append(f"<div style='color:#808080'>&nbsp;&nbsp;&nbsp;reference: {ref}</div>")
        out.append("".join(rows))
    return "<hr>".join(out)


class MetricsView(QWidget):
    """Perplexity, BLEU/chrF, learning rate and throughput in a 2x2 grid; ``curves`` by series name.

    Below them, one plot per extra metric a training algorithm reports (:meth:`extra_curve` adds it
    the first time its name is seen; ``extra_curves`` by name). The grid scrolls when they do not fit.
    """

    def __init__(self, palette: QPalette, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._palette = palette
        self.extra_curves: dict[str, pg.PlotDataItem] = {}
        self.extra_plots: dict[str, pg.PlotWidget] = {}
        self.ppl_plot = make_plot("Validation perplexity", "perplexity (log)", palette)
        self.ppl_plot.setLogMode(False, True)
        self.lr_plot = make_plot("Learning rate", "lr", palette)
        self.speed_plot = make_plot("Throughput", "tokens / s", palette)
        # the title names the curves in their colours: a legend box would cover them in this small plot
        key = f"<span style='color:{VAL_COLOR.name()}'>BLEU</span> / " \
              f"<span style='color:{TRAIN_COLOR.name()}'>chrF</span>"
        self.bleu_plot = make_plot(key, "score (0-100)", palette)
        dots = {"symbol": "o", "symbolSize": 5, "symbolPen": None}
        self.curves: dict[str, pg.PlotDataItem] = {
            "val_ppl": self.ppl_plot.plot(pen=pen(VAL_COLOR), symbolBrush=VAL_COLOR, **dots),
            "lr": self.lr_plot.plot(pen=pen(EXTRA_COLOR)),
            "tokens_per_s": self.speed_plot.plot(pen=pen(TRAIN_COLOR, 1.5)),
            "bleu": self.bleu_plot.plot(name="BLEU", pen=pen(VAL_COLOR), symbolBrush=VAL_COLOR, **dots),
            "chrf": self.bleu_plot.plot(name="chrF", pen=pen(TRAIN_COLOR), symbolBrush=TRAIN_COLOR, **dots),
        }
        self.no_bleu_label = QLabel()
        self.no_bleu_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.no_bleu_label.setWordWrap(True)
        self.bleu_stack = QStackedWidget()
        self.bleu_stack.addWidget(self.bleu_plot)
        self.bleu_stack.addWidget(self.no_bleu_label)
        inner = QWidget()
        self.grid = grid = QGridLayout(inner)
        grid.addWidget(self.ppl_plot, 0, 0)
        grid.addWidget(self.bleu_stack, 0, 1)
        grid.addWidget(self.lr_plot, 1, 0)
        grid.addWidget(self.speed_plot, 1, 1)
        for widget in (self.ppl_plot, self.bleu_stack, self.lr_plot, self.speed_plot):
            widget.setMinimumHeight(EXTRA_PLOT_HEIGHT)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.scroll.setWidget(inner)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.scroll)

    def extra_curve(self, name: str, dots: bool = False) -> pg.PlotDataItem:
        """The curve of extra metric ``name``, in a plot of its own made on first use (two a row
        below the fixed plots); ``dots`` for metrics measured at evaluations only."""
        if name in self.extra_curves:
            return self.extra_curves[name]
        plot = make_plot(name.replace("_", " "), "", self._palette)
        plot.getPlotItem().getAxis("left").enableAutoSIPrefix(False)   # 0.75, not "750 (x0.001)"
        plot.setMinimumHeight(EXTRA_PLOT_HEIGHT)
        style = {"symbol": "o", "symbolSize": 5, "symbolPen": None, "symbolBrush": EXTRA_COLOR}
        style = style if dots else {}
        self.extra_curves[name] = plot.plot(pen=pen(EXTRA_COLOR, 1.5), **style)
        index = len(self.extra_plots)
        self.extra_plots[name] = plot
        self.grid.addWidget(plot, 2 + index // 2, index % 2)
        return self.extra_curves[name]

    def show_bleu_note(self, note: str | None) -> None:
        """Show the BLEU plot (``None``) or, in its place, a note why there is nothing to plot."""
        if note is None:
            self.bleu_stack.setCurrentWidget(self.bleu_plot)
        else:
            self.no_bleu_label.setText(note)
            self.bleu_stack.setCurrentWidget(self.no_bleu_label)
