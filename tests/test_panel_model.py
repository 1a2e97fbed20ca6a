"""The model panel lists the registry's architectures per task and sizes the model as it is edited."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QSpinBox

from app.panels.model import ModelPanel
from textgen_core import models
from textgen_core.config import ProjectConfig, TrainConfig


@pytest.fixture
def panel(qtbot):
    widget = ModelPanel()
    qtbot.addWidget(widget)
    widget.resize(900, 600)
    widget.show()
    return widget


def _names(combo: QComboBox) -> list[str]:
    return [combo.itemData(i) for i in range(combo.count())]


def _real_count(name: str, settings: dict, vocab: int = 5000) -> int:
    config = models.build_config(name, settings, src_vocab_size=vocab, tgt_vocab_size=vocab, pad_id=0)
    return models.build_model(name, config).num_parameters()


def test_architectures_follow_the_task(panel):
    panel.set_task("couplet")
    assert {"transformer", "gpt", "cnn-tagger"} <= set(_names(panel.arch_combo))
    assert panel.settings()[0] == "transformer"
    panel.set_task("continuation")
    assert {"gpt", "transformer"} <= set(_names(panel.arch_combo))
    assert "cnn-tagger" not in _names(panel.arch_combo)                   # it writes couplets only
    assert panel.settings()[0] == "transformer"                           # it writes stories too: kept
    panel.set_task("couplet")
    panel.arch_combo.setCurrentIndex(panel.arch_combo.findData("cnn-tagger"))
    panel.set_task("continuation")
    assert panel.settings()[0] == "gpt"                                   # the task's default
    expected = [s.name for s in models.list_specs() if "translation" in s.tasks]
    panel.set_task("translation")
    assert _names(panel.arch_combo) == expected
    index = panel.arch_combo.findData("transformer")
    tip = panel.arch_combo.itemData(index, Qt.ItemDataRole.ToolTipRole)
    assert tip == models.get_spec("transformer").description


def test_editors_are_built_from_the_config_fields(panel):
    panel.set_task("couplet")
    editors = panel._editors
    fields = {f.name for f in dataclasses.fields(models.TransformerConfig)}
    assert set(editors) == fields - set(models.INJECTED_FIELDS)
    assert isinstance(editors["n_layer"].widget, QSpinBox)
    assert isinstance(editors["dropout"].widget, QDoubleSpinBox)
    assert editors["dropout"].widget.maximum() == pytest.approx(0.9)
    assert isinstance(editors["pre_norm"].widget, QCheckBox)
    positional = editors["positional"].widget
    assert isinstance(positional, QComboBox)
    assert [positional.itemText(i) for i in range(positional.count())] == ["sinusoidal", "learned"]
    ffn = editors["ffn_dim"].widget
    assert ffn.specialValueText() == "auto"
    ffn.setValue(ffn.minimum())
    assert editors["ffn_dim"].get() is None and "ffn_dim" not in panel.settings()[1]
    assert "n_layer" in editors["n_layer"].widget.toolTip()
    assert "encoder layers" in editors["n_layer"].widget.toolTip()           # from the config's field
    assert editors["n_layer"].widget.maximum() == 64 and editors["n_embd"].widget.singleStep() == 32


def test_every_registered_setting_describes_itself():
    """A new architecture shows in the panel with labels, help, choices and ranges of its own."""
    from textgen_core.models.settings import setting_info

    for spec in models.list_specs():
        for field in dataclasses.fields(spec.config_cls):
            if field.name in models.INJECTED_FIELDS:
                continue
            info = setting_info(field)
            assert info is not None and info.label and info.help, f"{spec.name}: model.{field.name}"


def test_preset_fills_the_fields(panel):
    panel.set_task("couplet")
    base = models.preset_settings("transformer", "base")
    panel.preset_combo.setCurrentIndex(panel.preset_combo.findText("base"))
    panel.preset_combo.activated.emit(panel.preset_combo.currentIndex())
    name, model, train = panel.settings()
    assert name == "transformer"
    for key, value in base.items():
        assert model[key] == pytest.approx(value)
    assert train["steps"] == 20000  # the base training preset
    panel._editors["n_layer"].widget.setValue(5)
    assert panel.preset_combo.currentText() == "custom"


def test_parameter_count_follows_n_layer_and_matches_the_model(panel, qtbot):
    panel.set_task("couplet")
    before = panel.parameter_count()
    assert before == _real_count("transformer", panel.settings()[1])
    with qtbot.waitSignal(panel.changed, timeout=1000):
        panel._editors["n_layer"].widget.setValue(4)
    after = panel.parameter_count()
    assert after > before
    assert after == _real_count("transformer", panel.settings()[1])
    assert "parameters" in panel.summary_label.text() and "to train" in panel.summary_label.text()
    panel.set_vocab_size(1000)
    assert panel.parameter_count() == _real_count("transformer", panel.settings()[1], vocab=1000)
    panel.arch_combo.setCurrentIndex(panel.arch_combo.findData("gpt"))
    assert panel.settings()[0] == "gpt"
    assert panel.parameter_count() == _real_count("gpt", panel.settings()[1], vocab=1000)


def test_invalid_heads_show_an_error_and_disable_apply(panel):
    panel.set_task("couplet")
    assert panel.apply_button.isEnabled() and panel.is_valid()
    panel._editors["n_embd"].widget.setValue(64)
    panel._editors["n_head"].widget.setValue(3)
    assert not panel.is_valid() and not panel.apply_button.isEnabled()
    assert "divisible" in panel.error_text() and panel.error_label.isVisible()
    assert panel.error_label.text() == panel.error_text()
    assert "c62828" in panel.error_label.styleSheet()
    panel._editors["n_head"].widget.setValue(4)
    assert panel.is_valid() and panel.apply_button.isEnabled() and not panel.error_label.isVisible()


def test_apply_emits_when_valid(panel, qtbot):
    with qtbot.waitSignal(panel.apply_requested, timeout=1000):
        qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)


def test_load_settings_and_overrides_round_trip(panel):
    config = ProjectConfig(task="couplet", model_name="transformer",
                           model=dict(models.preset_settings("transformer", "small")),
                           train=TrainConfig(steps=777, batch_size=24))
    panel.set_task("couplet")
    panel.load_settings(config.model_name, dict(config.model), dataclasses.asdict(config.train))
    _, model, train = panel.settings()
    assert model["n_embd"] == 256 and model["ffn_dim"] == 1024
    assert train["steps"] == 777 and train["batch_size"] == 24
    assert panel.preset_combo.currentText() == "small"
    panel._editors["n_layer"].widget.setValue(4)
    panel._editors["positional"].widget.setCurrentText("learned")
    panel._editors["pre_norm"].widget.setChecked(False)
    panel._editors["dropout"].widget.setValue(0.25)
    panel._editors["ffn_dim"].widget.setValue(panel._editors["ffn_dim"].widget.minimum())  # auto
    panel.lr_spin.setValue(0.00002)  # below min_lr 5e-5: min_lr follows it down
    panel.warmup_spin.setValue(55)
    overrides = panel.overrides()
    assert "model.n_layer=4" in overrides and 'model.positional="learned"' in overrides
    assert "model.ffn_dim=none" in overrides
    updated = config.with_overrides(overrides)
    resolved = models.build_config(updated.model_name, updated.model, src_vocab_size=50,
                                   tgt_vocab_size=50, pad_id=0)
    assert resolved.n_layer == 4 and resolved.positional == "learned" and resolved.pre_norm is False
    assert resolved.dropout == pytest.approx(0.25) and resolved.ffn_dim is None
    assert updated.train.learning_rate == pytest.approx(2e-5) and updated.train.warmup_steps == 55
    assert updated.train.min_lr <= updated.train.learning_rate
    assert updated.train.steps == 777 and updated.train.batch_size == 24


def test_gpt_overrides_round_trip(panel):
    config = ProjectConfig(task="continuation", model_name="gpt",
                           model=dict(models.preset_settings("gpt", "tiny")))
    panel.load_settings("gpt", dict(config.model), dataclasses.asdict(config.train))
    assert panel.settings()[0] == "gpt"
    panel._editors["n_head"].widget.setValue(8)
    panel._editors["bias"].widget.setChecked(False)
    updated = config.with_overrides(panel.overrides())
    assert updated.model["n_head"] == 8 and updated.model["bias"] is False


def test_switching_architecture_drops_the_old_ones_settings(panel):
    transformer = {**models.preset_settings("transformer", "tiny"), "share_src_tgt_embeddings": False}
    config = ProjectConfig(task="couplet", model_name="transformer", model=transformer)
    panel.load_settings("gpt", dict(models.preset_settings("gpt", "small")), {})
    updated = config.with_overrides(panel.overrides())
    assert updated.model_name == "gpt"
    assert set(updated.model) <= {f.name for f in dataclasses.fields(models.get_spec("gpt").config_cls)}
    assert updated.model["n_layer"] == models.preset_settings("gpt", "small")["n_layer"]
    same = config.with_overrides(["model.name=transformer", "model.n_layer=3"])
    assert same.model["share_src_tgt_embeddings"] == config.model["share_src_tgt_embeddings"]


def test_unknown_model_name_is_an_inline_error(panel):
    panel.load_settings("no-such-model", {}, {})
    assert "no-such-model" in panel.error_text() and not panel.apply_button.isEnabled()


def test_devices_list_auto_first_and_cpu(panel):
    names = _names(panel.device_combo)
    assert names[0] == "auto" and "cpu" in names
    assert panel.device() == "auto"
    panel.set_device("cpu")
    assert panel.device() == "cpu"


def test_screenshot(panel):
    panel.set_task("couplet")
    panel._editors["n_head"].widget.setValue(3)  # show the error line too
    panel._editors["n_head"].widget.setValue(4)
    panel.grab().save("/tmp/panel_model.png")
    assert Path("/tmp/panel_model.png").stat().st_size > 0
