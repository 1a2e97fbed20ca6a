"""Decoding settings as a form: strategy, temperature, top-k, top-p, beams, n-best, length, seed.

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
    QWidget,
)

from textgen_core.decoding.config import DecodeConfig

STRATEGY_LABELS = {"greedy": "Greedy", "sample": "Sampling", "beam": "Beam search"}
MAX_SAMPLES = 8          # n-best limit when sampling (independent samples)
MAX_SEED = 2**31 - 1

# Which controls matter for which strategy (max length and repetition penalty always do).
_RELEVANT = {
    "greedy": {"repetition"},
    "sample": {"temperature", "top_k", "top_p", "repetition", "n_best", "seed"},
    "beam": {"repetition", "beam_size", "length_penalty", "n_best"},
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
    "repetition": "Makes tokens that already appear less likely; 1.0 = off, 1.1–1.3 is typical.",
    "beam_size": "Beam search only. How many partial outputs are kept at each step: more is "
                 "slower but finds likelier outputs.",
    "length_penalty": "Beam search only. Above 0 favours longer outputs (GNMT α); 0 = none.",
    "n_best": "How many outputs to return: the best beams (at most the beam size) or independent "
              "samples (at most 8). Greedy gives one.",
    "max_tokens": "The most tokens to generate (couplets always get the first line's length).",
    "seed": "Sampling only. The same seed and settings give the same text again.",
    "random": "Use a new random seed each time.",
}


class DecodingControls(QWidget):
    """A form for :class:`DecodeConfig`; emits :attr:`changed` whenever the user changes a value."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._base = DecodeConfig()       # keeps the fields without a widget (min_tokens, ...)
        self._single_output = False

        self.strategy = QComboBox()
        for key, label in STRATEGY_LABELS.items():
            self.strategy.addItem(label, key)
        self.temperature = _double(0.05, 3.0, 0.05, 2)
        self.top_k = QSpinBox()
        self.top_k.setRange(0, 1000)
        self.top_k.setSpecialValueText("off")
        self.top_p = _double(0.05, 1.0, 0.05, 2)
        self.repetition = _double(1.0, 3.0, 0.05, 2)
        self.beam_size = QSpinBox()
        self.beam_size.setRange(1, 16)
        self.length_penalty = _double(0.0, 2.0, 0.1, 2)
        self.n_best = QSpinBox()
        self.n_best.setRange(1, MAX_SAMPLES)
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(1, 2048)
        self.seed = QSpinBox()
        self.seed.setRange(0, MAX_SEED)
        self.random_seed = QCheckBox("random")
        seed_row = QWidget()
        seed_box = QHBoxLayout(seed_row)
        seed_box.setContentsMargins(0, 0, 0, 0)
        seed_box.addWidget(self.seed, 1)
        seed_box.addWidget(self.random_seed)

        self._form = form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._rows: dict[str, QWidget] = {
            "strategy": self.strategy, "temperature": self.temperature, "top_k": self.top_k,
            "top_p": self.top_p, "repetition": self.repetition, "beam_size": self.beam_size,
            "length_penalty": self.length_penalty, "n_best": self.n_best,
            "max_tokens": self.max_tokens, "seed": seed_row,
        }
        labels = {
            "strategy": "Strategy", "temperature": "Temperature", "top_k": "Top-k", "top_p": "Top-p",
            "repetition": "Repetition penalty", "beam_size": "Beam size",
            "length_penalty": "Length penalty", "n_best": "Outputs (n-best)",
            "max_tokens": "Max length", "seed": "Seed",
        }
        for key, widget in self._rows.items():
            form.addRow(labels[key], widget)
            tip = _TIPS[key]
            widget.setToolTip(tip)
            form.labelForField(widget).setToolTip(tip)
        self.seed.setToolTip(_TIPS["seed"])
        self.random_seed.setToolTip(_TIPS["random"])

        self.set_config(DecodeConfig())
        self.strategy.currentIndexChanged.connect(self._on_change)
        for spin in (self.temperature, self.top_p, self.repetition, self.length_penalty):
            spin.valueChanged.connect(self._on_change)
        for spin in (self.top_k, self.beam_size, self.n_best, self.max_tokens, self.seed):
            spin.valueChanged.connect(self._on_change)
        self.random_seed.toggled.connect(self._on_change)

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
        return replace(
            self._base,
            strategy=strategy,
            temperature=round(self.temperature.value(), 4),
            top_k=self.top_k.value(),
            top_p=round(self.top_p.value(), 4),
            repetition_penalty=round(self.repetition.value(), 4),
            beam_size=beam,
            length_penalty=round(self.length_penalty.value(), 4),
            n_best=n_best,
            max_tokens=max_tokens,
            min_tokens=min(self._base.min_tokens, max_tokens),
            seed=None if self.random_seed.isChecked() else self.seed.value(),
        )

    def set_config(self, config: DecodeConfig) -> None:
        """Show ``config`` (values outside the widgets' ranges are clamped). Does not emit
        :attr:`changed`."""
        self._base = config
        widgets = [*self._rows.values(), self.seed, self.random_seed]
        blocked = [w.blockSignals(True) for w in widgets]
        try:
            index = self.strategy.findData(config.strategy)
            self.strategy.setCurrentIndex(max(index, 0))
            self.temperature.setValue(config.temperature)
            self.top_k.setValue(config.top_k)
            self.top_p.setValue(config.top_p)
            self.repetition.setValue(config.repetition_penalty)
            self.beam_size.setValue(config.beam_size)
            self.length_penalty.setValue(config.length_penalty)
            self.max_tokens.setValue(config.max_tokens)
            self.random_seed.setChecked(config.seed is None)
            if config.seed is not None:
                self.seed.setValue(min(max(config.seed, 0), MAX_SEED))
            self._update_enabled()
            self.n_best.setValue(config.n_best)
        finally:
            for w, was in zip(widgets, blocked):
                w.blockSignals(was)

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
            if key in ("strategy", "max_tokens"):
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


def _double(low: float, high: float, step: float, decimals: int) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setDecimals(decimals)
    spin.setRange(low, high)
    spin.setSingleStep(step)
    return spin
