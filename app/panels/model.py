"""The model panel: pick an architecture from the registry, a preset, its key settings and a device.

Every registered architecture that serves the task is listed, with editors built from its config
dataclass's fields (tokenizer-derived ones left out), so new architectures appear without changes
here. The parameter count is exact (the model is built on the "meta" device: no memory, no weights);
the training memory is a rough estimate. Applying is the caller's work: see ModelPanel.overrides().
"""

from __future__ import annotations

import contextlib
import dataclasses
import typing
from collections.abc import Callable, Mapping
from typing import Any

from PySide6 import QtWidgets as qw
from PySide6.QtCore import Qt, Signal

from textgen_core import models
from textgen_core.config import TRAIN_PRESETS, TrainConfig, format_override
from textgen_core.devices import available_devices
from textgen_core.errors import TextGenError
from textgen_core.models.settings import SettingInfo, setting_info

ERROR_STYLE = "color: #c62828;"
WARNING_STYLE = "color: #b26a00;"
DEFAULT_VOCAB = 5000
TRAIN_KEYS = ("steps", "batch_size", "learning_rate", "warmup_steps")
TRAIN_TEXTS = {  # training setting -> (label, help); model settings describe themselves
    "steps": ("Steps", "optimizer steps to train for"),
    "batch_size": ("Batch size", "examples per step; more is faster per example but needs more memory"),
    "learning_rate": ("Learning rate", "peak learning rate of AdamW after warm-up (arrows double/halve it)"),
    "warmup_steps": ("Warm-up steps", "steps over which the learning rate rises from 0 to its peak"),
}  # fmt: skip


class LogSpinBox(qw.QDoubleSpinBox):
    """A spin box for learning rates: each arrow step doubles or halves the value."""

    def stepBy(self, steps: int) -> None:
        self.setValue(min(max(self.value() * 2.0**steps, self.minimum()), self.maximum()))

    def textFromValue(self, value: float) -> str:
        """0.000500 -> 0.0005 (the value keeps ``decimals`` places)."""
        text = self.locale().toString(value, "f", self.decimals())
        point = self.locale().decimalPoint()
        return text.rstrip("0").rstrip(point) if point in text else text


@dataclasses.dataclass
class Editor:
    """One setting's widget, with how to read and write its value (None = "auto")."""

    widget: qw.QWidget
    get: Callable[[], Any]
    set: Callable[[Any], None]


def _editor(name: str, annotation: Any, default: Any, info: SettingInfo | None,
            on_change: Callable[..., None]) -> Editor:
    """A widget for one config field, chosen by its type and its :class:`SettingInfo` (choices as a
    drop-down, the range on a spin box); optional fields get an "auto" value."""
    args = typing.get_args(annotation)
    optional = type(None) in args
    kind = next((a for a in args if a is not type(None)), annotation) if optional else annotation
    if kind is bool and not optional:  # (an optional bool gets a line edit: auto, true or false)
        box = qw.QCheckBox()
        box.toggled.connect(on_change)
        return Editor(box, box.isChecked, lambda v: box.setChecked(bool(v)))
    if kind in (int, float):
        return _number_editor(kind, optional, info.range if info else None, on_change)
    if info and info.choices:
        combo = qw.QComboBox()
        combo.addItems((["auto"] if optional else []) + list(info.choices))
        combo.currentIndexChanged.connect(on_change)
        return Editor(combo, lambda: None if combo.currentText() == "auto" else combo.currentText(),
                      lambda v: combo.setCurrentIndex(max(combo.findText(str(v or "auto")), 0)))
    edit = qw.QLineEdit()  # text without known choices, and any type the zoo does not use yet
    if optional:
        edit.setPlaceholderText("auto")
    edit.textChanged.connect(on_change)
    return Editor(edit, lambda: (edit.text() or None) if optional else edit.text(),
                  lambda v: edit.setText("" if v is None else str(v)))


def _number_editor(kind: type, optional: bool, bounds: tuple[float, float, float] | None,
                   on_change: Callable[..., None]) -> Editor:
    if kind is int:
        spin: qw.QSpinBox | qw.QDoubleSpinBox = qw.QSpinBox()
        low, high, step = (int(b) for b in bounds) if bounds else (0, 1_000_000, 1)
    else:
        spin = qw.QDoubleSpinBox(decimals=2 if bounds and bounds[2] >= 0.01 else 4)
        low, high, step = bounds if bounds else (-1e6, 1e6, 0.1)
    sentinel = low - step if optional else None  # shown as "auto"
    spin.setRange(low if sentinel is None else sentinel, high)
    spin.setSingleStep(step)
    if optional:
        spin.setSpecialValueText("auto")
    spin.valueChanged.connect(on_change)
    return Editor(
        spin,
        lambda: None if optional and spin.value() == spin.minimum() else spin.value(),
        lambda v: spin.setValue(spin.minimum() if v is None else kind(v)),
    )


def _spin(low: float, high: float, step: float, spin: Any = None) -> Any:
    """A spin box (QSpinBox unless one is given) with its range and step."""
    spin = spin if spin is not None else qw.QSpinBox()
    spin.setRange(low, high)
    spin.setSingleStep(step)
    return spin


def _label(style: str) -> qw.QLabel:
    label = qw.QLabel()
    label.setStyleSheet(style)
    label.setWordWrap(True)
    return label


def _add_item(combo: qw.QComboBox, text: str, data: str, tooltip: str) -> None:
    combo.addItem(text, data)
    combo.setItemData(combo.count() - 1, tooltip, Qt.ItemDataRole.ToolTipRole)


def format_count(n: int) -> str:
    """1234567 -> "1.2 M"."""
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return str(n)


def format_bytes(n: float) -> str:
    """Bytes in MB or GB, rounded for an estimate."""
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{max(n / 2**20, 1):.0f} MB"


class ModelPanel(qw.QWidget):
    """Architecture, preset, model settings, training essentials and device, with a live size."""

    changed = Signal()  # any setting changed (by the user or by a method)
    apply_requested = Signal()  # "Apply" clicked with valid settings; read settings()/overrides()

    def __init__(self, parent: qw.QWidget | None = None) -> None:
        super().__init__(parent)
        self._task = "couplet"
        self._vocab = self._tgt_vocab = DEFAULT_VOCAB
        self._editors: dict[str, Editor] = {}
        self._loaded: dict[str, Any] = {}  # model settings given to load_settings()
        self._train_base = dataclasses.asdict(TrainConfig(**TRAIN_PRESETS["tiny"]))
        self._counts: dict[tuple[str, Any], int] = {}  # (model, config) -> parameters
        self._busy = False  # True while filling widgets: no per-field refresh
        self._error = ""
        self._params: int | None = None
        self._devices = available_devices()
        self._build()
        self.set_task("couplet")

    # ----------------------------------------------------------------- public API
    def set_task(self, task: str) -> None:
        """List the architectures that serve ``task``; keep the current one if it still fits."""
        self._task, current = task, self.arch_combo.currentData()
        specs = [spec for spec in models.list_specs() if task in spec.tasks]
        self.arch_combo.blockSignals(True)
        self.arch_combo.clear()
        for spec in specs:
            _add_item(self.arch_combo, spec.name, spec.name, spec.description)
        self.arch_combo.setCurrentIndex(max(self.arch_combo.findData(current), 0))
        self.arch_combo.blockSignals(False)
        if current in (spec.name for spec in specs):  # same architecture: its settings stay as they are
            self._edited()
        else:  # a registered model serves the task, so default_model() finds one
            self._select(models.default_model(task) if specs else "", preset=self._preset_name())

    def task(self) -> str:
        """The task whose architectures are offered."""
        return self._task

    def set_vocab_size(self, vocab_size: int, tgt_vocab_size: int | None = None) -> None:
        """The tokenizers' vocabulary sizes used for the parameter count (default 5000 each)."""
        self._vocab = max(int(vocab_size), 1)
        self._tgt_vocab = max(int(tgt_vocab_size or vocab_size), 1)
        self._refresh()

    def load_settings(self, model_name: str, model: Mapping[str, Any], train: Mapping[str, Any]) -> None:
        """Show a project's settings: ``config.model_name``, ``config.model``, ``asdict(config.train)``."""
        try:
            spec = models.get_spec(model_name)
        except TextGenError as exc:
            self._show_error(str(exc))
            return
        if self.arch_combo.findData(model_name) < 0:
            self.set_task(self._task if self._task in spec.tasks else spec.tasks[0])
        self._loaded = {k: v for k, v in model.items() if k not in models.INJECTED_FIELDS}
        self._train_base = {**dataclasses.asdict(TrainConfig()), **train}
        self._select(model_name, settings=self._loaded, train=self._train_base)

    def settings(self) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """(model name, model settings without "auto" ones, training settings shown here + min_lr)."""
        name = str(self.arch_combo.currentData() or "")
        model = {k: e.get() for k, e in self._editors.items() if e.get() is not None}
        train = {key: spin.value() for key, spin in self.train_spins.items()}
        # the schedule's floor must not exceed the peak: scale it down with a lowered learning rate
        train["min_lr"] = min(float(self._train_base.get("min_lr", 0.0)), train["learning_rate"])
        return name, model, train

    def overrides(self) -> list[str]:
        """``section.key=value`` strings for ``ProjectConfig.with_overrides`` (device not included)."""
        name, _, train = self.settings()
        out = [format_override("model.name", name)]
        for key, editor in self._editors.items():
            value = editor.get()
            if value is not None or self._loaded.get(key) is not None:  # None: back to "auto"
                out.append(format_override(f"model.{key}", value))
        out += [format_override(f"train.{key}", value) for key, value in train.items()]
        return out

    def device(self) -> str:
        """"auto", "cuda:0", "mps" or "cpu"."""
        return str(self.device_combo.currentData())

    def set_device(self, name: str) -> None:
        """Select a device by torch name ("cuda" picks the first GPU); unknown names select auto."""
        index = self.device_combo.findData("cuda:0" if name == "cuda" else name)
        self.device_combo.setCurrentIndex(max(index, 0))

    def is_valid(self) -> bool:
        """Whether the settings make a valid model and training configuration."""
        return not self._error

    def error_text(self) -> str:
        """The one-line problem with the current settings, or ""."""
        return self._error

    def parameter_count(self) -> int | None:
        """Parameters of the model as configured (None while the settings are invalid)."""
        return self._params

    # ----------------------------------------------------------------- layout
    def _build(self) -> None:
        self.arch_combo = qw.QComboBox()
        self.arch_combo.currentIndexChanged.connect(self._arch_changed)
        self.description_label = qw.QLabel()
        self.description_label.setWordWrap(True)
        self.preset_combo = qw.QComboBox()
        self.preset_combo.setToolTip("Fill the settings from a preset: tiny (a demo on a CPU), "
                                     "small (a few million parameters), base (for a GPU)")
        self.preset_combo.activated.connect(self._preset_chosen)
        top = qw.QFormLayout()
        top.addRow("Architecture:", self.arch_combo)
        top.addRow("", self.description_label)
        top.addRow("Preset:", self.preset_combo)
        self.model_box = qw.QGroupBox("Model settings")
        self.model_form = qw.QFormLayout(self.model_box)

        self.steps_spin, self.batch_spin = _spin(1, 10_000_000, 100), _spin(1, 65_536, 1)
        self.warmup_spin = _spin(0, 1_000_000, 10)
        self.lr_spin = _spin(1e-6, 1.0, 1.0, LogSpinBox(decimals=6))
        widgets = (self.steps_spin, self.batch_spin, self.lr_spin, self.warmup_spin)
        self.train_spins: dict[str, Any] = dict(zip(TRAIN_KEYS, widgets))
        self.device_combo = qw.QComboBox()
        self.device_combo.addItem("Automatic (best available)", "auto")
        for info in self._devices:
            _add_item(self.device_combo, info.label, info.name, info.name)
        train_box = qw.QGroupBox("Training")
        train_form = qw.QFormLayout(train_box)
        for key, widget in self.train_spins.items():
            widget.setToolTip(f"train.{key}: {TRAIN_TEXTS[key][1]}")
            widget.valueChanged.connect(self._edited)
            train_form.addRow(TRAIN_TEXTS[key][0] + ":", widget)
        train_form.addRow("Device:", self.device_combo)
        self.device_combo.currentIndexChanged.connect(self._edited)

        self.summary_label = _label("font-weight: bold;")
        self.note_label, self.error_label = _label(WARNING_STYLE), _label(ERROR_STYLE)
        self.apply_button = qw.QPushButton("Apply")
        self.apply_button.setToolTip("Use these settings for the project")
        self.apply_button.clicked.connect(lambda: self.is_valid() and self.apply_requested.emit())
        right = qw.QVBoxLayout()
        for widget in (train_box, self.summary_label, self.note_label, self.error_label):
            right.addWidget(widget)
        right.addStretch(1)
        right.addWidget(self.apply_button, 0, Qt.AlignmentFlag.AlignRight)
        left = qw.QVBoxLayout()
        left.addLayout(top)
        left.addWidget(self.model_box)
        left.addStretch(1)
        layout = qw.QHBoxLayout(self)
        layout.addLayout(left, 3)
        layout.addLayout(right, 2)

    # ----------------------------------------------------------------- filling
    def _preset_name(self) -> str:
        text = self.preset_combo.currentText()
        return text if text and text != "custom" else "tiny"

    def _select(self, name: str, *, preset: str | None = None, settings: Mapping[str, Any] | None = None,
                train: Mapping[str, Any] | None = None) -> None:
        """Show architecture ``name`` with a preset's settings or the given ones."""
        self._busy = True
        try:
            self.arch_combo.setCurrentIndex(max(self.arch_combo.findData(name), 0))
            spec = models.get_spec(name) if name else None
            self._rebuild_editors(spec)
            self.preset_combo.clear()
            if spec is not None:
                presets = list(spec.presets)
                self.preset_combo.addItems(["custom", *presets])
                if settings is None:
                    preset = preset if preset in presets else (presets[0] if presets else None)
                    settings = dict(spec.presets[preset]) if preset else {}
                    train = {**self._train_base, **(models.train_settings(name, preset) if preset else {})}
                for key, value in settings.items():
                    if key in self._editors:
                        with contextlib.suppress(TypeError, ValueError):  # a hand-edited odd value
                            self._editors[key].set(value)
                self.description_label.setText(spec.description)
            if train is not None:
                self._train_base = dict(train)
                for key, spin in self.train_spins.items():
                    spin.setValue(train.get(key, spin.value()))
        finally:
            self._busy = False
        self._edited()

    def _rebuild_editors(self, spec: models.ModelSpec | None) -> None:
        while self.model_form.rowCount():
            self.model_form.removeRow(0)
        self._editors = {}
        if spec is None:
            return
        hints = typing.get_type_hints(spec.config_cls)
        for f in dataclasses.fields(spec.config_cls):
            if f.name in models.INJECTED_FIELDS:
                continue
            default = None if f.default is dataclasses.MISSING else f.default
            info = setting_info(f)
            editor = _editor(f.name, hints[f.name], default, info, self._edited)
            editor.set(default)
            text, help_ = ((info.label, info.help) if info else
                           (f.name.replace("_", " ").capitalize(), "a model setting"))
            tip = f"model.{f.name}: {help_} (default: {'auto' if default is None else default})"
            editor.widget.setToolTip(tip)
            label = qw.QLabel(text + ":")
            label.setToolTip(tip)
            self.model_form.addRow(label, editor.widget)
            self._editors[f.name] = editor

    # ----------------------------------------------------------------- reactions
    def _arch_changed(self, *_: object) -> None:
        if not self._busy and self.arch_combo.currentData():
            self._select(str(self.arch_combo.currentData()), preset=self._preset_name())

    def _preset_chosen(self, *_: object) -> None:
        preset = self.preset_combo.currentText()
        if preset != "custom" and self.arch_combo.currentData():
            self._select(str(self.arch_combo.currentData()), preset=preset)

    def _edited(self, *_: object) -> None:
        if self._busy:
            return
        self._sync_preset()
        self._refresh()
        self.changed.emit()

    def _sync_preset(self) -> None:
        """Show the preset the model settings equal, or "custom"."""
        name, model, _ = self.settings()
        spec = models.get_spec(name) if name else None
        match = next((p for p, values in (spec.presets.items() if spec else ())
                      if all(model.get(k) == v for k, v in values.items())), "custom")
        self.preset_combo.setCurrentIndex(max(self.preset_combo.findText(match), 0))

    # ----------------------------------------------------------------- size and memory
    def _refresh(self) -> None:
        name, settings, train = self.settings()
        self._params = None
        if not name:
            self._show_error(f"no architecture is registered for the {self._task} task")
            return
        try:
            config = models.build_config(name, settings, src_vocab_size=self._vocab,
                                         tgt_vocab_size=self._tgt_vocab, pad_id=0)
            TrainConfig(**{**self._train_base, **train})
            key = (name, config)
            spec = models.get_spec(name)
            if key not in self._counts:
                self._counts[key] = spec.count_parameters(config)
            self._params = self._counts[key]
        except (TextGenError, ValueError, TypeError, RuntimeError) as exc:
            self._show_error(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
            return
        memory = spec.training_bytes(config, self._params, train["batch_size"])
        self._show_error("")
        size = f"{format_count(self._params)} parameters · ~{format_bytes(memory)} to train"
        self.summary_label.setText(size)
        state = self._params * 16
        self.summary_label.setToolTip(f"weights, gradients and AdamW state: {format_bytes(state)}; "
                                      f"activations (rough): {format_bytes(memory - state)}")
        self.note_label.setText(self._memory_note(memory))
        self.note_label.setVisible(bool(self.note_label.text()))

    def _memory_note(self, memory: float) -> str:
        devices = [d for d in self._devices if d.memory_bytes]
        choice = self.device()
        chosen = [d for d in devices if d.name == choice] or (devices[:1] if choice == "auto" else [])
        if chosen and memory > chosen[0].memory_bytes:
            return f"May not fit in the {format_bytes(chosen[0].memory_bytes)} of {chosen[0].label}."
        return ""

    def _show_error(self, message: str) -> None:
        self._error = message
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))
        self.apply_button.setEnabled(not message)
        if message:
            self.summary_label.setText("—")
            self.note_label.hide()
