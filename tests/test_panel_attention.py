"""The attention panel: layer/head choice, averages, token labels, hover read-out, placeholder."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF

from app.panels.attention import AVERAGE, PLACEHOLDER, AttentionPanel
from textgen_core.generation import Attention

QUERY = list("旭日临门福满堂")
KEYS = [*"春风得意花铺路", "</s>"]


def _attention(kind: str = "cross", layers: int = 2, heads: int = 4) -> Attention:
    rng = np.random.default_rng(0)
    weights = rng.random((layers, heads, len(QUERY), len(KEYS))).astype(np.float32) ** 3
    weights /= weights.sum(axis=-1, keepdims=True)          # each query's row sums to 1
    return Attention(kind, weights, QUERY, KEYS)


@pytest.fixture
def panel(qtbot):
    widget = AttentionPanel()
    qtbot.addWidget(widget)
    widget.resize(900, 600)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_placeholder_until_something_is_generated(panel):
    assert panel.stack.currentWidget() is panel.placeholder
    assert PLACEHOLDER in panel.placeholder.text()
    assert panel.layer_count() == 0 and panel.current_matrix().size == 0
    panel.show_attention(_attention())
    assert panel.stack.currentWidget() is panel.graphics
    panel.show_attention(None)
    assert panel.stack.currentWidget() is panel.placeholder
    assert not panel.layer_combo.isEnabled()
    panel.show_attention(None, "cnn-tagger has no attention to show")      # a model without any
    assert panel.placeholder.text() == "cnn-tagger has no attention to show."
    panel.show_attention(None)
    assert panel.placeholder.text() == PLACEHOLDER


def test_layers_heads_and_average(panel):
    attention = _attention()
    panel.show_attention(attention)
    assert panel.layer_count() == 2
    assert panel.head_labels() == [AVERAGE, "Head 1", "Head 2", "Head 3", "Head 4"]
    assert panel.head_combo.currentText() == AVERAGE                # the default
    layer = panel.layer_combo.currentIndex()
    np.testing.assert_allclose(panel.current_matrix(), attention.weights[layer].mean(axis=0), rtol=1e-6)
    panel.set_head(2)
    np.testing.assert_allclose(panel.current_matrix(), attention.weights[layer, 2])
    panel.set_layer(0)
    np.testing.assert_allclose(panel.current_matrix(), attention.weights[0, 2])
    panel.set_head(None)
    np.testing.assert_allclose(panel.current_matrix(), attention.weights[0].mean(axis=0), rtol=1e-6)
    assert panel.current_matrix().shape == (len(QUERY), len(KEYS))
    # The image shows the same matrix and the colour bar spans it.
    np.testing.assert_allclose(panel.image.image, panel.current_matrix())
    low, high = panel.colorbar.levels()
    assert low == 0.0 and high == pytest.approx(float(panel.current_matrix().max()))
    # A new generation with the same shape keeps the chosen layer and head.
    panel.set_head(3)
    panel.show_attention(_attention())
    assert panel.layer_combo.currentIndex() == 0 and panel.head_combo.currentIndex() == 4


def test_token_labels_on_both_axes(panel):
    panel.show_attention(_attention())
    rows, cols = panel.tick_labels()
    assert rows == QUERY and cols == KEYS
    bottom = panel.plot.getAxis("bottom")._tickLevels
    left = panel.plot.getAxis("left")._tickLevels
    assert sorted(t for level in bottom for t in level) == [(i + 0.5, k) for i, k in enumerate(KEYS)]
    assert sorted(t for level in left for t in level) == [(i + 0.5, q) for i, q in enumerate(QUERY)]
    assert panel.plot.getViewBox().yInverted()                      # first query on top


def test_hover_reports_query_key_and_weight(panel, qtbot):
    attention = _attention()
    panel.show_attention(attention)
    panel.set_layer(1)
    panel.set_head(0)
    assert panel.hover_text() == ""
    for row, col in ((0, 0), (3, 5), (6, 7)):
        scene_point = panel.image.mapToScene(QPointF(col + 0.5, row + 0.5))
        panel.on_mouse_moved(scene_point)
        value = attention.weights[1, 0, row, col]
        assert panel.hover_text() == f"{QUERY[row]} → {KEYS[col]}: {value:.3f}"
        assert panel.hover_label.text() == panel.hover_text()
    panel.on_mouse_moved(panel.image.mapToScene(QPointF(-3, -3)))   # outside the image
    assert panel.hover_text() == ""
    # The real signal reaches the handler too.
    panel.plot.scene().sigMouseMoved.emit(panel.image.mapToScene(QPointF(1.5, 2.5)))
    assert panel.hover_text().startswith(f"{QUERY[2]} → {KEYS[1]}: ")


def test_self_attention_and_long_texts(panel):
    tokens = [*"却说宝玉听了这话", "\n", " "] * 12
    n = len(tokens)
    weights = np.tril(np.ones((1, 2, n, n), dtype=np.float32))
    weights /= weights.sum(axis=-1, keepdims=True)
    panel.show_attention(Attention("self", weights, tokens, tokens))
    assert panel.layer_count() == 1 and panel.current_matrix().shape == (n, n)
    rows, cols = panel.tick_labels()
    assert rows == cols and rows[8:10] == ["↵", "␣"]
    major = panel.plot.getAxis("bottom")._tickLevels[0]
    assert 0 < len(major) <= n and major[0] == (0.5, "却")
    assert sum(len(level) for level in panel.plot.getAxis("bottom")._tickLevels) == n


def test_screenshot(panel, qtbot, tmp_path):
    panel.show_attention(_attention())
    panel.on_mouse_moved(panel.image.mapToScene(QPointF(2.5, 1.5)))
    qtbot.wait(10)
    image = panel.grab()
    assert image.width() == 900 and image.save(str(tmp_path / "panel_attention.png"))
