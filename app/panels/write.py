"""The Write panel: answer a couplet, continue a novel, translate — one mode per project task.

The panel never generates anything itself: it emits :attr:`WritePanel.generate_requested` (a
:class:`~app.write_request.WriteRequest`) or :attr:`WritePanel.compare_requested` (a
:class:`~app.write_request.CompareRequest`), and the lead's worker feeds results back through
:meth:`~WritePanel.append_stream` (tokens as they come, greedy or sampling with one output),
:meth:`~WritePanel.show_result` and :meth:`~WritePanel.show_comparison`.

A result's hypotheses are listed best first with their scores (and for couplets the 平仄 mark);
the one selected is the main output, its tokens are clickable (:class:`AlternativesView`: what else
the model considered at each, and *Branch here* to write on from another), and
:attr:`WritePanel.hypothesis_selected` tells the window which hypothesis the Attention panel shows.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import (
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.panels.alternatives import AlternativesView
from app.panels.compare import CompareView
from app.panels.couplet_controls import lock_message, tone_mark
from app.panels.couplet_grid import CoupletGrid
from app.panels.decoding_controls import DecodingControls
from app.panels.story_stream import StoryStream
from app.panels.write_pages import COMPARE_TIP, ContinuationPage, CoupletPage, TranslationPage
from app.write_request import CompareRequest, CompareRow, Selection, WriteRequest, compare_configs
from textgen_core.decoding.config import DecodeConfig
from textgen_core.errors import TextGenError
from textgen_core.generation import Candidate, GenerationResult
from textgen_core.project import DEFAULT_DECODING

__all__ = ["MODES", "CoupletGrid", "WritePanel"]

MODES = ("couplet", "translation", "continuation")
_TITLES = {
    "couplet": "Couplet — type the first line, the model writes the second",
    "translation": "Translation",
    "continuation": "Novel continuation — the model continues from the cursor",
}
_EMPTY = {"couplet": "Type the first line of the couplet first.",
          "translation": "Type the text to translate first.", "continuation": ""}
EDITED = "The continuation was edited since it was written: press Continue to write again."


class WritePanel(QWidget):
    """Write with the model in the mode of the project's task (see :data:`MODES`).

    Signals: ``generate_requested(WriteRequest)``, ``compare_requested(CompareRequest)``,
    ``hypothesis_selected(Selection)`` and ``stop_requested()``.
    """

    generate_requested = Signal(object)
    compare_requested = Signal(object)
    hypothesis_selected = Signal(object)
    stop_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._mode, self._error = "couplet", ""
        self._busy = False
        # Beams return all their candidates by default, so that there are several to choose from.
        self._defaults: dict[str, DecodeConfig] = {
            task: replace(c, n_best=c.beam_size) if c.strategy == "beam" else c
            for task, c in DEFAULT_DECODING.items()
        }
        self._last_result: GenerationResult | None = None
        self._shown: WriteRequest | None = None       # the request of the result shown
        self._pending: WriteRequest | None = None     # the request being written
        self._history: list[tuple[WriteRequest | None, GenerationResult, int]] = []   # undo steps
        self._row = 0
        self._live_on, self._live_text = False, ""     # streaming: started, and its text so far
        self._selection_key = 0

        self.title = QLabel()
        self.title.setStyleSheet("font-weight: bold;")
        self.title.setWordWrap(True)
        couplet = CoupletPage(self._write_couplet, self._compare, self._select)
        translation = TranslationPage(self._translate, self._compare, self._select)
        story = ContinuationPage(self._continue, self._compare, self.stop_requested.emit)
        self.stack = QStackedWidget()
        for page in (couplet, translation, story):
            self.stack.addWidget(page)
        # the pages' widgets, by the names the panel has always had
        self.first_line, self.write_button = couplet.first_line, couplet.write_button
        self.compare_button, self.candidates = couplet.compare_button, couplet.candidates
        self.couplet_grid = couplet.grid
        self.source, self.target, self.nbest = translation.source, translation.target, translation.nbest
        self.translate_button = translation.translate_button
        self.compare_translation_button = translation.compare_button
        self.editor, self.continue_button = story.editor, story.continue_button
        self.compare_story_button, self.stop_button = story.compare_button, story.stop_button
        self.story = StoryStream(self.editor)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.controls = DecodingControls()
        left = QVBoxLayout()
        left.addWidget(self.title)
        left.addWidget(self._build_split(), 1)
        left.addWidget(self.status)
        main = QHBoxLayout(self)
        main.addLayout(left, 3)
        main.addWidget(self._build_settings(), 0)
        self.set_task("couplet")

    # ----------------------------------------------------------------- building
    def _build_split(self) -> QSplitter:
        """The output (the mode's page), the tokens with their alternatives, the comparison."""
        self.tokens = AlternativesView()
        self.tokens.branch_requested.connect(self._branch)
        self.tokens.undo_requested.connect(self._undo)
        self.compare_view = CompareView()
        self.lower = QTabWidget()
        self.lower.addTab(self.tokens, "Tokens")
        self.lower.addTab(self.compare_view, "Compare")
        self.lower.setTabToolTip(0, "The output shown, token by token: click one to see what else the "
                                    "model considered there, and branch from it")
        self.lower.setTabToolTip(1, COMPARE_TIP)
        self.split = QSplitter(Qt.Orientation.Vertical)
        self.split.setChildrenCollapsible(False)
        self.split.addWidget(self.stack)
        self.split.addWidget(self.lower)
        self.split.setStretchFactor(0, 1)
        self.split.setStretchFactor(1, 1)
        return self.split

    def _build_settings(self) -> QScrollArea:
        """The decoding controls in a box that scrolls when the panel is short."""
        box = _boxed("Decoding", self.controls)
        box.layout().addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(box)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(box.sizeHint().width() + scroll.verticalScrollBar().sizeHint().width())
        return scroll

    # ----------------------------------------------------------------- public API
    def mode(self) -> str:
        """The mode shown: ``"couplet"``, ``"translation"`` or ``"continuation"``."""
        return self._mode

    def set_task(self, task: str) -> None:
        """Show the mode for ``task`` and load its decoding defaults; earlier outputs are dropped."""
        if task not in MODES:
            raise ValueError(f"unknown task {task!r}; expected one of {', '.join(MODES)}")
        self.story.end()
        self.story.forget()
        self._mode = task
        self.stack.setCurrentIndex(MODES.index(task))
        self.title.setText(_TITLES[task])
        self.controls.set_single_output(task == "continuation")
        self.controls.set_couplet(task == "couplet")
        self.controls.set_config(self._defaults[task])
        self._last_result = self._shown = self._pending = None
        self._history.clear()
        self.tokens.set_candidate(None)
        self.compare_view.clear()
        self.lower.setCurrentWidget(self.tokens)
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

    def locks(self) -> dict[int, str]:
        """The couplet's locked characters as typed; raises TextGenError (one line) for a mistake."""
        return self.controls.locks()

    def set_busy(self, busy: bool) -> None:
        """Disable the action buttons while generating; ``False`` also ends a stream."""
        self._busy = busy
        if not busy:
            self.story.end()
        if not self._error:
            self.status.setText("Writing…" if busy else "")
        self._update_buttons()

    def show_error(self, message: str) -> None:
        """Show a one-line error inline in red (an empty message clears it); ends a stream."""
        self._error = lock_message(message.strip().splitlines()[0]) if message.strip() else ""
        if self._error:
            self.story.end()
            self._pending, self._live_on = None, False
        self.status.setStyleSheet("color: #c62828;" if self._error else "")
        self.status.setText(self._error)

    def error_text(self) -> str:
        """The error shown, or ``""``."""
        return self._error

    def show_result(self, result: GenerationResult) -> None:
        """Show a finished generation in the current mode: a branch's result keeps the one before
        it for *Undo branch*; a new write starts the history afresh."""
        request, self._pending = self._pending, None
        if request is not None and request.forced_prefix and self._last_result is not None:
            self._history.append((self._shown, self._last_result, self._row))
        else:
            self._history.clear()
        self._shown = request
        if self._mode == "continuation":
            self.story.finish(result.hypotheses[0].text if result.hypotheses else "")
        self._show(result, 0)
        self.lower.setCurrentWidget(self.tokens)

    def show_comparison(self, rows: list[CompareRow]) -> None:
        """Show the outputs of a :class:`CompareRequest` side by side."""
        prompt = next((r.result.prompt for r in rows if r.result is not None), "")
        self.compare_view.show_rows(prompt, rows, couplet=self._mode == "couplet")
        self.lower.setCurrentWidget(self.compare_view)

    def showing_comparison(self) -> bool:
        """Whether the comparison table is the view shown below the output."""
        return self.lower.currentWidget() is self.compare_view

    def append_stream(self, piece: str) -> None:
        """A streamed piece of the output being written: at the continuation point for a story, in
        the grid's second line for a couplet, at the end of the translation."""
        self._live_text += piece
        if self._mode == "continuation":
            self.story.append(piece)
            return
        if not self._live_on:                       # the first piece: clear the last output
            self._live_on = True
            self._clear_lists()
            self.tokens.set_candidate(None)
            if self._mode == "couplet":
                self.couplet_grid.set_lines(self._pending.text if self._pending else "", "")
            else:
                self.target.clear()
        if self._mode == "couplet":
            self.couplet_grid.append_second(piece)
        else:
            self.target.moveCursor(QTextCursor.MoveOperation.End)
            self.target.insertPlainText(piece)

    def streamed_text(self) -> str:
        """The text streamed for the last request (before the final text replaced it)."""
        return self._live_text

    def stream_finished(self) -> None:
        """The continuation ended (finished or stopped): the text can be edited again."""
        self.story.end()
        self._update_buttons()

    def is_streaming(self) -> bool:
        return self.story.streaming

    def couplet_lines(self) -> tuple[str, str]:
        """The first and second line as shown in the couplet grid."""
        return self.couplet_grid.lines()

    def selection(self) -> Selection | None:
        """The hypothesis shown (its result and index), or None."""
        result = self._last_result
        if result is None or not 0 <= self._row < len(result.hypotheses):
            return None
        return Selection(self._selection_key, result, self._row)

    def selected_candidate(self) -> Candidate | None:
        selection = self.selection()
        return selection.candidate if selection is not None else None

    def can_undo(self) -> bool:
        return bool(self._history)

    # ----------------------------------------------------------------- actions
    def _input(self) -> str | None:
        """The text to write from in the mode shown, or None (and a message) when there is none."""
        if self._mode == "couplet":
            text = "".join(self.first_line.text().split())
        elif self._mode == "translation":
            text = self.source.toPlainText().strip()
        else:
            before = QTextCursor(self.editor.document())
            before.setPosition(self.editor.textCursor().selectionEnd(), QTextCursor.MoveMode.KeepAnchor)
            return before.selection().toPlainText()
        if not text:
            self.show_error(_EMPTY[self._mode])
            return None
        return text

    def _read_locks(self) -> dict[int, str] | None:
        try:
            return self.controls.locks()
        except TextGenError as exc:
            self.show_error(str(exc))
            return None

    def _write(self, mode: str) -> None:
        if self._busy or self.story.streaming or self._mode != mode:
            return
        text = self._input()
        locks = self._read_locks() if text is not None else None
        if text is None or locks is None:
            return
        if mode == "continuation":
            self.story.begin(self.editor.textCursor().selectionEnd())
            self._update_buttons()
        self._send(WriteRequest(text, self.controls.config(), mode, locks))

    def _write_couplet(self) -> None:
        self._write("couplet")

    def _translate(self) -> None:
        self._write("translation")

    def _continue(self) -> None:
        self._write("continuation")

    def _send(self, request: WriteRequest) -> None:
        self.show_error("")
        self._pending, self._live_on, self._live_text = request, False, ""
        self.generate_requested.emit(request)

    def _compare(self) -> None:
        if self._busy or self.story.streaming:
            return
        text = self._input()
        locks = self._read_locks() if text is not None else None
        if text is None or locks is None:
            return
        self.show_error("")
        runs = compare_configs(self.controls.config())
        self.compare_requested.emit(CompareRequest(text, self._mode, runs, locks))

    def _branch(self, position: int, token: int) -> None:
        """Write again from ``position`` of the output shown, with ``token`` there."""
        candidate, request = self.selected_candidate(), self._shown
        if self._busy or candidate is None or request is None:
            return
        if self._mode == "continuation":
            if self.story.written() != candidate.text or not self.story.begin_replacing_written():
                self.show_error(EDITED)
                return
            self._update_buttons()
        self._send(request.branched([*candidate.ids[:position], token]))

    def _undo(self) -> None:
        """Back to the output before the last branch."""
        if self._busy or not self._history:
            return
        request, result, row = self._history.pop()
        if self._mode == "continuation":
            self.story.replace_written(result.hypotheses[0].text if result.hypotheses else "")
        self._shown = request
        self._show(result, row)

    # ----------------------------------------------------------------- showing
    def _show(self, result: GenerationResult, row: int) -> None:
        """Fill the mode's n-best list with ``result`` and select hypothesis ``row``."""
        self._last_result, self._live_on = result, False
        hyps = result.hypotheses
        lists = {"couplet": self.candidates, "translation": self.nbest}
        self._clear_lists()
        if self._mode in lists:
            widget = lists[self._mode]
            was = widget.blockSignals(True)
            for i, h in enumerate(hyps, 1):
                widget.addItem(_list_label(self._mode, i, h))
            widget.setCurrentRow(row if hyps else -1)
            widget.blockSignals(was)
        if self._mode == "couplet" and not hyps:
            self.couplet_grid.set_lines(result.prompt, "")
        elif self._mode == "translation" and not hyps:
            self.target.clear()
        self._select(row)
        self._update_buttons()

    def _clear_lists(self) -> None:
        for widget in (self.candidates, self.nbest):
            was = widget.blockSignals(True)
            widget.clear()
            widget.blockSignals(was)

    def _select(self, row: int) -> None:
        """Show hypothesis ``row`` as the output and tell the window (for its attention)."""
        result = self._last_result
        if result is None or not 0 <= row < len(result.hypotheses):
            self.tokens.set_candidate(None)
            return
        hyp = result.hypotheses[row]
        self._row = row
        if self._mode == "couplet":
            self.couplet_grid.set_lines(result.prompt, hyp.text)
        elif self._mode == "translation":
            self.target.setPlainText(hyp.text)
        self.tokens.set_candidate(hyp)
        self._selection_key += 1
        self.hypothesis_selected.emit(Selection(self._selection_key, result, row))

    def _update_buttons(self) -> None:
        idle = not self._busy and not self.story.streaming
        for button in (self.write_button, self.translate_button, self.continue_button,
                       self.compare_button, self.compare_translation_button, self.compare_story_button):
            button.setEnabled(idle)
        self.stop_button.setEnabled(self.story.streaming or (self._busy and self._mode == "continuation"))
        self.tokens.set_branching(idle and self._shown is not None, idle and bool(self._history))


def _boxed(title: str, widget: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.addWidget(widget)
    return box


def _list_label(mode: str, number: int, hyp: Candidate) -> str:
    """An n-best entry: a couplet's second line with its score and 平仄 mark, a numbered translation."""
    if mode == "couplet":
        mark = tone_mark(hyp.tone)
        return f"{''.join(hyp.text.split())}    {hyp.score:.3f}" + (f"    {mark}" if mark else "")
    return f"{number}. [{hyp.score:.3f}]  {hyp.text}"
