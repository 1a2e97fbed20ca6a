"""Decoding settings as a form: strategy, temperature, top-k, top-p, min-p, repetition penalty,
n-gram blocking, beams, n-best, length, seed, alternatives, and for couplets the couplet rules
(:class:`~app.panels.couplet_controls.CoupletControls`, shown only for couplet projects).

:class:`DecodingControls` always produces a valid :class:`~textgen_core.decoding.config.DecodeConfig`:
values are clamped to the widgets' ranges and to each other (n-best never exceeds the beam size,
greedy always gives one output). Controls that do not apply to the chosen strategy are disabled.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.panels.couplet_controls import CoupletControls
from textgen_core.decoding.config import DecodeConfig

STRATEGY_LABELS = {"greedy": "Greedy", "sample": "Sampling", "beam": "Beam search"}
MAX_SAMPLES = 8          # n-best limit when sampling (independent samples)
MAX_SEED = 2**31 - 1
MAX_ALTERNATIVES = 20

# Which controls matter for which strategy (max length and repetition penalty always do).
_RELEVANT = {
    "greedy": {"repetition", "no_repeat"},
    "sample": {"temperature", "top_k", "top_p", "min_p", "repetition", "no_repeat", "n_best", "seed"},
    "beam": {"repetition", "no_repeat", "beam_size", "length_penalty", "coverage", "n_best"},
}
_ALWAYS = {"strategy", "max_tokens", "alternatives"}
_LABELS = {
    "strategy": "Strategy", "temperature": "Temperature", "top_k": "Top-k", "top_p": "Top-p",
    "min_p": "Min-p", "repetition": "Repetition penalty", "no_repeat": "No-repeat n-gram",
    "beam_size": "Beam size", "length_penalty": "Length penalty", "coverage": "Coverage penalty",
    "n_best": "Outputs (n-best)",
    "max_tokens": "Max length", "seed": "Seed", "alternatives": "Alternatives",
}

_TIPS = {
    "strategy": "Greedy: always the most likely next token (deterministic, can be repetitive).\n"
                "Sampling: draw each token at random from the model's distribution (creative).\n"
                "Beam search: keep the best few partial outputs and return the most likely whole "
                "output (good for couplets and translation).",
    "temperature": "Sampling only. Divides the scores before sampling: below 1 is safer and more "
                   "predictable, above 1 is wilder.",
    "top_k": "Sampling only. Draw only from the k most likely tokens; 0 = off.",
    "top_p": "Sampling only (nucleus sampling). Draw only from the smallest set of tokens whose "
             "probabilities add up to p; 1.0 = off.",
    "min_p": "Sampling only. Drop tokens less likely than min-p times the most likely token "
             "(0.05–0.1 keeps the plausible ones however flat the distribution); 0 = off.",
    "repetition": "Makes tokens that already appear less likely; 1.0 = off, 1.1–1.3 is typical.",
    "no_repeat": "Never repeat a run of this many tokens (3: no three-token sequence twice); "
                 "0 = off.",
    "beam_size": "Beam search only. How many partial outputs are kept at each step: more is "
                 "slower but finds likelier outputs.",
    "length_penalty": "Beam search only. Above 0 favours longer outputs (GNMT α); 0 = none.",
    "coverage": "Beam search, models with attention (Transformer, Bahdanau, Luong) only. Above 0 "
                "favours outputs whose attention covers the whole input (GNMT β), against outputs "
                "that keep returning to a few input tokens; 0 = none.",
    "n_best": "How many outputs to return: the best beams (at most the beam size) or independent "
              "samples (at most 8). Greedy gives one.",
    "max_tokens": "The most tokens to generate (couplets always get the first line's length).",
    "seed": "Sampling only. The same seed and settings give the same text again.",
    "random": "Use a new random seed each time.",
    "alternatives": "How many of the most likely tokens to keep at each position, with their "
                    "probabilities: click a token of the output to see them and branch from one. "
                    "0 = none.",
}


class DecodingControls(QWidget):
    """A form for :class:`DecodeConfig`; emits :attr:`changed` whenever the user changes a value.

    The couplet rules (:attr:`couplet`) are shown, and put into :meth:`config`, only after
    ``set_couplet(True)``; their locked characters are read with :meth:`locks`.
    """

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._base = DecodeConfig()       # keeps the fields without a widget (min_tokens, ...)
        self._single_output = False
        self._couplet = True
        self._build_widgets()
        self._form = form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for key, widget in self._rows.items():
            form.addRow(_LABELS[key], widget)
            widget.setToolTip(_TIPS[key])
            form.labelForField(widget).setToolTip(_TIPS[key])
        self.seed.setToolTip(_TIPS["seed"])
        self.random_seed.setToolTip(_TIPS["random"])
        self.couplet = CoupletControls()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(self.couplet)

        self.set_config(DecodeConfig())
        self.strategy.currentIndexChanged.connect(self._on_change)
        for spin in (self.temperature, self.top_p, self.min_p, self.repetition, self.length_penalty,
                     self.coverage):
            spin.valueChanged.connect(self._on_change)
        for spin in (self.top_k, self.no_repeat, self.beam_size, self.n_best, self.max_tokens,
                     self.seed, self.alternatives):
            spin.valueChanged.connect(self._on_change)
        self.random_seed.toggled.connect(self._on_change)
        self.couplet.changed.connect(self.changed)

    def _build_widgets(self) -> None:
        self.strategy = QComboBox()
        for key, label in STRATEGY_LABELS.items():
            self.strategy.addItem(label, key)
        self.temperature = _double(0.05, 3.0, 0.05, 2)
        self.top_k = _spin(0, 1000, "off")
        self.top_p = _double(0.05, 1.0, 0.05, 2)
        self.min_p = _double(0.0, 1.0, 0.01, 2)
        self.min_p.setSpecialValueText("off")
        self.repetition = _double(1.0, 3.0, 0.05, 2)
        self.no_repeat = _spin(0, 10, "off")
        self.beam_size = _spin(1, 16)
        self.length_penalty = _double(0.0, 2.0, 0.1, 2)
        self.coverage = _double(0.0, 2.0, 0.1, 2)
        self.coverage.setSpecialValueText("off")
        self.n_best = _spin(1, MAX_SAMPLES)
        self.max_tokens = _spin(1, 2048)
        self.seed = _spin(0, MAX_SEED)
        self.random_seed = QCheckBox("random")
        self.alternatives = _spin(0, MAX_ALTERNATIVES, "none")
        seed_row = QWidget()
        seed_box = QHBoxLayout(seed_row)
        seed_box.setContentsMargins(0, 0, 0, 0)
        seed_box.addWidget(self.seed, 1)
        seed_box.addWidget(self.random_seed)
        self._rows: dict[str, QWidget] = {
            "strategy": self.strategy, "temperature": self.temperature, "top_k": self.top_k,
            "top_p": self.top_p, "min_p": self.min_p, "repetition": self.repetition,
            "no_repeat": self.no_repeat, "beam_size": self.beam_size,
            "length_penalty": self.length_penalty, "coverage": self.coverage, "n_best": self.n_best,
            "max_tokens": self.max_tokens, "seed": seed_row, "alternatives": self.alternatives,
        }

    # ----------------------------------------------------------------- public API
    def config(self) -> DecodeConfig:
        """The settings shown, as a valid :class:`DecodeConfig` (dependent values clamped)."""
        strategy = self.current_strategy()
        beam = self.beam_size.value()
        n_best = self.n_best.value()
        if strategy == "greedy" or self._single_output:
            n_best = 1
        elif strategy == "beam":
            n_best = min(n_best, beam)
        else:
            n_best = min(n_best, MAX_SAMPLES)
        max_tokens = self.max_tokens.value()
        config = replace(
            self._base,
            strategy=strategy,
            temperature=round(self.temperature.value(), 4),
            top_k=self.top_k.value(),
            top_p=round(self.top_p.value(), 4),
            min_p=round(self.min_p.value(), 4),
            repetition_penalty=round(self.repetition.value(), 4),
            no_repeat_ngram=self.no_repeat.value(),
            beam_size=beam,
            length_penalty=round(self.length_penalty.value(), 4),
            coverage_penalty=round(self.coverage.value(), 4),
            n_best=n_best,
            max_tokens=max_tokens,
            min_tokens=min(self._base.min_tokens, max_tokens),
            seed=None if self.random_seed.isChecked() else self.seed.value(),
            alternatives=self.alternatives.value(),
        )
        return self.couplet.apply_to(config) if self._couplet else config

    def locks(self) -> dict[int, str]:
        """The couplet's locked characters ({} for other tasks); raises TextGenError (one line)
        for a mistake in what was typed."""
        return self.couplet.parsed_locks() if self._couplet else {}

    def set_config(self, config: DecodeConfig) -> None:
        """Show ``config`` (values outside the widgets' ranges are clamped). Does not emit
        :attr:`changed`."""
        self._base = config
        widgets = [*self._rows.values(), self.seed, self.random_seed]
        blocked = [w.blockSignals(True) for w in widgets]
        try:
            index = self.strategy.findData(config.strategy)
            self.strategy.setCurrentIndex(max(index, 0))
            for spin, value in ((self.temperature, config.temperature), (self.top_k, config.top_k),
                                (self.top_p, config.top_p), (self.min_p, config.min_p),
                                (self.repetition, config.repetition_penalty),
                                (self.no_repeat, config.no_repeat_ngram),
                                (self.beam_size, config.beam_size),
                                (self.length_penalty, config.length_penalty),
                                (self.coverage, config.coverage_penalty),
                                (self.max_tokens, config.max_tokens),
                                (self.alternatives, config.alternatives)):
                spin.setValue(value)
            self.random_seed.setChecked(config.seed is None)
            if config.seed is not None:
                self.seed.setValue(min(max(config.seed, 0), MAX_SEED))
            self._update_enabled()
            self.n_best.setValue(config.n_best)
        finally:
            for w, was in zip(widgets, blocked):
                w.blockSignals(was)
        self.couplet.show_config(config)

    def set_couplet(self, couplet: bool) -> None:
        """Show the couplet rules (a couplet project) or hide them (any other task)."""
        self._couplet = couplet
        self.couplet.setVisible(couplet)

    def current_strategy(self) -> str:
        """``"greedy"``, ``"sample"`` or ``"beam"``."""
        return str(self.strategy.currentData())

    def set_single_output(self, single: bool) -> None:
        """Pin n-best to 1 (for streamed continuation, which writes one text)."""
        self._single_output = single
        self._update_enabled()

    def is_relevant(self, name: str) -> bool:
        """Whether the control ``name`` (a key of the form, e.g. ``"top_k"``) is enabled."""
        return self._rows[name].isEnabled()

    # ----------------------------------------------------------------- internals
    def _on_change(self, *_args: object) -> None:
        self._update_enabled()
        self.changed.emit()

    def _update_enabled(self) -> None:
        strategy = self.current_strategy()
        relevant = _RELEVANT.get(strategy, set())
        for key, widget in self._rows.items():
            if key in _ALWAYS:
                continue
            on = key in relevant and not (key == "n_best" and self._single_output)
            widget.setEnabled(on)
            self._form.labelForField(widget).setEnabled(on)
        if strategy == "sample":
            self.seed.setEnabled(not self.random_seed.isChecked())
        limit = self.beam_size.value() if strategy == "beam" else MAX_SAMPLES
        if strategy == "greedy" or self._single_output:
            limit = 1
        was = self.n_best.blockSignals(True)
        self.n_best.setMaximum(limit)    # clamps the value too
        self.n_best.blockSignals(was)


def _spin(low: int, high: int, special: str = "") -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    if special:
        spin.setSpecialValueText(special)       # shown for the lowest value
    return spin


def _double(low: float, high: float, step: float, decimals: int) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setDecimals(decimals)
    spin.setRange(low, high)
    spin.setSingleStep(step)
    return spin
