"""The Write panel's three pages, one per task: a couplet's first line with the aligned grid and the
candidate list, translation with its n-best list, a story editor for continuation.

The pages only hold widgets; :class:`~app.panels.write.WritePanel` does what their buttons ask for
through the callbacks it passes in.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.panels.couplet_grid import CoupletGrid

COMPARE_TIP = ("Write the same input with greedy decoding, beam search (the beam size set here) and "
               "sampling (the temperature, top-k and top-p set here), and show the three outputs "
               "side by side")
Action = Callable[[], object]


def button(text: str, tip: str, slot: Action) -> QPushButton:
    widget = QPushButton(text)
    widget.setToolTip(tip)
    widget.clicked.connect(lambda _checked=False: slot())
    return widget


def _page_layout(page: QWidget) -> QVBoxLayout:
    layout = QVBoxLayout(page)
    layout.setContentsMargins(0, 0, 0, 0)
    return layout


class CoupletPage(QWidget):
    def __init__(self, write: Action, compare: Action, select: Callable[[int], None]) -> None:
        super().__init__()
        self.first_line = QLineEdit()
        self.first_line.setPlaceholderText("First line, e.g. 春风得意花铺路")
        self.first_line.setToolTip("The first line of the couplet (上联); Enter writes the second")
        self.first_line.returnPressed.connect(write)
        self.write_button = button("Write", "Write the second line (Enter)", write)
        self.compare_button = button("Compare", COMPARE_TIP, compare)
        row = QHBoxLayout()                # no label: the field keeps its room in a narrow panel
        row.addWidget(self.first_line, 1)
        row.addWidget(self.write_button)
        row.addWidget(self.compare_button)
        self.candidates = QListWidget()
        self.candidates.setToolTip("Candidate second lines with their scores (log-probability, "
                                   "higher is better) and whether the last characters' tones contrast "
                                   "(平仄 ✓), best first; select one to show it")
        self.candidates.currentRowChanged.connect(select)
        self.grid = CoupletGrid()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.grid)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(scroll)
        split.addWidget(self.candidates)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 1)
        layout = _page_layout(self)
        layout.addLayout(row)
        layout.addWidget(split, 1)


class TranslationPage(QWidget):
    def __init__(self, translate: Action, compare: Action, select: Callable[[int], None]) -> None:
        super().__init__()
        self.source = QPlainTextEdit()
        self.source.setPlaceholderText("Text to translate")
        self.translate_button = button("Translate", "Translate the source text (Ctrl+Enter)", translate)
        self.compare_button = button("Compare", COMPARE_TIP, compare)
        QShortcut(QKeySequence("Ctrl+Return"), self.source).activated.connect(translate)
        self.target = QPlainTextEdit()
        self.target.setReadOnly(True)
        self.target.setPlaceholderText("The best translation appears here")
        self.nbest = QListWidget()
        self.nbest.setToolTip("Translations with their scores, best first; select one to show it")
        self.nbest.currentRowChanged.connect(select)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.compare_button)
        buttons.addWidget(self.translate_button)
        layout = _page_layout(self)
        layout.addWidget(QLabel("Source"))
        layout.addWidget(self.source, 2)
        layout.addLayout(buttons)
        layout.addWidget(QLabel("Translation"))
        layout.addWidget(self.target, 2)
        layout.addWidget(QLabel("All translations (score: log-probability, higher is better)"))
        layout.addWidget(self.nbest, 1)


class ContinuationPage(QWidget):
    def __init__(self, go_on: Action, compare: Action, stop: Action) -> None:
        super().__init__()
        self.editor = QPlainTextEdit()
        self.editor.setPlaceholderText("Write the beginning of a story; put the cursor where the model "
                                       "should go on and press Continue.")
        self.continue_button = button("Continue", "Continue the text from the cursor (Ctrl+Enter)", go_on)
        QShortcut(QKeySequence("Ctrl+Return"), self.editor).activated.connect(go_on)
        self.compare_button = button("Compare", COMPARE_TIP + " (the text before the cursor)", compare)
        self.stop_button = button("Stop", "Stop writing; the text so far stays", stop)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.compare_button)
        buttons.addWidget(self.continue_button)
        buttons.addWidget(self.stop_button)
        layout = _page_layout(self)
        layout.addWidget(self.editor, 1)
        layout.addLayout(buttons)
