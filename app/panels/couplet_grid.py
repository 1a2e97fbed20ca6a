"""A couplet's two lines, one character per cell, aligned column by column (the Write panel's)."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFont, QResizeEvent
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget


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
            self._cells[row] = [self._cell(char, row, col) for col, char in enumerate(line)]
        self._fit()

    def _cell(self, char: str, row: int, col: int) -> QLabel:
        cell = QLabel(char)
        cell.setAlignment(Qt.AlignmentFlag.AlignCenter)
        cell.setMargin(self.PAD)
        cell.setStyleSheet("background: #b3261e; color: #ffe08a; border-radius: 4px;")
        self._grid.addWidget(cell, row, col + 1)
        return cell

    def append_second(self, text: str) -> None:
        """Add ``text``'s characters to the second line (streaming); whitespace is dropped."""
        for char in "".join(text.split()):
            self._cells[1].append(self._cell(char, 1, len(self._cells[1])))
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
