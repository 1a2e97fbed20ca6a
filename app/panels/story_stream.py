"""Where the Write panel's story continuation goes in its editor: streamed, finished, branched.

:class:`StoryStream` keeps the insertion point of a continuation while it is streamed (the editor is
read-only meanwhile), puts the final text in place of the streamed one when the result comes (they
differ only where streaming could not know the end, e.g. an unknown token), tints what the model
wrote, and remembers that written span, which follows the user's edits around it: a branch or an
undo replaces exactly it.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QPlainTextEdit, QTextEdit

_TINT = QColor(255, 214, 102, 90)


class StoryStream:
    """The continuation state of one editor (see the module docstring)."""

    def __init__(self, editor: QPlainTextEdit) -> None:
        self.editor = editor
        self.streaming = self.streamed = False
        self._cursor: QTextCursor | None = None      # the insertion point while streaming
        self._late: QTextCursor | None = None        # where a late, unstreamed result goes
        self._start = 0
        self._text = ""                               # streamed so far
        self._written: QTextCursor | None = None      # the span of the last continuation

    def begin(self, position: int) -> None:
        """Start a continuation at ``position``; the editor is read-only until :meth:`end`."""
        self._cursor = QTextCursor(self.editor.document())
        self._cursor.setPosition(position)
        self._start, self._text, self._late = position, "", None
        self.streaming, self.streamed = True, False
        self.editor.setReadOnly(True)
        self.editor.setExtraSelections([])

    def begin_replacing_written(self) -> bool:
        """Start a new continuation in place of the last one (a branch): the first piece (or the
        whole result) replaces it, so a branch that fails leaves it as it was. False when there is
        none."""
        if self._written is None or not self._written.hasSelection():
            return False
        self.begin(self._written.selectionStart())
        self._cursor = QTextCursor(self._written)          # its selection goes with the first insert
        return True

    def append(self, piece: str) -> None:
        """Insert a streamed piece at the insertion point and keep it in view."""
        if self._cursor is None:
            self.begin(self.editor.textCursor().position())
        assert self._cursor is not None
        self.streamed = True
        self._text += piece
        self._cursor.insertText(piece)
        self.editor.setTextCursor(self._cursor)
        self.editor.ensureCursorVisible()
        self._tint(self._start, self._cursor.position())

    def finish(self, final: str) -> None:
        """The result came: ``final`` replaces the streamed text (or is inserted whole when
        nothing was streamed, e.g. beam search), and the stream ends."""
        cursor = self._cursor or self._late
        if cursor is not None:
            self._cursor, self._late, self.streaming = cursor, None, True
            if self.streamed and self._text != final:
                cursor.setPosition(self._start, QTextCursor.MoveMode.KeepAnchor)
                cursor.removeSelectedText()
                self._text, self.streamed = "", False
            if not self.streamed:
                self.append(final)
            self._remember(self._start, cursor.position())
        self.end()

    def end(self) -> None:
        """The continuation ended (finished, stopped or failed): the text can be edited again."""
        if not self.streaming:
            return
        self.streaming = False
        # Keep the insertion point for a result that arrives after the end of a silent stream.
        self._late = None if self.streamed else self._cursor
        self._cursor = None
        self.editor.setReadOnly(False)

    def written(self) -> str:
        """The text of the last continuation as it stands in the editor ("" when none)."""
        return self._written.selectedText().replace("\u2029", "\n") if self._written else ""

    def replace_written(self, text: str) -> bool:
        """Put ``text`` in place of the last continuation (an undo); False when there is none."""
        if self._written is None:
            return False
        start = self._written.selectionStart()
        self._written.insertText(text)
        end = self._written.position()           # in the editor's units (UTF-16), not len(text)
        self._remember(start, end)
        self._tint(start, end)
        return True

    def forget(self) -> None:
        self._written = None

    def _remember(self, start: int, end: int) -> None:
        self._written = QTextCursor(self.editor.document())
        self._written.setPosition(start)
        self._written.setPosition(end, QTextCursor.MoveMode.KeepAnchor)

    def _tint(self, start: int, end: int) -> None:
        """Tint the text the model wrote in this continuation."""
        selection = QTextEdit.ExtraSelection()
        cursor = QTextCursor(self.editor.document())
        cursor.setPosition(start)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        fmt = QTextCharFormat()
        fmt.setBackground(_TINT)
        selection.cursor, selection.format = cursor, fmt
        self.editor.setExtraSelections([selection])
