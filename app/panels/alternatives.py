"""The tokens of the output shown, clickable, and what else the model considered at each one.

:class:`AlternativesView` shows a :class:`~textgen_core.generation_result.Candidate` as a strip of
tokens (characters for couplets). Clicking a token lists the step's most likely tokens with their
probabilities (:attr:`Candidate.alternatives`, the written one marked, added at the end when the
search wrote a less likely one); choosing another one and pressing *Branch here* (or double-clicking
it) asks for a new output that starts with the tokens before it and the chosen one
(:attr:`AlternativesView.branch_requested`); *Undo branch* goes back to the output before.
"""

from __future__ import annotations

import html
import math

from PySide6.QtCore import QPoint, QRect, Qt, QUrl, Signal
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from textgen_core.generation_result import Alternative, Candidate

HINT = "Click a token of the output to see what else the model considered there."
NONE_RECORDED = "No alternatives were recorded for this output (set Alternatives per token above 0)."
_SCHEME = "token"
_BAR = "█▏▎▍▌▋▊▉"
_TINTS = ("#fdf1d6", "#e3edfb")           # alternate token backgrounds, so boundaries show
_SELECTED = "background-color: #b3261e; color: #ffffff;"


def display_piece(piece: str) -> str:
    """A token as it reads in the strip: SentencePiece's "▁" is a space, the newline token "↵"."""
    return piece.replace("\u2581", " ") or "∅"


def probability_bar(p: float, top: float = 1.0, width: int = 5) -> str:
    """``p`` as a bar of block characters, ``width`` cells long for ``top`` (the list's likeliest)."""
    share = p / top if top > 0 else 0.0
    eighths = round(max(0.0, min(1.0, share)) * width * 8)
    full, part = divmod(eighths, 8)
    return "█" * full + (_BAR[part] if part else "")


def choices_at(candidate: Candidate, index: int) -> list[tuple[Alternative, bool]]:
    """The alternatives at output position ``index``, most likely first, each with whether it is
    the token written there; the written one is added (with its own probability) when the step's
    most likely tokens do not include it. Empty when none were recorded."""
    if index >= len(candidate.alternatives) or not candidate.alternatives[index]:
        return []
    written = candidate.ids[index]
    rows = [(alt, alt.id == written) for alt in candidate.alternatives[index]]
    if not any(chosen for _, chosen in rows):
        logprob = candidate.token_logprobs[index] if index < len(candidate.token_logprobs) else -math.inf
        p = math.exp(logprob) if math.isfinite(logprob) else 0.0
        rows.append((Alternative(candidate.tokens[index], written, p), True))
    return sorted(rows, key=lambda row: -row[0].p)


class TokenStrip(QTextBrowser):
    """The output's tokens as links; :attr:`token_clicked` carries the clicked token's position."""

    token_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setToolTip("The output, token by token: click one to see the alternatives there")
        self.anchorClicked.connect(self._clicked)
        self._tokens: list[str] = []
        self._selected = -1

    def set_tokens(self, tokens: list[str], selected: int = -1) -> None:
        self._tokens, self._selected = list(tokens), selected
        self._render()

    def select(self, index: int) -> None:
        self._selected = index
        self._render()

    def selected(self) -> int:
        return self._selected

    def tokens(self) -> list[str]:
        return list(self._tokens)

    def token_rect(self, index: int) -> QRect:
        """Where token ``index`` is drawn, in viewport coordinates (empty when it is not shown)."""
        block = self.document().begin()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                fragment = it.fragment()
                if fragment.charFormat().anchorHref() == f"{_SCHEME}:{index}":
                    cursor = QTextCursor(self.document())
                    cursor.setPosition(fragment.position())
                    left = self.cursorRect(cursor)
                    cursor.setPosition(fragment.position() + fragment.length())
                    right = self.cursorRect(cursor)
                    return QRect(left.topLeft(), QPoint(right.left(), left.bottom()))
                it += 1
            block = block.next()
        return QRect()

    def _render(self) -> None:
        parts = []
        for i, token in enumerate(self._tokens):
            style = _SELECTED if i == self._selected else f"background-color: {_TINTS[i % 2]};"
            text = html.escape(display_piece(token)).replace(" ", "&nbsp;")
            parts.append(f'<a href="{_SCHEME}:{i}" style="text-decoration: none; color: #202124; '
                         f'{style}">{text}</a>')
            if token in ("\n", "↵"):
                parts.append("<br>")
        self.setHtml(f'<div style="font-size: 14pt;">{"".join(parts)}</div>')   # tints part them

    def _clicked(self, url: QUrl) -> None:
        if url.scheme() != _SCHEME:
            return
        try:
            index = int(url.path())
        except ValueError:
            return
        if 0 <= index < len(self._tokens):
            self.select(index)
            self.token_clicked.emit(index)


class AlternativesView(QWidget):
    """The token strip, the alternatives of the clicked token, *Branch here* and *Undo branch*.

    Signals: ``branch_requested(position: int, token_id: int)``, ``undo_requested()``.
    """

    branch_requested = Signal(int, int)
    undo_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._candidate: Candidate | None = None
        self._rows: list[tuple[Alternative, bool]] = []
        self._can_branch = True
        self.strip = TokenStrip()
        self.strip.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.strip.token_clicked.connect(self._show_position)
        self.heading = QLabel(HINT)
        self.heading.setWordWrap(True)
        self.choices = QListWidget()
        self.choices.setToolTip("The most likely tokens at the clicked position, with their "
                                "probabilities (the bars relative to the likeliest); choose one and "
                                "press Branch here (or double-click it) to write on from it")
        self.choices.setMinimumHeight(6 * (self.choices.fontMetrics().height() + 4))
        self.choices.currentRowChanged.connect(self._update_buttons)
        self.choices.itemDoubleClicked.connect(lambda _item: self._branch())
        self.branch_button = QPushButton("Branch here")
        self.branch_button.setToolTip("Write again from this position with the chosen token, "
                                      "keeping the tokens before it and the same settings")
        self.branch_button.clicked.connect(self._branch)
        self.undo_button = QPushButton("Undo branch")
        self.undo_button.setToolTip("Go back to the output before the last branch")
        self.undo_button.clicked.connect(self.undo_requested)
        self.undo_button.setEnabled(False)
        side = QWidget()
        column = QVBoxLayout(side)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.heading)
        column.addWidget(self.choices, 1)
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.setChildrenCollapsible(False)
        self.split.addWidget(self.strip)
        self.split.addWidget(side)
        self.split.setStretchFactor(0, 1)
        self.split.setStretchFactor(1, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.branch_button)
        buttons.addWidget(self.undo_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.split, 1)
        layout.addLayout(buttons)
        self._update_buttons()

    # ----------------------------------------------------------------- public API
    def set_candidate(self, candidate: Candidate | None) -> None:
        """Show ``candidate``'s tokens (None: nothing); the alternatives list empties."""
        self._candidate = candidate
        self.strip.set_tokens(candidate.tokens if candidate is not None else [])
        self._rows = []
        self.choices.clear()
        recorded = candidate is not None and any(candidate.alternatives)
        self.heading.setText(HINT if recorded or candidate is None else NONE_RECORDED)
        self._update_buttons()

    def select_token(self, index: int) -> None:
        """What clicking the token at ``index`` does."""
        self.strip.select(index)
        self._show_position(index)

    def alternatives(self) -> list[tuple[str, float, bool]]:
        """The alternatives listed: (token, probability, written there), most likely first."""
        return [(alt.token, alt.p, chosen) for alt, chosen in self._rows]

    def choose(self, row: int) -> None:
        """Select alternative ``row`` and branch from it (what a double-click does)."""
        self.choices.setCurrentRow(row)
        self._branch()

    def set_branching(self, can_branch: bool, can_undo: bool) -> None:
        """Whether *Branch here* may be used (not while writing) and *Undo branch* has a step."""
        self._can_branch = can_branch
        self.undo_button.setEnabled(can_undo)
        self._update_buttons()

    # ----------------------------------------------------------------- internals
    def _show_position(self, index: int) -> None:
        candidate = self._candidate
        if candidate is None or not 0 <= index < len(candidate.ids):
            return
        self._rows = choices_at(candidate, index)
        self.choices.clear()
        token = display_piece(candidate.tokens[index])
        if not self._rows:
            self.heading.setText(f"Position {index + 1} ({token}): {NONE_RECORDED}")
        else:
            self.heading.setText(f"Position {index + 1} ({token}): the likeliest tokens (✓ written)")
        top = max(alt.p for alt, _ in self._rows) if self._rows else 1.0
        for alt, chosen in self._rows:
            label = display_piece(alt.token)
            item = QListWidgetItem(f"{label}  {alt.p:5.1%}  {probability_bar(alt.p, top)}"
                                   + ("  ✓" if chosen else ""))
            item.setToolTip(f"{label}: probability {alt.p:.4f}" + (", the token written" if chosen else ""))
            if chosen:
                font = item.font()
                font.setBold(True)
                item.setFont(font)
            self.choices.addItem(item)
        self._update_buttons()

    def _branch(self) -> None:
        row, index = self.choices.currentRow(), self.strip.selected()
        if not self.branch_button.isEnabled() or not 0 <= row < len(self._rows):
            return
        self.branch_requested.emit(index, self._rows[row][0].id)

    def _update_buttons(self, *_args: object) -> None:
        row = self.choices.currentRow()
        chosen = 0 <= row < len(self._rows) and not self._rows[row][1]
        self.branch_button.setEnabled(self._can_branch and chosen)
