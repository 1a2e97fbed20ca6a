"""Side by side: one input written with greedy decoding, beam search and sampling.

:class:`CompareView` is a small table, one column per setting (:func:`app.write_request.compare_configs`),
rows for the output, its score and, for couplets, the 平仄 contrast of the last characters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractScrollArea,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.panels.couplet_controls import tone_mark
from app.write_request import CompareRow
from textgen_core.generation_result import Candidate

ROWS = ("Output", "Score", "Per token", "平仄")
HINT = ("Compare writes the same input with greedy decoding, beam search and sampling (the settings "
        "set here) and shows the outputs side by side.")
_TIPS = ("The output",
         "The search's score: the output's log-probability; beam search divides it by the length "
         "penalty, so compare it with the per-token value",
         "Mean log-probability per token (higher is more likely). Greedy and beam search read the "
         "model's distribution; sampling its own, after temperature, top-k and top-p",
         "Whether the last characters' tones contrast (平仄 ✓), as a couplet wants; – when a tone "
         "is unknown")


class CompareView(QWidget):
    """The comparison table with a caption naming the input."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = QLabel(HINT)
        self.caption.setWordWrap(True)
        self.table = QTableWidget(0, 0)
        self.table.setSizeAdjustPolicy(QAbstractScrollArea.SizeAdjustPolicy.AdjustToContents)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(True)
        self.table.setToolTip("The same input written three ways, with the panel's settings")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignCenter)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.table, 1)
        self._outputs: list[str] = []

    def show_rows(self, prompt: str, rows: Sequence[CompareRow], couplet: bool) -> None:
        """One column per row of the comparison; an error stays in its column."""
        names = ROWS if couplet else ROWS[:-1]
        self.table.clear()
        self.table.setColumnCount(len(rows))
        self.table.setRowCount(len(names))
        self.table.setHorizontalHeaderLabels([row.label for row in rows])
        self.table.setVerticalHeaderLabels(list(names))
        for r in range(len(names)):
            self.table.verticalHeaderItem(r).setToolTip(_TIPS[r])
        self._outputs = []
        for col, row in enumerate(rows):
            best = row.result.hypotheses[0] if row.result is not None and row.result.hypotheses else None
            text = best.text if best is not None else (row.error or "(no output)")
            self._outputs.append(best.text if best is not None else "")
            cells = [text, *_numbers(best)]
            for r in range(len(names)):
                item = QTableWidgetItem(cells[r])
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                if r == 0:
                    font = item.font()
                    font.setPointSizeF(font.pointSizeF() * 1.15)
                    item.setFont(font)
                if r == 0 and best is None:
                    item.setForeground(Qt.GlobalColor.darkRed)
                self.table.setItem(r, col, item)
        self.caption.setText(f"Input: {prompt}" if prompt else "")
        self.table.resizeRowsToContents()

    def clear(self) -> None:
        self.table.clear()
        self.table.setRowCount(0)
        self.table.setColumnCount(0)
        self.caption.setText(HINT)
        self._outputs = []

    def outputs(self) -> list[str]:
        """The output text of each column ("" where there is none)."""
        return list(self._outputs)

    def labels(self) -> list[str]:
        return [self.table.horizontalHeaderItem(c).text() for c in range(self.table.columnCount())]


def _numbers(best: Candidate | None) -> list[str]:
    """Score, log-probability per token and the 平仄 mark of a column's output."""
    if best is None:
        return ["", "", ""]
    logprobs = [lp for lp in best.token_logprobs if math.isfinite(lp)]
    per_token = f"{sum(logprobs) / len(logprobs):.3f}" if logprobs else "–"
    return [f"{best.score:.3f}", per_token, tone_mark(best.tone, short=True) or "–"]
