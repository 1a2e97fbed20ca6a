"""The dataset panel: pick corpus files and a task, see what the parser made of them.

The panel parses with :func:`textgen_core.corpus.load_corpus` and shows the detected encoding, the
first rows as parsed, the train/valid/test sizes the project would make, a histogram of source
lengths, warnings (amber) and errors (red, one line). Files the user chooses set the task box to the
task they look like (:func:`textgen_core.task_guess.guess_task`), with the reason below it. Files
over :attr:`DatasetPanel.async_bytes` are parsed on a worker thread (a ``ThreadPoolExecutor`` polled
by a ``QTimer``) so the window never hangs. "Create project…" emits
:attr:`DatasetPanel.create_requested`; creating the project is the caller's work.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtWidgets as qw
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QPalette

from textgen_core.corpus import Corpus, load_corpus, split_pairs, split_text, splits_by_source
from textgen_core.errors import TextGenError
from textgen_core.task_guess import guess_task

TASK_CHOICES = (
    ("Couplet", "couplet"), ("Novel continuation", "continuation"), ("Translation", "translation")
)
PREVIEW_ROWS = 50
SPLITS = ("train", "valid", "test")
ERROR_STYLE = "color: #c62828;"
WARNING_STYLE = "color: #b26a00;"
GUESS_STYLE = "color: #2e7d32;"


@dataclass
class ParseResult:
    """What one parse produced (computed off the GUI thread for big files; plain Python only)."""

    corpus: Corpus | None = None
    error: str = ""
    rows: list[tuple[str, ...]] = field(default_factory=list)  # preview rows as parsed
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # split -> (items, paragraphs)
    lengths: list[int] = field(default_factory=list)  # source (or paragraph) lengths in characters


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (TextGenError messages already are one line)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    if isinstance(exc, TextGenError):
        return first or type(exc).__name__
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def parse_corpus(task: str, paths: list[str], swap: bool) -> ParseResult:
    """Parse and summarise a corpus; every problem becomes ``ParseResult.error``, never an exception."""
    try:
        corpus = load_corpus(task, paths, swap=swap)
        result = ParseResult(corpus=corpus)
        if task == "continuation":
            paragraphs = [line for line in corpus.text.split("\n") if line.strip()]
            result.rows = [(p,) for p in paragraphs[:PREVIEW_ROWS]]
            result.lengths = [len(p) for p in paragraphs]
            parts = split_text(corpus.text)
            result.counts = {
                s: (len(parts[s]), sum(1 for line in parts[s].split("\n") if line.strip())) for s in SPLITS
            }
        else:
            result.rows = [(p.source, p.target) for p in corpus.pairs[:PREVIEW_ROWS]]
            result.lengths = [len(p.source) for p in corpus.pairs]
            parts = split_pairs(corpus.pairs, by_source=splits_by_source(corpus.task))
            result.counts = {s: (len(parts[s]), 0) for s in SPLITS}
        return result
    except Exception as exc:  # a panel shows every failure in its red label, never a traceback
        return ParseResult(error=one_line(exc))


class DatasetPanel(qw.QWidget):
    """Choose corpus files (button or drag and drop) and a task; preview the parsed corpus."""

    create_requested = Signal(str, list, bool)  # task, paths, swap
    parsed = Signal()  # a parse finished (successfully or with an error); see corpus()/error_text()
    task_changed = Signal(str)  # the task box changed (by the user, a guess or set_task)

    async_bytes = 5 * 1024 * 1024  # files larger than this together are parsed on a worker thread

    def __init__(self, parent: qw.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self._paths: list[str] = []
        self._guess: tuple[str, str] | None = None  # (task, why) guessed for the files loaded last
        self._result = ParseResult()
        self._generation = 0  # bumps on every request; stale worker results are dropped
        self._pending: tuple[int, Future] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._poll = QTimer(self, interval=50)
        self._poll.timeout.connect(self._poll_worker)
        self._build()
        self._show_result()

    # ----------------------------------------------------------------- public API
    def load_files(self, paths: list[str], task: str | None = None) -> None:
        """Take these corpus files and parse them for ``task``, or for the task they look like
        (the guess and its reason are shown below the task box; the user may pick another)."""
        self._paths = [os.fspath(p) for p in paths]
        names = ", ".join(Path(p).name for p in self._paths)
        self.files_label.setText(names or self._no_files_text())
        self.files_label.setToolTip("\n".join(self._paths))
        guess = guess_task(self._paths) if task is None else None
        self._guess = (guess.task, f"Task guessed from the files: {guess.reason}.") if guess else None
        index = self.task_combo.findData(task or (guess.task if guess else self.task()))
        if index != self.task_combo.currentIndex():
            self.task_combo.blockSignals(True)  # one parse below, not one here and another there
            self.task_combo.setCurrentIndex(index)
            self.task_combo.blockSignals(False)
            self._task_changed(reparse=False)
        self._show_guess()
        self._reparse()

    def show_split_preview(self, rows: list[tuple[str, ...]], lengths: list[int], note: str) -> None:
        """An open project whose corpus files are not here (the bundled model, a project from
        another machine): show its training split instead of an empty preview."""
        self.files_label.setText(note)
        self.files_label.setToolTip("")
        self._fill_table(rows)
        self._fill_histogram(lengths)

    def choose_files(self) -> None:
        """Ask for corpus files (see :meth:`ask_for_files`) and load them."""
        start = str(Path(self._paths[0]).parent) if self._paths else ""
        paths = self.ask_for_files(start)
        if paths:
            self.load_files(paths)

    def ask_for_files(self, start: str) -> list[str]:
        """The file dialog behind "Choose files…" and File ▸ New (tests replace it)."""
        paths, _ = qw.QFileDialog.getOpenFileNames(
            self, "Choose corpus files (one or two)", start,
            "Text corpora (*.txt *.tsv *.csv);;All files (*)",
        )
        return list(paths)

    def guess_text(self) -> str:
        """Why the task box shows its task, while that is the task guessed from the files; else ""."""
        return "" if self.guess_label.isHidden() else self.guess_label.text()

    def set_task(self, task: str) -> None:
        """Select "couplet", "continuation" or "translation" (re-parses the files)."""
        index = self.task_combo.findData(task)
        if index < 0:
            raise ValueError(f"unknown task {task!r}")
        self.task_combo.setCurrentIndex(index)

    def task(self) -> str:
        """The selected task name."""
        return str(self.task_combo.currentData())

    def paths(self) -> list[str]:
        """The files loaded last."""
        return list(self._paths)

    def swap(self) -> bool:
        """Whether source and target are exchanged (translation only)."""
        return self.task() == "translation" and self.swap_check.isChecked()

    def corpus(self) -> Corpus | None:
        """The last successfully parsed corpus, or None (no files, still parsing, or an error)."""
        return self._result.corpus

    def error_text(self) -> str:
        """The one-line error of the last parse, or ""."""
        return self._result.error

    def is_busy(self) -> bool:
        """True while a big file is being parsed on the worker thread."""
        return self._pending is not None

    def split_counts(self) -> dict[str, tuple[int, int]]:
        """split -> (pairs, 0) for pair tasks, (characters, paragraphs) for continuation."""
        return dict(self._result.counts)

    def histogram_data(self) -> tuple[list[float], list[int]]:
        """The histogram's bar centres and heights (for tests and tooltips)."""
        x = self.histogram.opts.get("x")
        height = self.histogram.opts.get("height")
        return [float(v) for v in (x if x is not None else [])], [
            int(v) for v in (height if height is not None else [])
        ]

    def show_project_info(self, info: dict[str, Any]) -> None:
        """Show the summary of an opened project (the dict from ``Project.info()``)."""
        examples = info.get("examples") or {}
        unit = "paragraphs" if info.get("task") == "continuation" else "examples"
        tok = info.get("tokenizer") or {}
        vocab = f"{tok.get('kind', '?')}, vocabulary {tok.get('vocab_size', 0):,}"
        if tok and not tok.get("shared", True):
            vocab += f" (target {tok.get('tgt_vocab_size', 0):,})"
        values = {
            "name": str(info.get("name", "")),
            "task": str(info.get("task", "")),
            "model": str(info.get("model", "")),
            "examples": " · ".join(f"{examples.get(s, 0):,} {s}" for s in SPLITS) + f" ({unit})",
            "tokenizer": vocab,
            "sources": "\n".join(str(s) for s in info.get("sources", ())) or "—",
        }
        for key, text in values.items():
            self.info_labels[key].setText(text)
        self.info_box.setTitle(f"Open project: {values['name']}")
        self.info_box.show()

    # ----------------------------------------------------------------- layout
    def _build(self) -> None:
        self.choose_button = qw.QPushButton("Choose files…")
        self.choose_button.clicked.connect(self.choose_files)
        self.files_label = qw.QLabel(self._no_files_text())
        self.files_label.setWordWrap(True)
        self.task_combo = qw.QComboBox()
        for label, name in TASK_CHOICES:
            self.task_combo.addItem(label, name)
        self.task_combo.currentIndexChanged.connect(self._task_changed)
        self.guess_label = qw.QLabel()
        self.guess_label.setStyleSheet(GUESS_STYLE)
        self.guess_label.setWordWrap(True)
        self.guess_label.setToolTip("Not right? Pick the task in the box above.")
        self.guess_label.hide()
        self.swap_check = qw.QCheckBox("Swap direction (target → source)")
        self.swap_check.setToolTip("Translate from the second column to the first")
        self.swap_check.toggled.connect(self._reparse)
        self.create_button = qw.QPushButton("Create project…")
        self.create_button.clicked.connect(self._request_create)

        top = qw.QHBoxLayout()
        top.addWidget(self.choose_button)
        top.addWidget(self.files_label, 1)
        options = qw.QHBoxLayout()
        options.addWidget(qw.QLabel("Task:"))
        options.addWidget(self.task_combo)
        options.addWidget(self.swap_check)
        options.addStretch(1)
        options.addWidget(self.create_button)

        self.encoding_label = qw.QLabel()
        self.counts_label = qw.QLabel()
        self.counts_label.setWordWrap(True)
        form = qw.QFormLayout()
        form.addRow("Encoding:", self.encoding_label)
        form.addRow("Splits:", self.counts_label)
        self.warning_label = qw.QLabel()
        self.warning_label.setStyleSheet(WARNING_STYLE)
        self.warning_label.setWordWrap(True)
        self.error_label = qw.QLabel()
        self.error_label.setStyleSheet(ERROR_STYLE)
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.table = qw.QTableWidget(0, 2)
        self.table.setEditTriggers(qw.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(qw.QHeaderView.ResizeMode.Stretch)
        self.plot = pg.PlotWidget()
        palette = self.palette()
        base, text = palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text)
        self.plot.setBackground(base)
        for side in ("left", "bottom"):
            self.plot.getAxis(side).setPen(text)
            self.plot.getAxis(side).setTextPen(text)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.histogram = pg.BarGraphItem(x=[], height=[], width=1.0, brush=(66, 133, 244, 200))
        self.plot.addItem(self.histogram)
        splitter = qw.QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.table)
        splitter.addWidget(self.plot)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([600, 400])

        self.info_box = qw.QGroupBox("Open project")
        info_form = qw.QFormLayout(self.info_box)
        self.info_labels: dict[str, qw.QLabel] = {}
        for key, label in (("name", "Name:"), ("task", "Task:"), ("model", "Model:"),
                           ("examples", "Examples:"), ("tokenizer", "Tokenizer:"), ("sources", "Sources:")):
            self.info_labels[key] = qw.QLabel()
            self.info_labels[key].setWordWrap(True)
            info_form.addRow(label, self.info_labels[key])
        self.info_box.hide()

        layout = qw.QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(options)
        layout.addWidget(self.guess_label)
        layout.addLayout(form)
        layout.addWidget(self.warning_label)
        layout.addWidget(self.error_label)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.info_box)
        self._task_changed()

    @staticmethod
    def _no_files_text() -> str:
        return "No corpus yet: choose one or two files, or drop them here."

    # ----------------------------------------------------------------- user actions
    def _task_changed(self, *_: object, reparse: bool = True) -> None:
        self.swap_check.setEnabled(self.task() == "translation")
        self._show_guess()
        self.task_changed.emit(self.task())
        if reparse:
            self._reparse()

    def _show_guess(self) -> None:
        """The guess's reason, while the task box shows the guessed task."""
        text = self._guess[1] if self._guess and self._guess[0] == self.task() else ""
        self.guess_label.setText(text)
        self.guess_label.setVisible(bool(text))

    def _request_create(self) -> None:
        if self.corpus() is not None:
            self.create_requested.emit(self.task(), list(self._paths), self.swap())

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        """Accept drags that carry local files."""
        if self._local_files(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    dragMoveEvent = dragEnterEvent  # keep accepting while a file drag moves over the panel

    def dropEvent(self, event: QDropEvent) -> None:
        """Load the dropped files."""
        paths = self._local_files(event.mimeData())
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.load_files(paths)

    @staticmethod
    def _local_files(mime: Any) -> list[str]:
        if mime is None or not mime.hasUrls():
            return []
        urls = mime.urls()
        if not urls or not all(url.isLocalFile() for url in urls):
            return []
        return [url.toLocalFile() for url in urls]

    # ----------------------------------------------------------------- parsing
    def _reparse(self, *_: object) -> None:
        self._generation += 1
        self._pending = None
        self._poll.stop()
        if not self._paths:
            self._result = ParseResult()
            self._show_result()
            return
        task, paths, swap = self.task(), list(self._paths), self.swap()
        if self._total_bytes(paths) <= self.async_bytes:
            self._result = parse_corpus(task, paths, swap)
            self._show_result()
            self.parsed.emit()
            return
        if self._executor is None:
            self._executor = executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="corpus-preview")
            self.destroyed.connect(lambda *_: executor.shutdown(wait=False, cancel_futures=True))
        self._pending = (self._generation, self._executor.submit(parse_corpus, task, paths, swap))
        self._result = ParseResult()
        self._show_result()
        self.counts_label.setText("Reading the corpus…")
        self._poll.start()

    def _poll_worker(self) -> None:
        if self._pending is None:
            self._poll.stop()
            return
        generation, future = self._pending
        if not future.done():
            return
        self._poll.stop()
        self._pending = None
        if generation != self._generation:
            return
        self._result = future.result()  # parse_corpus never raises
        self._show_result()
        self.parsed.emit()

    @staticmethod
    def _total_bytes(paths: list[str]) -> int:
        total = 0
        for path in paths:
            with contextlib.suppress(OSError):  # load_corpus reports a missing file
                total += os.path.getsize(path)
        return total

    # ----------------------------------------------------------------- display
    def _show_result(self) -> None:
        result = self._result
        corpus = result.corpus
        self.create_button.setEnabled(corpus is not None)
        self.error_label.setText(result.error)
        self.error_label.setVisible(bool(result.error))
        warnings = corpus.warnings if corpus else ()
        self.warning_label.setText("\n".join(f"⚠ {w}" for w in warnings))
        self.warning_label.setVisible(bool(warnings))
        self.encoding_label.setText(corpus.encoding if corpus else "—")
        self.counts_label.setText(self._counts_text(result))
        self._fill_table(result.rows)
        self._fill_histogram(result.lengths)

    @staticmethod
    def _counts_text(result: ParseResult) -> str:
        if result.corpus is None:
            return "—"
        counts = result.counts
        if result.corpus.task == "continuation":
            parts = [f"{s} {counts[s][0]:,} characters / {counts[s][1]:,} paragraphs" for s in SPLITS]
            total = len(result.corpus.text)
            return " · ".join(parts) + f"  (of {total:,} characters)"
        total = sum(counts[s][0] for s in SPLITS)
        plural = "s" if total != 1 else ""
        return " · ".join(f"{s} {counts[s][0]:,}" for s in SPLITS) + f"  ({total:,} pair{plural})"

    def _fill_table(self, rows: list[tuple[str, ...]]) -> None:
        columns = 1 if self.task() == "continuation" else 2
        self.table.setColumnCount(columns)
        self.table.setHorizontalHeaderLabels(["Paragraph"] if columns == 1 else ["Source", "Target"])
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row[:columns]):
                item = qw.QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(r, c, item)

    def _fill_histogram(self, lengths: list[int]) -> None:
        novel = self.task() == "continuation"
        self.plot.setLabel("bottom", f"{'paragraph' if novel else 'source'} length (characters)")
        self.plot.setLabel("left", "paragraphs" if novel else "pairs")
        if not lengths:
            self.histogram.setOpts(x=[], height=[], width=1.0)
            return
        values = np.asarray(lengths)
        low, high = int(values.min()), int(values.max())
        if high - low < 60:  # one bar per length
            centers = np.arange(low, high + 1)
            heights = np.bincount(values - low, minlength=high - low + 1)
            width = 0.8
        else:
            heights, edges = np.histogram(values, bins=40)
            centers = (edges[:-1] + edges[1:]) / 2
            width = float(edges[1] - edges[0]) * 0.9
        self.histogram.setOpts(x=centers, height=heights, width=width)
        self.plot.setXRange(float(centers[0]) - width, float(centers[-1]) + width, padding=0.02)
        self.plot.setYRange(0, float(heights.max()), padding=0.05)
