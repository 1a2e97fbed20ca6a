"""The couplet rules as a form: four rule switches, the tone contrast (平仄) and locked characters.

:class:`CoupletControls` edits the couplet fields of a
:class:`~textgen_core.decoding.config.DecodeConfig` (``couplet_length``, ``couplet_punctuation``,
``couplet_repeats``, ``couplet_no_reuse``, ``tone``) and holds the locks typed as ``3=春 7=风``,
read by :func:`textgen_core.decoding.couplet_rules.parse_locks` (a mistake raises its one-line
:class:`~textgen_core.errors.TextGenError`, which the Write panel shows in its status line).
"""

from __future__ import annotations

import re
from dataclasses import replace

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QGroupBox, QLineEdit, QVBoxLayout, QWidget

from textgen_core.decoding.config import DecodeConfig

# (DecodeConfig field, label, tooltip)
RULES = (
    ("couplet_length", "Same length (字数相等)",
     "The second line has exactly as many characters as the first."),
    ("couplet_punctuation", "Punctuation in place",
     "Punctuation only where the first line has it, and the same mark there."),
    ("couplet_repeats", "Mirror repeats (叠字)",
     "Where the first line repeats a character (声声), the second repeats one at the same places "
     "(事事)."),
    ("couplet_no_reuse", "No reused characters (不重字)",
     "No character of the first line is used in the second, and none twice unless mirrored."),
)
TONES = (("soft", "软 soft"), ("hard", "硬 hard"), ("off", "off"))
_TONE_TIP = ("平仄: the last characters of the two lines should contrast, 仄 (oblique) → 平 (level) "
             "or 平 → 仄.\nsoft: a last character of the same class is less likely (the model can "
             "still choose it).\nhard: it is not allowed.\noff: no tone rule.")
_LOCK_TIP = ("Fix characters of the second line: POSITION=CHARACTER, counted from 1, separated by "
             "spaces or commas, e.g. 3=春 7=风.\nA locked character must be in the model's "
             "vocabulary and (with no reuse on) not in the first line.")
# between locks: spaces, or a comma (semicolon...) before the next position; "4=，" stays one lock
_SEPARATORS = re.compile(r"\s+|[,，;；、](?=\s*[+-]?\d)")
_AROUND_EQUALS = re.compile(r"\s*=\s*")
_CLI_LOCK = re.compile(r"--lock ")


def lock_message(message: str) -> str:
    """A lock error as the studio words it: the core names its command-line option ("--lock 3=春:
    ...") -> "Locked characters: 3=春: ..."."""
    if "--lock " not in message:
        return message
    return "Locked characters: " + _CLI_LOCK.sub("", message)


class CoupletControls(QGroupBox):
    """Couplet rules, tone contrast and locks; emits :attr:`changed` on every edit."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Couplet rules", parent)
        self.setToolTip("Rules for the second line of a couplet (下联); each can be switched off.")
        self.rules: dict[str, QCheckBox] = {}
        layout = QVBoxLayout(self)
        for name, label, tip in RULES:
            box = QCheckBox(label)
            box.setToolTip(tip)
            box.toggled.connect(self.changed)
            layout.addWidget(box)
            self.rules[name] = box
        self.tone = QComboBox()
        for key, label in TONES:
            self.tone.addItem(label, key)
        self.tone.setToolTip(_TONE_TIP)
        self.tone.currentIndexChanged.connect(self.changed)
        self.locks = QLineEdit()
        self.locks.setPlaceholderText("e.g. 3=春 7=风")
        self.locks.setClearButtonEnabled(True)
        self.locks.setToolTip(_LOCK_TIP)
        self.locks.textChanged.connect(self.changed)
        form = QFormLayout()
        form.setContentsMargins(0, 4, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.addRow("Tone contrast (平仄)", self.tone)
        form.addRow("Locked characters", self.locks)
        for field in (self.tone, self.locks):
            form.labelForField(field).setToolTip(field.toolTip())
        layout.addLayout(form)

    def apply_to(self, config: DecodeConfig) -> DecodeConfig:
        """``config`` with the rule switches and the tone mode shown here."""
        switches = {name: box.isChecked() for name, box in self.rules.items()}
        return replace(config, tone=str(self.tone.currentData()), **switches)

    def show_config(self, config: DecodeConfig) -> None:
        """Show ``config``'s rules and tone mode (the locks are kept); does not emit :attr:`changed`."""
        widgets = [*self.rules.values(), self.tone]
        blocked = [w.blockSignals(True) for w in widgets]
        try:
            for name, box in self.rules.items():
                box.setChecked(bool(getattr(config, name)))
            self.tone.setCurrentIndex(max(self.tone.findData(config.tone), 0))
        finally:
            for w, was in zip(widgets, blocked):
                w.blockSignals(was)

    def lock_items(self) -> list[str]:
        """The lock specs typed, one per position: "3=春 7=风" -> ["3=春", "7=风"]."""
        text = _AROUND_EQUALS.sub("=", self.locks.text().strip())
        return [item for item in _SEPARATORS.split(text) if item]

    def parsed_locks(self) -> dict[int, str]:
        """{position: character}; raises TextGenError (one line) for a mistake."""
        from textgen_core.decoding.couplet_rules import parse_locks

        return parse_locks(self.lock_items())


def tone_mark(tone: dict | None, *, short: bool = False) -> str:
    """A candidate's 平仄 report as a mark: "平仄 ✓ (仄→平)" when the last characters contrast,
    "平仄 ✗ (平→平)" when not ("✓ 仄→平" with ``short``), "" when a tone is unknown (or not a
    couplet)."""
    if not tone:
        return ""
    mark, tones = "✓" if tone["contrast"] else "✗", f"{tone['first']}→{tone['second']}"
    return f"{mark} {tones}" if short else f"平仄 {mark} ({tones})"
