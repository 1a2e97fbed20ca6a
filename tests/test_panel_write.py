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
    request = blocker.args[0]
    text, config, mode = request.text, request.config, request.mode
    assert (text, mode, request.locks, request.forced_prefix) == ("春风得意", "couplet", {}, ())
    assert isinstance(config, DecodeConfig)
    assert (config.strategy, config.beam_size, config.n_best) == ("beam", 6, 5)
    with qtbot.waitSignal(panel.generate_requested) as blocker:   # Enter writes too
        qtbot.keyClick(panel.first_line, Qt.Key.Key_Return)
    assert blocker.args[0].text == "春风得意"


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
    text, config, mode = blocker.args[0].text, blocker.args[0].config, blocker.args[0].mode
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
    text, config, mode = blocker.args[0].text, blocker.args[0].config, blocker.args[0].mode
    assert (text, mode, config.n_best) == ("却说宝玉。", "continuation", 1)
    assert blocker.args[0].stream                   # sampling, one output: streamed
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
    assert blocker.args[0].text == "却说宝玉。听了这话，笑道\n下文雨"
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
        "greedy": {"repetition", "no_repeat"},
        "sample": {"temperature", "top_k", "top_p", "min_p", "repetition", "no_repeat", "n_best", "seed"},
        "beam": {"repetition", "no_repeat", "beam_size", "length_penalty", "coverage", "n_best"},
    }
    names = ["temperature", "top_k", "top_p", "min_p", "repetition", "no_repeat", "beam_size",
             "length_penalty", "coverage", "n_best", "seed"]
    for strategy, relevant in expected.items():
        with qtbot.waitSignal(controls.changed):
            controls.strategy.setCurrentIndex(controls.strategy.findData(strategy))
        assert {n for n in names if controls.is_relevant(n)} == relevant
        assert controls.is_relevant("max_tokens") and controls.is_relevant("alternatives")
        assert controls.config().strategy == strategy
    couplet = controls.couplet
    for widget in (controls.strategy, controls.temperature, controls.top_k, controls.top_p,
                   controls.min_p, controls.repetition, controls.no_repeat, controls.beam_size,
                   controls.coverage, controls.n_best, controls.max_tokens, controls.seed,
                   controls.random_seed, controls.alternatives, *couplet.rules.values(), couplet.tone,
                   couplet.locks):
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
    controls.coverage.setValue(0.4)
    assert controls.config().coverage_penalty == 0.4
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


def test_new_controls_and_couplet_rules_build_the_config_and_the_request(panel, qtbot):
    controls = panel.controls
    couplet = controls.couplet
    assert not couplet.isHidden() and controls.config().tone == "soft"
    controls.strategy.setCurrentIndex(controls.strategy.findData("sample"))
    controls.min_p.setValue(0.08)
    controls.no_repeat.setValue(3)
    controls.alternatives.setValue(7)
    couplet.rules["couplet_punctuation"].setChecked(False)
    couplet.rules["couplet_no_reuse"].setChecked(False)
    couplet.tone.setCurrentIndex(couplet.tone.findData("hard"))
    with qtbot.waitSignal(controls.changed):
        couplet.locks.setText(" 3 = 春，7=风 ")
    config = panel.decode_config()
    assert (config.strategy, config.min_p, config.no_repeat_ngram) == ("sample", 0.08, 3)
    assert config.alternatives == 7
    assert (config.couplet_length, config.couplet_punctuation, config.couplet_repeats,
            config.couplet_no_reuse, config.tone) == (True, False, True, False, "hard")
    assert panel.locks() == {3: "春", 7: "风"}
    panel.first_line.setText("春风得意花铺路")
    with qtbot.waitSignal(panel.generate_requested) as blocker:
        qtbot.mouseClick(panel.write_button, Qt.MouseButton.LeftButton)
    request = blocker.args[0]
    assert request.config == config and request.locks == {3: "春", 7: "风"}
    # A project's settings show in the controls, the couplet ones included.
    panel.set_defaults(DecodeConfig(strategy="beam", tone="off", couplet_repeats=False, min_p=0.2))
    assert not couplet.rules["couplet_repeats"].isChecked() and couplet.tone.currentData() == "off"
    assert panel.decode_config().min_p == 0.2 and not controls.is_relevant("min_p")
    # Other tasks have no couplet rules: hidden, no locks, the config's own values kept.
    panel.set_task("translation")
    assert couplet.isHidden() and panel.locks() == {}
    assert panel.decode_config().tone == DecodeConfig().tone


def test_a_malformed_lock_is_one_line_in_the_status_and_nothing_is_written(panel, qtbot):
    panel.first_line.setText("春风得意花铺路")
    for typed, error in (("3春", "Locked characters: 3春: write POS=CHAR, e.g. 3=春"),
                         ("0=春", "Locked characters: 0=春: positions count from 1 (the first character)"),
                         ("3=春 3=风", "Locked characters: 3=春 and 3=风: position 3 locked twice")):
        panel.controls.couplet.locks.setText(typed)
        with qtbot.assertNotEmitted(panel.generate_requested), \
                qtbot.assertNotEmitted(panel.compare_requested):
            qtbot.mouseClick(panel.write_button, Qt.MouseButton.LeftButton)
            qtbot.mouseClick(panel.compare_button, Qt.MouseButton.LeftButton)
        assert panel.error_text() == panel.status.text() == error


def test_compare_asks_for_greedy_beam_and_sampling_with_the_panel_settings(panel, qtbot):
    from app.write_request import CompareRow

    panel.controls.beam_size.setValue(5)
    panel.controls.temperature.setValue(0.7)
    panel.controls.top_k.setValue(30)
    panel.first_line.setText("春风得意花铺路")
    with qtbot.waitSignal(panel.compare_requested) as blocker:
        qtbot.mouseClick(panel.compare_button, Qt.MouseButton.LeftButton)
    request = blocker.args[0]
    runs = [config for _, config in request.runs]
    assert [c.strategy for c in runs] == ["greedy", "beam", "sample"] and {c.n_best for c in runs} == {1}
    assert runs[1].beam_size == 5 and (runs[2].temperature, runs[2].top_k) == (0.7, 30)
    assert "T 0.7" in request.runs[2][0] and "top-k 30" in request.runs[2][0]
    assert not panel.showing_comparison()
    rows = [CompareRow(label, config, GenerationResult("春风得意花铺路", [1], [_candidate(text, -2.0)]))
            for (label, config), text in zip(request.runs, ("秋月明心照水", "旭日临门福满", "瑞雪迎春喜满"))]
    panel.show_comparison([*rows[:2], CompareRow(request.runs[2][0], runs[2], error="sampling failed")])
    assert panel.showing_comparison()
    assert panel.compare_view.outputs() == ["秋月明心照水", "旭日临门福满", ""]
    assert panel.compare_view.table.item(0, 2).text() == "sampling failed"


def _story(text: str, alternatives: bool = True) -> Candidate:
    from textgen_core.generation_result import Alternative

    ids = [100 + i for i in range(len(text))]
    alts = [[Alternative(ch, i, 0.6), Alternative("X", 7, 0.3)] for ch, i in zip(text, ids)]
    alts = alts if alternatives else []
    return Candidate(text, -1.0, ids, list(text), True, token_logprobs=[-0.5] * len(text),
                     alternatives=alts)


def test_continuation_stream_is_replaced_by_the_final_text_and_branches_replace_it(panel, qtbot):
    panel.set_task("continuation")
    panel.editor.setPlainText("开头。结尾")
    cursor = panel.editor.textCursor()
    cursor.setPosition(3)
    panel.editor.setTextCursor(cursor)
    with qtbot.waitSignal(panel.generate_requested):
        qtbot.mouseClick(panel.continue_button, Qt.MouseButton.LeftButton)
    panel.set_busy(True)
    for piece in ("他", " ⁇ ", "说"):                    # streamed: an unknown token reads " ⁇ "
        panel.append_stream(piece)
    assert panel.editor.toPlainText() == "开头。他 ⁇ 说结尾"
    panel.show_result(GenerationResult("开头。", [1], [_story("他说")]))
    panel.set_busy(False)
    assert panel.editor.toPlainText() == "开头。他说结尾" and panel.streamed_text() == "他 ⁇ 说"
    assert panel.tokens.strip.tokens() == ["他", "说"] and not panel.editor.isReadOnly()
    panel.tokens.select_token(1)
    assert [a[:2] for a in panel.tokens.alternatives()] == [("说", 0.6), ("X", 0.3)]
    with qtbot.waitSignal(panel.generate_requested) as blocker:
        panel.tokens.choose(1)
    request = blocker.args[0]
    assert request.forced_prefix == (100, 7) and request.text == "开头。"
    panel.set_busy(True)
    panel.append_stream("他X")                            # replaces the last continuation in place
    panel.append_stream("了")
    assert panel.editor.toPlainText() == "开头。他X了结尾"
    panel.show_result(GenerationResult("开头。", [1], [_story("他X了")]))
    panel.set_busy(False)
    assert panel.editor.toPlainText() == "开头。他X了结尾" and panel.can_undo()
    qtbot.mouseClick(panel.tokens.undo_button, Qt.MouseButton.LeftButton)
    assert panel.editor.toPlainText() == "开头。他说结尾" and not panel.can_undo()
    # A branch that fails leaves the continuation as it was.
    panel.tokens.select_token(1)
    with qtbot.waitSignal(panel.generate_requested):
        panel.tokens.choose(1)
    panel.set_busy(True)
    panel.show_error("generation crashed: RuntimeError: boom")
    panel.set_busy(False)
    assert panel.editor.toPlainText() == "开头。他说结尾" and not panel.editor.isReadOnly()
    # Edited since: branching is refused with a line in the status.
    edit = panel.editor.textCursor()
    edit.setPosition(4)
    edit.insertText("们")
    panel.tokens.select_token(0)
    with qtbot.assertNotEmitted(panel.generate_requested):
        panel.tokens.choose(1)
    assert "edited" in panel.error_text()


def test_a_result_without_alternatives_says_so_and_offers_no_branch(panel):
    panel.set_task("continuation")
    panel.show_result(GenerationResult("开头", [1], [_story("之后", alternatives=False)]))
    panel.tokens.select_token(0)
    assert panel.tokens.alternatives() == [] and "No alternatives" in panel.tokens.heading.text()
    assert not panel.tokens.branch_button.isEnabled()
