"""The live training view: buttons, progress with ETA, loss/metric curves, generated samples.

Fed the events of :func:`textgen_core.training.run.train_project` through
:meth:`TrainingPanel.add_events`, typed (:mod:`textgen_core.training.events`) or as the plain dicts
the worker sends and ``runs/<id>/metrics.jsonl`` stores, which are read back with the same
definitions. Events only go into bounded buffers; a 100 ms timer redraws the curves when something
changed, so a fast training loop (or replaying a long metrics file) never floods the GUI with
repaints.

Metrics beyond the fixed ones (``Step.metrics`` / ``Eval.metrics``: a discriminator's accuracy, a
mean reward, self-BLEU ...) each get their own plot in the Metrics tab, with no code per metric; the
phases of a multi-phase algorithm are marked on the loss plot where they begin.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QSplitter,
    QStyle,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.panels import curves
from app.panels.curves import Series, number
from textgen_core.training import events as ev
from textgen_core.training.progress import format_eta

STATES = ("idle", "running", "paused", "finished")
SERIES = ("train_loss", "val_loss", "val_ppl", "lr", "tokens_per_s", "bleu", "chrf", "best")
REDRAW_MS = 100           # about 10 Hz
EMPTY_SAMPLES = ("<p style='color:#808080'>The model's answers to a few validation prompts appear "
                 "here after each evaluation, so you can watch it learn.</p>")
MAX_SAMPLE_BLOCKS = 30    # sample events kept in the sample box
RATE_WINDOW = 30          # recent "step" events used for the steps-per-second (ETA) estimate


class TrainingPanel(QWidget):
    """Live view of one training run, with earlier runs of the project drawn faded beside it."""

    start_requested = Signal()
    pause_requested = Signal()
    stop_requested = Signal()
    resume_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.redraw_count = 0          # how many times the curves were redrawn (tests, profiling)
        self._series = {name: Series() for name in SERIES}
        self._extras: dict[str, Series] = {}     # the algorithm's own metrics, by name
        self._extra_dots: set[str] = set()      # ... of them reported at evaluations (drawn as dots)
        self._phases: list[tuple[float, str]] = []   # (step where it begins, phase name)
        self._phase_lines: list[tuple[float, str, pg.InfiniteLine]] = []
        self._last_step = 0.0                   # step of the previous progress report
        self._samples: deque[tuple[int, list[dict[str, Any]]]] = deque(maxlen=MAX_SAMPLE_BLOCKS)
        self._rate: deque[tuple[float, float]] = deque(maxlen=RATE_WINDOW)
        self._history: list[tuple[pg.PlotDataItem, Series, bool]] = []  # item, raw data, is_train
        self._target: int | None = None
        self._tokens_per_s: float | None = None
        self._outcome: str | None = None
        self._step, self._seen_steps, self._evals = 0, False, 0
        self._state, self._can_resume = "idle", False
        self._dirty = self._samples_dirty = False
        self._history_alpha = -1.0
        self._build()
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._tick)
        self._timer.start()
        self.set_state("idle")
        self.redraw_now()
        self.redraw_count = 0

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        pixmap = QStyle.StandardPixmap
        top = QHBoxLayout()
        for name, icon, signal in (
            ("Start", pixmap.SP_MediaPlay, self.start_requested),
            ("Pause", pixmap.SP_MediaPause, self.pause_requested),
            ("Stop", pixmap.SP_MediaStop, self.stop_requested),
            ("Resume", pixmap.SP_MediaSeekForward, self.resume_requested),
        ):
            button = QPushButton(self.style().standardIcon(icon), name)
            button.clicked.connect(signal.emit)
            setattr(self, f"{name.lower()}_button", button)
            top.addWidget(button)
        self.start_button.setToolTip("Train from scratch (replaces this project's checkpoints)")
        self.resume_button.setToolTip("Continue from the last checkpoint")
        self.progress = QProgressBar()
        self.progress.setFormat("%p%")
        top.addWidget(self.progress, 1)

        self.status_label = QLabel()
        self.info_label = QLabel()
        self.info_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.info_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        status = QHBoxLayout()
        status.addWidget(self.status_label, 1)
        status.addWidget(self.info_label)
        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #d32f2f; font-weight: bold;")
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.hide()
        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_loss_tab(), "Loss")
        self._metrics: curves.MetricsView | None = None     # built when first shown (start-up time)
        self.tabs.addTab(QWidget(), "Metrics")
        self.tabs.currentChanged.connect(self._tab_changed)
        self.samples_view = QTextBrowser()
        self.samples_view.setHtml(EMPTY_SAMPLES)     # (a placeholder would not wrap)
        samples_box = QGroupBox("Samples")
        box = QVBoxLayout(samples_box)
        box.setContentsMargins(4, 4, 4, 4)
        box.addWidget(self.samples_view)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.tabs)
        self.splitter.addWidget(samples_box)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setSizes([650, 330])
        self.splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(status)
        layout.addWidget(self.error_label)
        layout.addWidget(self.splitter, 1)

    def _build_loss_tab(self) -> QWidget:
        self.log_check = QCheckBox("log scale")
        self.smooth_slider = QSlider(Qt.Orientation.Horizontal)
        self.smooth_slider.setRange(0, 99)
        self.smooth_slider.setValue(60)
        self.smooth_slider.setToolTip("Exponential moving average of the train loss (0 = raw)")
        self.smooth_value = QLabel()
        self.history_check = QCheckBox("show earlier runs")
        self.history_check.setChecked(True)
        self.history_check.setEnabled(False)
        self.log_check.toggled.connect(self._set_log_mode)
        self.smooth_slider.valueChanged.connect(self._smoothing_changed)
        self.history_check.toggled.connect(self._mark_dirty)
        controls = QHBoxLayout()
        controls.addWidget(self.log_check)
        controls.addSpacing(12)
        controls.addWidget(QLabel("smoothing"))
        controls.addWidget(self.smooth_slider, 1)
        controls.addWidget(self.smooth_value)
        controls.addSpacing(12)
        controls.addWidget(self.history_check)
        self._smoothing_changed()

        self.loss_plot, self._raw_curve, self._curves, self.best_line = curves.make_loss_plot(self.palette())
        tab = QWidget()
        layout = QVBoxLayout(tab)
        layout.addLayout(controls)
        layout.addWidget(self.loss_plot, 1)
        return tab

    @property
    def metrics(self) -> curves.MetricsView:
        """The Metrics tab (perplexity, BLEU/chrF, learning rate, tokens/s), built on first use."""
        if self._metrics is None:
            self._metrics = curves.MetricsView(self.palette())
            self._curves.update(self._metrics.curves)
            blocked = self.tabs.blockSignals(True)
            current = self.tabs.currentIndex()
            placeholder = self.tabs.widget(1)
            self.tabs.removeTab(1)
            self.tabs.insertTab(1, self._metrics, "Metrics")
            self.tabs.setCurrentIndex(current)
            self.tabs.blockSignals(blocked)
            placeholder.deleteLater()
            self.redraw_now()
        return self._metrics

    # ------------------------------------------------------------------ state and buttons
    def state(self) -> str:
        return self._state

    def set_state(self, state: str) -> None:
        """Enable the buttons that make sense: idle, running, paused or finished."""
        if state not in STATES:
            raise ValueError(f"unknown training state {state!r}; expected one of {', '.join(STATES)}")
        self._state = state
        self.start_button.setEnabled(state in ("idle", "finished"))
        self.pause_button.setEnabled(state == "running")
        self.stop_button.setEnabled(state in ("running", "paused"))
        self.resume_button.setEnabled(
            state in ("paused", "finished") or (state == "idle" and self._can_resume)
        )

    def set_can_resume(self, can: bool) -> None:
        """Whether the project has a ``last`` checkpoint (Resume is offered while idle)."""
        self._can_resume = bool(can)
        self.set_state(self._state)

    # ------------------------------------------------------------------ data in
    def reset(self, target_steps: int | None = None) -> None:
        """Forget the current run (earlier runs stay); ``target_steps`` sets the progress bar."""
        for series in (*self._series.values(), *self._extras.values()):
            series.clear()
        self._phases.clear()
        self._last_step = 0.0
        self._samples.clear()
        self._rate.clear()
        self._target = target_steps
        self._step, self._seen_steps, self._tokens_per_s = 0, False, None
        self._outcome, self._evals = None, 0
        self.info_label.clear()
        self.error_label.hide()
        self._dirty = self._samples_dirty = True

    def show_saved(self, runs: Mapping[str, list[Mapping[str, Any]]]) -> None:
        """Where the saved model stands when a project opens: the newest run's end (e.g. "step 51 /
        300 · stopped", with the progress bar there), so that Resume has a visible starting point."""
        events = ev.parse_events(runs[max(runs)]) if runs else []
        end = next((e for e in reversed(events) if isinstance(e, (ev.Stopped, ev.Finished))), None)
        if end is not None:
            self._step, self._outcome = int(end.step), end.KIND
            self._dirty = True

    def add_events(self, events: Iterable[ev.Event | Mapping[str, Any]]) -> None:
        """Take training events (typed, or metrics.jsonl dicts); cheap (buffers only), the curves
        follow at the next timer tick."""
        s = self._series
        for event in ev.parse_events(events):
            step = event.step
            if isinstance(event, ev.Step):
                self._step, self._seen_steps = int(step), True
                for key, value in (("train_loss", event.train_loss), ("lr", event.lr),
                                   ("tokens_per_s", event.tokens_per_s)):
                    if (y := number(value)) is not None:
                        s[key].append(step, y)
                self._tokens_per_s = number(event.tokens_per_s) or self._tokens_per_s
                self._rate.append((step, event.time))
                if event.phase and (not self._phases or self._phases[-1][1] != event.phase):
                    self._phases.append((self._last_step, event.phase))
                self._last_step = step
                self._add_extras(step, event.metrics, dots=False)
            elif isinstance(event, ev.Eval):
                self._evals += 1
                for key in ("val_loss", "val_ppl", "bleu", "chrf"):
                    if (y := number(getattr(event, key))) is not None:
                        s[key].append(step, y)
                if event.best and (y := number(event.val_loss)) is not None:
                    s["best"].append(step, y)
                self._add_extras(step, event.metrics, dots=True)
            elif isinstance(event, ev.Sample):
                self._samples.appendleft((int(step), list(event.samples)))
                self._samples_dirty = True
            else:
                self._other_event(event)
        self._dirty = True

    def _add_extras(self, step: float, metrics: Mapping[str, float], dots: bool) -> None:
        for name, value in metrics.items():
            if (y := number(value)) is None:
                continue
            if name not in self._extras:
                self._extras[name] = Series()
                if dots:
                    self._extra_dots.add(name)
            self._extras[name].append(step, y)

    def _other_event(self, event: ev.Event) -> None:
        step = event.step
        if isinstance(event, ev.Start):
            self._target = int(event.steps)
            for series in (*self._series.values(), *self._extras.values()):
                series.truncate_after(step)
            self._phases = [(x, name) for x, name in self._phases if x < step]
            self._last_step = step
            self._rate.clear()
            kept = [block for block in self._samples if block[0] <= step]
            self._samples = deque(kept, maxlen=MAX_SAMPLE_BLOCKS)
            self._step, self._outcome = int(step), None
            self.error_label.hide()
        elif isinstance(event, ev.Config):
            self.info_label.setText(curves.describe_config(event))
        elif isinstance(event, (ev.Finished, ev.Stopped)):
            self._outcome = event.KIND
            if isinstance(event, ev.Stopped):
                self._can_resume = True
            self.set_state("finished")
        elif isinstance(event, ev.Failed):
            self._outcome = "failed"
            message = event.message or "unknown error"
            self.error_label.setText(f"Training failed at step {int(step):,}: {message}")
            self.error_label.show()
            self.set_state("idle")

    def show_history(self, runs: Mapping[str, Iterable[Mapping[str, Any]]]) -> None:
        """Draw earlier runs (run id -> their events) as faded dashed loss curves."""
        legend = self.loss_plot.getPlotItem().legend
        for item, _, _ in self._history:
            self.loss_plot.removeItem(item)
            legend.removeItem(item)
        self._history = []
        named = {True: False, False: False}
        for run_id in sorted(runs):
            train, val = curves.run_losses(runs[run_id])
            for data, is_train in ((train, True), (val, False)):
                if not len(data):
                    continue
                item = curves.history_item(is_train, in_legend=not named[is_train])
                named[is_train] = True
                self.loss_plot.addItem(item)
                self._history.append((item, data, is_train))
        self.history_check.setEnabled(bool(self._history))
        count = f" ({len(runs)})" if self._history else ""
        self.history_check.setText(f"show earlier runs{count}")
        self._history_alpha = -1.0
        self._dirty = True

    # ------------------------------------------------------------------ read-only accessors
    def series(self, name: str) -> tuple[list[float], list[float]]:
        """Stored (steps, values) of a series of the current run: one of ``SERIES`` or an extra
        metric's name."""
        return (self._series[name] if name in self._series else self._extras[name]).data()

    def extra_metrics(self) -> list[str]:
        """Names of the extra metrics seen in this run, in order of appearance."""
        return list(self._extras)

    def phases(self) -> list[tuple[float, str]]:
        """(step where it begins, name) of each phase of this run, as marked on the loss plot."""
        return list(self._phases)

    def drawn(self, name: str) -> tuple[list[float], list[float]]:
        """What the curve of ``name`` currently shows (smoothed, thinned)."""
        if name in self._curves:
            item = self._curves[name]
        else:
            item = self.metrics.curves.get(name, self.metrics.extra_curves.get(name))
            if item is None:
                raise KeyError(name)
        xs, ys = item.xData, item.yData
        return ([] if xs is None else [float(x) for x in xs]), ([] if ys is None else [float(y) for y in ys])

    def history_items(self) -> list[pg.PlotDataItem]:
        return [item for item, _, _ in self._history]

    def smoothing(self) -> float:
        return self.smooth_slider.value() / 100

    def samples_text(self) -> str:
        return self.samples_view.toPlainText()

    def eta_seconds(self) -> float | None:
        """Remaining steps / recent steps per second, or None when unknown."""
        if self._target is None or len(self._rate) < 2 or self._outcome is not None:
            return None
        (s0, t0), (s1, t1) = self._rate[0], self._rate[-1]
        if s1 <= s0 or t1 <= t0:
            return None
        return max(0, self._target - self._step) / ((s1 - s0) / (t1 - t0))

    def status_text(self) -> str:
        """One line, e.g. ``step 120 / 300 · 2,345 tok/s · ETA 0:42`` (also for the status bar)."""
        if not self._seen_steps and self._target is None:
            return "no training run yet"
        parts = [f"step {self._step:,} / {self._target:,}" if self._target else f"step {self._step:,}"]
        if self._outcome is not None:
            parts.append(self._outcome)
            return " · ".join(parts)
        if self._tokens_per_s is not None:
            parts.append(f"{self._tokens_per_s:,.0f} tok/s")
        eta = self.eta_seconds()
        if self._target:
            parts.append(f"ETA {format_eta(eta)}" if eta is not None else "ETA –")
        return " · ".join(parts)

    # ------------------------------------------------------------------ drawing
    def _mark_dirty(self, *_: Any) -> None:
        self._dirty = True

    def _set_log_mode(self, on: bool) -> None:
        self.loss_plot.setLogMode(False, bool(on))
        self._dirty = True

    def _smoothing_changed(self, *_: Any) -> None:
        self.smooth_value.setText(f"{self.smoothing():.2f}")
        self._dirty = True

    def _tab_changed(self, index: int) -> None:
        if index == 1:
            _ = self.metrics

    def _tick(self) -> None:
        if self._dirty or self._samples_dirty:
            self.redraw_now()

    def redraw_now(self) -> None:
        """Redraw everything from the buffers now (the timer does this at most every 100 ms)."""
        self._dirty = False
        self.redraw_count += 1
        alpha = self.smoothing()
        xs, ys = self.series("train_loss")
        self._raw_curve.setData(*curves.downsample(xs, ys))
        self._raw_curve.setVisible(alpha > 0)
        starts = [x for x, _ in self._phases]
        self._curves["train_loss"].setData(*curves.downsample(xs, curves.ema_by_phase(xs, ys, alpha, starts)))
        for name in SERIES[1:]:
            if name in self._curves:
                self._curves[name].setData(*curves.downsample(*self.series(name)))
        if self._metrics is not None:
            for name, data in self._extras.items():
                item = self._metrics.extra_curve(name, dots=name in self._extra_dots)
                item.setData(*curves.downsample(*data.data()))
        self._draw_phases()
        best = self._series["best"]
        if len(best):
            self.best_line.setValue(best.xs[-1])
        self.best_line.setVisible(bool(len(best)))
        self._draw_history(alpha)
        self._draw_bleu_state()
        if self._target:
            self.progress.setRange(0, self._target)
            self.progress.setValue(min(self._step, self._target))
        else:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        self.status_label.setText(self.status_text())
        if self._samples_dirty:
            self._samples_dirty = False
            self.samples_view.setHtml(curves.samples_html(self._samples) or EMPTY_SAMPLES)

    def _draw_phases(self) -> None:
        """One labelled vertical line where each phase begins (redone only when they change)."""
        if [(x, name) for x, name, _ in self._phase_lines] == self._phases:
            return
        for _, _, line in self._phase_lines:
            self.loss_plot.removeItem(line)
        self._phase_lines = []
        for x, name in self._phases:
            line = curves.phase_line(x, name, self.palette())
            self.loss_plot.addItem(line, ignoreBounds=True)
            self._phase_lines.append((x, name, line))

    def _draw_history(self, alpha: float) -> None:
        show = self.history_check.isChecked()
        for item, data, is_train in self._history:
            item.setVisible(show)
            if alpha != self._history_alpha:
                xs, ys = data.data()
                item.setData(*curves.downsample(xs, curves.ema(ys, alpha) if is_train else ys))
        self._history_alpha = alpha

    def _draw_bleu_state(self) -> None:
        if self._metrics is None:
            return
        if len(self._series["bleu"]) or len(self._series["chrf"]):
            self.metrics.show_bleu_note(None)
        elif self._evals:
            self.metrics.show_bleu_note("No BLEU for continuation: a story is judged by perplexity.")
        else:
            self.metrics.show_bleu_note("BLEU and chrF appear after the first evaluation "
                                        "(couplets, translation).")
