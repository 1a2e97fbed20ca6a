"""The Write panel: answer a couplet, continue a novel, translate — one mode per project task.

The panel never generates anything itself: it emits :attr:`WritePanel.generate_requested` and the
lead's worker feeds results back through :meth:`~WritePanel.show_result` (couplet, translation) or
:meth:`~WritePanel.append_stream` / :meth:`~WritePanel.stream_finished` (continuation).
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QKeySequence,
    QResizeEvent,
    QShortcut,
    QTextCharFormat,
    QTextCursor,
)
from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.panels.decoding_controls import DecodingControls
from textgen_core.decoding.config import DecodeConfig
from textgen_core.generation import GenerationResult
from textgen_core.project import DEFAULT_DECODING

MODES = ("couplet", "translation", "continuation")
_TITLES = {
    "couplet": "Couplet — type the first line, the model writes the second",
    "translation": "Translation",
    "continuation": "Novel continuation — the model continues from the cursor",
}


class CoupletGrid(QWidget):
    """Two lines of a couplet, one character per cell, aligned column by column.

    The characters are as large as the width allows (between :data:`MIN_PX` and :data:`MAX_PX`
    pixels), so a long couplet still fits beside the decoding controls without scrolling.
    """

    MIN_PX, MAX_PX = 14, 40
    SPACING, PAD = 6, 4          # between cells; inside a cell, on each side

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._grid = QGridLayout(self)
        self._grid.setSpacing(self.SPACING)
        self._grid.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self._cells: list[list[QLabel]] = [[], []]
        self._heads = [QLabel("上联"), QLabel("下联")]
        for row, head in enumerate(self._heads):
            head.setToolTip(("First line", "Second line")[row])
            head.setStyleSheet("color: palette(mid);")
            head.setMinimumWidth(head.sizeHint().width())   # squeeze the cells, never the labels
            self._grid.addWidget(head, row, 0)

    def set_lines(self, first: str, second: str) -> None:
        """Show ``first`` above ``second``; whitespace is dropped, punctuation keeps its column."""
        for row in self._cells:
            for cell in row:
                self._grid.removeWidget(cell)
                cell.deleteLater()
        self._cells = [[], []]
        for row, line in enumerate(("".join(first.split()), "".join(second.split()))):
            for col, char in enumerate(line):
                cell = QLabel(char)
                cell.setAlignment(Qt.AlignmentFlag.AlignCenter)
                cell.setMargin(self.PAD)
                cell.setStyleSheet("background: #b3261e; color: #ffe08a; border-radius: 4px;")
                self._grid.addWidget(cell, row, col + 1)
                self._cells[row].append(cell)
        self._fit()

    def char_pixels(self) -> int:
        """The characters' current size in pixels."""
        return self._pixels(self.width())

    def lines(self) -> tuple[str, str]:
        """The characters shown in each row."""
        first, second = ("".join(c.text() for c in row) for row in self._cells)
        return first, second

    def cell_count(self) -> int:
        return sum(len(row) for row in self._cells)

    def minimumSizeHint(self) -> QSize:          # shrink with the panel: the characters do too
        return QSize(0, super().minimumSizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _pixels(self, width: int) -> int:
        columns = max((len(row) for row in self._cells), default=0)
        if not columns:
            return self.MAX_PX
        margins = self._grid.contentsMargins()
        free = (width - margins.left() - margins.right() - self._heads[0].sizeHint().width()
                - self.SPACING * columns)
        return max(self.MIN_PX, min(self.MAX_PX, int(free / columns * 0.8) - 2 * self.PAD))

    def _fit(self) -> None:
        font = QFont(self.font())
        font.setPixelSize(self._pixels(self.width()))
        for row in self._cells:
            for cell in row:
                if cell.font().pixelSize() != font.pixelSize():
                    cell.setFont(font)


class WritePanel(QWidget):
    """Write with the model in the mode of the project's task (see :data:`MODES`).

    Signals: ``generate_requested(text: str, config: DecodeConfig, mode: str)`` and
    ``stop_requested()``.
    """

    generate_requested = Signal(str, object, str)
    stop_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._mode, self._error = "couplet", ""
        self._busy = self._streaming = self._streamed = False
        self._stream_cursor: QTextCursor | None = None
        self._late_cursor: QTextCursor | None = None    # where a late, unstreamed result goes
        self._stream_start = 0
        # Beams return all their candidates by default, so that there are several to choose from.
        self._defaults: dict[str, DecodeConfig] = {
            task: replace(c, n_best=c.beam_size) if c.strategy == "beam" else c
            for task, c in DEFAULT_DECODING.items()
        }
        self._last_result: GenerationResult | None = None

        self.title = QLabel()
        self.title.setStyleSheet("font-weight: bold;")
        self.title.setWordWrap(True)
        self.stack = QStackedWidget()
        self.stack.addWidget(self._build_couplet())
        self.stack.addWidget(self._build_translation())
        self.stack.addWidget(self._build_continuation())
        self.controls = DecodingControls()
        box = QGroupBox("Decoding")
        box_layout = QVBoxLayout(box)
        box_layout.addWidget(self.controls)
        box_layout.addStretch(1)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        left = QVBoxLayout()
        left.addWidget(self.title)
        left.addWidget(self.stack, 1)
        left.addWidget(self.status)
        main = QHBoxLayout(self)
        main.addLayout(left, 3)
        main.addWidget(box, 0)
        self.set_task("couplet")

    # ----------------------------------------------------------------- building
    def _build_couplet(self) -> QWidget:
        page = QWidget()
        self.first_line = QLineEdit()
        self.first_line.setPlaceholderText("e.g. 春风得意花铺路")    # fits a narrow panel
        self.first_line.returnPressed.connect(self._write_couplet)
        self.write_button = QPushButton("Write")
        self.write_button.setToolTip("Write the second line (Enter)")
        self.write_button.clicked.connect(self._write_couplet)
        row = QHBoxLayout()
        row.addWidget(QLabel("First line"))
        row.addWidget(self.first_line, 1)
        row.addWidget(self.write_button)
        self.candidates = QListWidget()
        self.candidates.setToolTip("Candidate second lines, best first; select one to show it")
        self.candidates.currentRowChanged.connect(self._show_couplet_candidate)
        self.couplet_grid = CoupletGrid()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.couplet_grid)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(scroll)
        split.addWidget(self.candidates)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(split, 1)
        return page

    def _build_translation(self) -> QWidget:
        page = QWidget()
        self.source = QPlainTextEdit()
        self.source.setPlaceholderText("Text to translate")
        self.translate_button = QPushButton("Translate")
        self.translate_button.setToolTip("Translate the source text (Ctrl+Enter)")
        self.translate_button.clicked.connect(self._translate)
        shortcut = QShortcut(QKeySequence("Ctrl+Return"), self.source)
        shortcut.activated.connect(self._translate)
        self.target = QPlainTextEdit()
        self.target.setReadOnly(True)
        self.target.setPlaceholderText("The best translation appears here")
        self.nbest = QListWidget()
        self.nbest.setToolTip("Translations with their scores, best first; select one to show it")
        self.nbest.currentRowChanged.connect(self._show_translation_candidate)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.translate_button)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Source"))
        layout.addWidget(self.source, 2)
        layout.addLayout(buttons)
        layout.addWidget(QLabel("Translation"))
        layout.addWidget(self.target, 2)
        layout.addWidget(QLabel("All translations (score: log-probability, higher is better)"))
        layout.addWidget(self.nbest, 1)
        return page

    def _build_continuation(self) -> QWidget:
        page = QWidget()
        self.editor = QPlainTextEdit()
        self.editor.setPlaceholderText("Write the beginning of a story; put the cursor where the model "
                                       "should go on and press Continue.")
        self.continue_button = QPushButton("Continue")
        self.continue_button.setToolTip("Continue the text from the cursor (Ctrl+Enter)")
        self.continue_button.clicked.connect(self._continue)
        shortcut = QShortcut(QKeySequence("Ctrl+Return"), self.editor)
        shortcut.activated.connect(self._continue)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop writing; the text so far stays")
        self.stop_button.clicked.connect(self.stop_requested)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.continue_button)
        buttons.addWidget(self.stop_button)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.editor, 1)
        layout.addLayout(buttons)
        return page

    # ----------------------------------------------------------------- public API
    def mode(self) -> str:
        """The mode shown: ``"couplet"``, ``"translation"`` or ``"continuation"``."""
        return self._mode

    def set_task(self, task: str) -> None:
        """Show the mode for ``task`` and load its decoding defaults."""
        if task not in MODES:
            raise ValueError(f"unknown task {task!r}; expected one of {', '.join(MODES)}")
        self._end_stream()
        self._mode = task
        self.stack.setCurrentIndex(MODES.index(task))
        self.title.setText(_TITLES[task])
        self.controls.set_single_output(task == "continuation")
        self.controls.set_config(self._defaults[task])
        self.show_error("")
        self._update_buttons()

    def set_defaults(self, config: DecodeConfig, task: str | None = None) -> None:
        """Use ``config`` as the defaults of ``task`` (default: the mode shown) and show them if that
        mode is shown — e.g. the project's ``generate`` settings after :meth:`set_task`."""
        task = task or self._mode
        self._defaults[task] = config
        if task == self._mode:
            self.controls.set_config(config)

    def decode_config(self) -> DecodeConfig:
        """The decoding settings as they will be sent with the next request."""
        return self.controls.config()

    def set_busy(self, busy: bool) -> None:
        """Disable the action buttons while generating; ``False`` also ends a stream."""
        self._busy = busy
        if not busy:
            self._end_stream()
        if not self._error:
            self.status.setText("Writing…" if busy else "")
        self._update_buttons()

    def show_error(self, message: str) -> None:
        """Show a one-line error inline in red (an empty message clears it); ends a stream."""
        self._error = message.strip().splitlines()[0] if message.strip() else ""
        if self._error:
            self._end_stream()
        self.status.setStyleSheet("color: #c62828;" if self._error else "")
        self.status.setText(self._error)

    def error_text(self) -> str:
        """The error shown, or ``""``."""
        return self._error

    def show_result(self, result: GenerationResult) -> None:
        """Show a finished generation in the current mode."""
        self._last_result = result
        hyps = result.hypotheses
        if self._mode == "couplet":
            self.candidates.clear()
            for h in hyps:
                self.candidates.addItem(f"{''.join(h.text.split())}    {h.score:.3f}")
            if hyps:
                self.candidates.setCurrentRow(0)
            else:
                self.couplet_grid.set_lines(result.prompt, "")
        elif self._mode == "translation":
            self.nbest.clear()
            for i, h in enumerate(hyps, 1):
                self.nbest.addItem(f"{i}. [{h.score:.3f}]  {h.text}")
            self.target.setPlainText(hyps[0].text if hyps else "")
            if hyps:
                self.nbest.setCurrentRow(0)
        else:
            cursor = self._stream_cursor or self._late_cursor
            if cursor is not None and not self._streamed and hyps:
                # Not streamed (e.g. beam search): the whole continuation at once.
                self._stream_cursor, self._late_cursor = cursor, None
                self._streaming = True
                self.append_stream(hyps[0].text)
            self._end_stream()

    def append_stream(self, piece: str) -> None:
        """Insert a streamed piece at the continuation point and keep it in view."""
        if self._stream_cursor is None:
            self._begin_stream(self.editor.textCursor().position())
        assert self._stream_cursor is not None
        self._streamed = True
        self._stream_cursor.insertText(piece)
        self.editor.setTextCursor(self._stream_cursor)
        self.editor.ensureCursorVisible()
        self._highlight(self._stream_start, self._stream_cursor.position())

    def stream_finished(self) -> None:
        """The continuation ended (finished or stopped): the text can be edited again."""
        self._end_stream()

    def is_streaming(self) -> bool:
        return self._streaming

    def couplet_lines(self) -> tuple[str, str]:
        """The first and second line as shown in the couplet grid."""
        return self.couplet_grid.lines()

    # ----------------------------------------------------------------- actions
    def _request(self, text: str, mode: str) -> None:
        self.show_error("")
        self.generate_requested.emit(text, self.controls.config(), mode)

    def _write_couplet(self) -> None:
        if self._busy or self._mode != "couplet":
            return
        text = "".join(self.first_line.text().split())
        if not text:
            self.show_error("Type the first line of the couplet first.")
            return
        self._request(text, "couplet")

    def _translate(self) -> None:
        if self._busy or self._mode != "translation":
            return
        text = self.source.toPlainText().strip()
        if not text:
            self.show_error("Type the text to translate first.")
            return
        self._request(text, "translation")

    def _continue(self) -> None:
        if self._busy or self._streaming or self._mode != "continuation":
            return
        cursor = self.editor.textCursor()
        position = cursor.selectionEnd()
        before = QTextCursor(self.editor.document())
        before.setPosition(position, QTextCursor.MoveMode.KeepAnchor)
        self._begin_stream(position)
        self._request(before.selection().toPlainText(), "continuation")

    def _begin_stream(self, position: int) -> None:
        self._stream_cursor = QTextCursor(self.editor.document())
        self._stream_cursor.setPosition(position)
        self._stream_start = position
        self._late_cursor = None
        self._streaming, self._streamed = True, False
        self.editor.setReadOnly(True)
        self.editor.setExtraSelections([])
        self._update_buttons()

    def _end_stream(self) -> None:
        if not self._streaming:
            return
        self._streaming = False
        # Keep the insertion point for a result that arrives after the end of a silent stream.
        self._late_cursor = None if self._streamed else self._stream_cursor
        self._stream_cursor = None
        self.editor.setReadOnly(False)
        self._update_buttons()

    def _highlight(self, start: int, end: int) -> None:
        """Tint the text the model wrote in this continuation."""
        selection = QTextEdit.ExtraSelection()
        cursor = QTextCursor(self.editor.document())
        cursor.setPosition(start)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        fmt = QTextCharFormat()
        fmt.setBackground(QColor(255, 214, 102, 90))
        selection.cursor, selection.format = cursor, fmt
        self.editor.setExtraSelections([selection])

    def _update_buttons(self) -> None:
        idle = not self._busy and not self._streaming
        self.write_button.setEnabled(idle)
        self.translate_button.setEnabled(idle)
        self.continue_button.setEnabled(idle)
        self.stop_button.setEnabled(self._streaming)

    def _show_couplet_candidate(self, row: int) -> None:
        result = self._last_result
        if result is None or not 0 <= row < len(result.hypotheses):
            return
        self.couplet_grid.set_lines(result.prompt, result.hypotheses[row].text)

    def _show_translation_candidate(self, row: int) -> None:
        result = self._last_result
        if result is not None and 0 <= row < len(result.hypotheses):
            self.target.setPlainText(result.hypotheses[row].text)
