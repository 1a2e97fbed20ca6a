"""The Write panel and its decoding controls: requests, results, streaming, valid settings."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor

from app.panels.decoding_controls import DecodingControls
from app.panels.write import WritePanel
from textgen_core.decoding.search import DecodeConfig
from textgen_core.generation import Candidate, GenerationResult


def _candidate(text: str, score: float) -> Candidate:
    return Candidate(text, score, list(range(len(text))), list(text), True)


COUPLET = GenerationResult(
    "春风得意，花铺路", list(range(8)),
    [_candidate("旭日临门，福满堂", -3.2), _candidate("瑞雪迎春，喜满门", -3.5),
     _candidate("秋月当空，桂满园", -4.0)],
)


@pytest.fixture
def panel(qtbot):
    widget = WritePanel()
    qtbot.addWidget(widget)
    widget.resize(900, 600)
    widget.show()
    return widget


def test_couplet_write_emits_request_with_controls_config(panel, qtbot):
    panel.set_task("couplet")
    assert panel.mode() == "couplet" and panel.stack.currentIndex() == 0
    assert panel.decode_config().strategy == "beam" and panel.decode_config().beam_size == 4
    panel.controls.beam_size.setValue(6)
    panel.controls.n_best.setValue(5)
    panel.first_line.setText("春 风 得 意")
    with qtbot.waitSignal(panel.generate_requested) as blocker:
        qtbot.mouseClick(panel.write_button, Qt.MouseButton.LeftButton)
    text, config, mode = blocker.args
    assert (text, mode) == ("春风得意", "couplet")
    assert isinstance(config, DecodeConfig)
    assert (config.strategy, config.beam_size, config.n_best) == ("beam", 6, 5)
    with qtbot.waitSignal(panel.generate_requested) as blocker:   # Enter writes too
        qtbot.keyClick(panel.first_line, Qt.Key.Key_Return)
    assert blocker.args[0] == "春风得意"


def test_couplet_empty_line_shows_error_instead_of_request(panel, qtbot):
    with qtbot.assertNotEmitted(panel.generate_requested):
        qtbot.mouseClick(panel.write_button, Qt.MouseButton.LeftButton)
    assert "first line" in panel.error_text()
    assert "color: #c62828" in panel.status.styleSheet()


def test_couplet_result_fills_aligned_grid_and_candidates(panel):
    panel.show_result(COUPLET)
    assert panel.candidates.count() == 3
    assert panel.candidates.currentRow() == 0
    assert panel.couplet_lines() == ("春风得意，花铺路", "旭日临门，福满堂")
    assert panel.couplet_grid.cell_count() == 16
    grid = panel.couplet_grid._grid
    for col in range(1, 9):                         # one above the other, punctuation included
        top = grid.itemAtPosition(0, col).widget().text()
        bottom = grid.itemAtPosition(1, col).widget().text()
        assert top == COUPLET.prompt[col - 1] and bottom == COUPLET.hypotheses[0].text[col - 1]
    panel.candidates.setCurrentRow(2)
    assert panel.couplet_lines()[1] == "秋月当空，桂满园"
    assert panel.couplet_grid.cell_count() == 16


def test_translation_request_and_nbest(panel, qtbot):
    panel.set_task("translation")
    assert panel.mode() == "translation" and panel.stack.currentIndex() == 1
    panel.source.setPlainText("  我们明天去公园吧。 ")
    with qtbot.waitSignal(panel.generate_requested) as blocker:
        qtbot.mouseClick(panel.translate_button, Qt.MouseButton.LeftButton)
    text, config, mode = blocker.args
    assert (text, mode, config.strategy) == ("我们明天去公园吧。", "translation", "beam")
    result = GenerationResult(text, [1, 2], [_candidate("Let's go to the park tomorrow.", -1.25),
                                             _candidate("We go to the park tomorrow.", -2.5)])
    panel.show_result(result)
    assert panel.target.toPlainText() == "Let's go to the park tomorrow."
    assert panel.nbest.count() == 2
    assert "-1.250" in panel.nbest.item(0).text() and "-2.500" in panel.nbest.item(1).text()
    panel.nbest.setCurrentRow(1)
    assert panel.target.toPlainText() == "We go to the park tomorrow."


def test_continuation_streams_at_cursor_and_stops(panel, qtbot):
    panel.set_task("continuation")
    config = panel.decode_config()
    assert (config.strategy, config.temperature, config.top_k, config.top_p) == ("sample", 0.8, 40, 0.95)
    panel.editor.setPlainText("却说宝玉。\n下文")
    cursor = panel.editor.textCursor()
    cursor.setPosition(5)                           # after "却说宝玉。"
    panel.editor.setTextCursor(cursor)
    assert not panel.stop_button.isEnabled()
    with qtbot.waitSignal(panel.generate_requested) as blocker:
        qtbot.mouseClick(panel.continue_button, Qt.MouseButton.LeftButton)
    text, config, mode = blocker.args
    assert (text, mode, config.n_best) == ("却说宝玉。", "continuation", 1)
    panel.set_busy(True)
    assert panel.is_streaming() and panel.stop_button.isEnabled()
    assert not panel.continue_button.isEnabled() and panel.editor.isReadOnly()
    for piece in ("听了", "这话，", "笑道"):
        panel.append_stream(piece)
    assert panel.editor.toPlainText() == "却说宝玉。听了这话，笑道\n下文"
    with qtbot.waitSignal(panel.stop_requested):
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    panel.stream_finished()
    panel.set_busy(False)
    assert not panel.is_streaming() and not panel.stop_button.isEnabled()
    assert panel.continue_button.isEnabled() and not panel.editor.isReadOnly()
    # Edit and continue again, from the end this time.
    panel.editor.moveCursor(QTextCursor.MoveOperation.End)
    panel.editor.insertPlainText("雨")
    with qtbot.waitSignal(panel.generate_requested) as blocker:
        qtbot.mouseClick(panel.continue_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0] == "却说宝玉。听了这话，笑道\n下文雨"
    panel.append_stream("停了")
    panel.stream_finished()
    assert panel.editor.toPlainText().endswith("下文雨停了")


def test_continuation_without_stream_inserts_result_and_errors_end_stream(panel, qtbot):
    panel.set_task("continuation")
    panel.editor.setPlainText("开头")
    panel.editor.moveCursor(QTextCursor.MoveOperation.End)
    qtbot.mouseClick(panel.continue_button, Qt.MouseButton.LeftButton)
    panel.stream_finished()                        # e.g. beam search: the result comes whole
    panel.show_result(GenerationResult("开头", [1], [_candidate("之后", -1.0)]))
    assert panel.editor.toPlainText() == "开头之后"
    qtbot.mouseClick(panel.continue_button, Qt.MouseButton.LeftButton)
    panel.set_busy(True)
    panel.show_error("error: out of memory\nsecond line")
    panel.set_busy(False)
    assert panel.error_text() == "error: out of memory"
    assert panel.status.text() == "error: out of memory"
    assert not panel.is_streaming() and panel.continue_button.isEnabled()


def test_busy_disables_actions(panel, qtbot):
    panel.set_busy(True)
    assert not panel.write_button.isEnabled()
    panel.first_line.setText("春风")
    with qtbot.assertNotEmitted(panel.generate_requested):
        panel.first_line.returnPressed.emit()
    panel.set_busy(False)
    assert panel.write_button.isEnabled()


def test_set_defaults_and_unknown_task(panel):
    panel.set_task("translation")
    panel.set_defaults(DecodeConfig(strategy="beam", beam_size=8, n_best=3, max_tokens=100))
    config = panel.decode_config()
    assert (config.beam_size, config.n_best, config.max_tokens) == (8, 3, 100)
    panel.set_task("couplet")
    panel.set_task("translation")                  # the project's defaults are kept per task
    assert panel.decode_config().beam_size == 8
    with pytest.raises(ValueError):
        panel.set_task("poetry")


def test_controls_enable_per_strategy(qtbot):
    controls = DecodingControls()
    qtbot.addWidget(controls)
    expected = {
        "greedy": {"repetition"},
        "sample": {"temperature", "top_k", "top_p", "repetition", "n_best", "seed"},
        "beam": {"repetition", "beam_size", "length_penalty", "n_best"},
    }
    names = ["temperature", "top_k", "top_p", "repetition", "beam_size", "length_penalty", "n_best",
             "seed"]
    for strategy, relevant in expected.items():
        with qtbot.waitSignal(controls.changed):
            controls.strategy.setCurrentIndex(controls.strategy.findData(strategy))
        assert {n for n in names if controls.is_relevant(n)} == relevant
        assert controls.is_relevant("max_tokens") and controls.config().strategy == strategy
    for widget in (controls.strategy, controls.temperature, controls.top_k, controls.top_p,
                   controls.repetition, controls.beam_size, controls.n_best, controls.max_tokens,
                   controls.seed, controls.random_seed):
        assert len(widget.toolTip()) > 20


def test_controls_config_is_always_valid(qtbot):
    controls = DecodingControls()
    qtbot.addWidget(controls)
    controls.set_config(DecodeConfig(strategy="beam", beam_size=8, n_best=8))
    controls.beam_size.setValue(3)                  # n-best follows the beam size down
    config = controls.config()
    assert (config.beam_size, config.n_best) == (3, 3)
    controls.strategy.setCurrentIndex(controls.strategy.findData("greedy"))
    assert controls.config().n_best == 1
    controls.strategy.setCurrentIndex(controls.strategy.findData("sample"))
    controls.n_best.setValue(20)
    assert controls.config().n_best == 8
    # Out-of-range values are clamped to the widgets' ranges; hidden fields are kept.
    controls.set_config(DecodeConfig(strategy="sample", temperature=0.001, top_k=5000, top_p=0.9,
                                     max_tokens=9999, min_tokens=10, seed=7, no_repeat_ngram=3))
    config = controls.config()
    assert (config.temperature, config.top_k, config.max_tokens) == (0.05, 1000, 2048)
    assert (config.seed, config.no_repeat_ngram, config.min_tokens, config.top_p) == (7, 3, 10, 0.9)
    controls.max_tokens.setValue(4)
    assert controls.config().min_tokens == 4
    controls.random_seed.setChecked(True)
    assert controls.config().seed is None and not controls.seed.isEnabled()
    controls.set_single_output(True)
    assert controls.config().n_best == 1 and not controls.is_relevant("n_best")


def test_screenshot(panel, qtbot, tmp_path):
    panel.first_line.setText("春风得意，花铺路")
    panel.show_result(COUPLET)
    qtbot.wait(10)
    image = panel.grab()
    assert image.width() == 900 and image.save(str(tmp_path / "panel_write.png"))


def test_couplet_characters_shrink_to_fit_the_panel(panel, qtbot):
    panel.set_task("couplet")
    grid = panel.couplet_grid
    scroll = grid.parentWidget().parentWidget()
    sizes = []
    for width in (1400, 620):
        panel.resize(width, 500)
        grid.set_lines("风声雨声读书声声声入耳", "家事国事天下事事事关心")
        qtbot.waitUntil(lambda: scroll.viewport().width() == grid.width(), timeout=2_000)
        assert scroll.horizontalScrollBar().maximum() == 0            # no sideways scrolling
        assert grid.MIN_PX <= grid.char_pixels() <= grid.MAX_PX
        sizes.append(grid.char_pixels())
    assert sizes[0] > sizes[1]
