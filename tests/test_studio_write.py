"""The Write panel's decoding in the real window with a real (tiny, trained) couplet model: the
n-best list and the attention of the selected hypothesis, token alternatives and branching,
Compare, lock errors in the status line, streaming."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from textgen_core.decoding.config import DecodeConfig

FIRST = "晚风摇树树还挺"
WAIT_MS = 20_000


@pytest.fixture
def window(studio_window, couplet_project, monkeypatch):
    """The studio with the shared trained couplet project open; any error dialog fails the test."""
    dialogs: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical", lambda *args: dialogs.append(str(args[2])))
    assert studio_window.open_project(couplet_project)
    studio_window.show_panel("write")
    studio_window.dialogs = dialogs
    yield studio_window
    assert dialogs == []


def _settings(panel, strategy: str, **spins: float) -> None:
    controls = panel.controls
    controls.strategy.setCurrentIndex(controls.strategy.findData(strategy))
    for name, value in spins.items():
        getattr(controls, name).setValue(value)


def _write(qtbot, window, text: str = FIRST):
    """Click Write and wait until the panel is idle again; the result."""
    panel = window.panels["write"]
    panel.first_line.setText(text)
    with qtbot.waitSignal(window.generation.result, timeout=WAIT_MS) as got:
        qtbot.mouseClick(panel.write_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.write_button.isEnabled(), timeout=WAIT_MS)
    return got.args[0]


def _beam(qtbot, window):
    panel = window.panels["write"]
    _settings(panel, "beam", beam_size=4)
    panel.controls.n_best.setValue(4)
    return _write(qtbot, window)


def _attention(generator, prompt_ids, ids) -> np.ndarray:
    with torch.inference_mode():
        return generator.attention(prompt_ids, ids).weights


def test_beam_fills_the_nbest_list_and_attention_follows_the_selection(qtbot, window, couplet_generator):
    panel, attention = window.panels["write"], window.panels["attention"]
    result = _beam(qtbot, window)
    hyps = result.hypotheses
    assert len(hyps) == 4 and panel.candidates.count() == 4
    for row, hyp in enumerate(hyps):
        item = panel.candidates.item(row).text()
        assert item.startswith(hyp.text) and f"{hyp.score:.3f}" in item
        assert ("平仄 ✓" in item or "平仄 ✗" in item) == (hyp.tone is not None)
    assert panel.couplet_lines() == (FIRST, hyps[0].text)
    first_matrix = attention.current_matrix().copy()
    # cross-attention reads the output up to the token before each one: the last token never shows
    row = next(i for i, h in enumerate(hyps) if h.ids[:-1] != hyps[0].ids[:-1])
    panel.candidates.setCurrentRow(row)
    assert panel.couplet_lines()[1] == hyps[row].text
    assert panel.tokens.strip.tokens() == hyps[row].tokens
    expected = _attention(couplet_generator, result.prompt_ids, hyps[row].ids)
    layer = attention.layer_combo.currentIndex()
    qtbot.waitUntil(lambda: not np.array_equal(attention.current_matrix(), first_matrix), timeout=WAIT_MS)
    np.testing.assert_allclose(attention.current_matrix(), expected[layer].mean(axis=0), atol=1e-5)
    panel.candidates.setCurrentRow(0)                      # back: the result's own attention
    np.testing.assert_allclose(attention.current_matrix(), first_matrix)


def test_a_token_shows_its_alternatives_and_branching_writes_from_the_chosen_one(qtbot, window):
    panel = window.panels["write"]
    before = _beam(qtbot, window).hypotheses[0]
    strip, position = panel.tokens.strip, 2
    rect = strip.token_rect(position)
    assert rect.isValid() and rect.width() > 0
    qtbot.mouseClick(strip.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert strip.selected() == position
    listed = panel.tokens.alternatives()
    probabilities = [p for _, p, _ in listed]
    assert len(listed) >= 2 and probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) <= 1.0 + 1e-6 and all(0.0 <= p <= 1.0 for p in probabilities)
    assert [token for token, _, written in listed if written] == [before.tokens[position]]
    assert panel.tokens.choices.count() == len(listed)
    row = next(i for i, (_, _, written) in enumerate(listed) if not written)
    chosen_id = panel.tokens._rows[row][0].id
    with qtbot.waitSignal(window.generation.result, timeout=WAIT_MS) as got:
        panel.tokens.choose(row)
    qtbot.waitUntil(lambda: panel.write_button.isEnabled(), timeout=WAIT_MS)
    after = got.args[0].hypotheses
    assert after, "the branch wrote nothing"
    for hyp in after:                                          # every hypothesis starts there
        assert hyp.ids[: position + 1] == [*before.ids[:position], chosen_id]
        assert len(hyp.text) == len(FIRST)                     # and keeps the couplet's length
    assert panel.couplet_lines()[1] == after[0].text
    assert panel.can_undo() and panel.tokens.undo_button.isEnabled()
    qtbot.mouseClick(panel.tokens.undo_button, Qt.MouseButton.LeftButton)
    assert panel.couplet_lines()[1] == before.text and not panel.can_undo()


def test_compare_shows_greedy_beam_and_sampling_side_by_side(qtbot, window, couplet_generator):
    panel = window.panels["write"]
    _settings(panel, "beam", beam_size=3, temperature=0.7, top_k=20)
    panel.first_line.setText(FIRST)
    with qtbot.waitSignal(window.generation.compared, timeout=WAIT_MS) as got:
        qtbot.mouseClick(panel.compare_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.compare_button.isEnabled(), timeout=WAIT_MS)
    rows = got.args[0]
    assert [r.config.strategy for r in rows] == ["greedy", "beam", "sample"]
    assert rows[1].config.beam_size == 3 and (rows[2].config.temperature, rows[2].config.top_k) == (0.7, 20)
    view = panel.compare_view
    assert panel.showing_comparison() and view.table.columnCount() == 3
    assert [label.split("\n")[0] for label in view.labels()] == ["Greedy", "Beam search", "Sampling"]
    outputs = view.outputs()
    assert all(len(text) == len(FIRST) for text in outputs)
    greedy = couplet_generator.generate(FIRST, replace_strategy(panel.decode_config(), "greedy"))
    assert outputs[0] == greedy.hypotheses[0].text
    assert [view.table.item(0, c).text() for c in range(3)] == outputs


def replace_strategy(config: DecodeConfig, strategy: str) -> DecodeConfig:
    from dataclasses import replace

    return replace(config, strategy=strategy, n_best=1)


def test_a_bad_lock_shows_one_line_in_the_status_and_no_dialog(qtbot, window):
    panel = window.panels["write"]
    panel.controls.couplet.locks.setText("3春")                # not POS=CHAR: refused before writing
    panel.first_line.setText(FIRST)
    with qtbot.assertNotEmitted(window.generation.result, wait=100):
        qtbot.mouseClick(panel.write_button, Qt.MouseButton.LeftButton)
    assert panel.error_text() == "Locked characters: 3春: write POS=CHAR, e.g. 3=春"
    assert panel.status.text() == panel.error_text() and "\n" not in panel.status.text()
    assert not window.generation.busy
    panel.controls.couplet.locks.setText("9=春")               # well-formed, past the line's end
    with qtbot.waitSignal(window.generation.failed, timeout=WAIT_MS):
        qtbot.mouseClick(panel.write_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.write_button.isEnabled(), timeout=WAIT_MS)
    assert panel.error_text() == "Locked characters: 9=春: the first line has 7 characters"
    assert "\n" not in panel.status.text() and "Traceback" not in panel.status.text()


def test_locks_rules_and_tone_reach_the_model(qtbot, window):
    panel = window.panels["write"]
    _settings(panel, "beam", beam_size=3)
    panel.controls.couplet.locks.setText("2=山 7=天")
    panel.controls.couplet.tone.setCurrentIndex(panel.controls.couplet.tone.findData("hard"))
    result = _write(qtbot, window)
    assert panel.error_text() == ""
    for hyp in result.hypotheses:
        assert (hyp.text[1], hyp.text[6]) == ("山", "天")
    assert panel.couplet_lines()[1] == result.hypotheses[0].text


@pytest.mark.parametrize("strategy", ["greedy", "sample"])
def test_streamed_text_equals_the_final_text(qtbot, window, strategy):
    panel = window.panels["write"]
    _settings(panel, strategy, seed=3, n_best=1)             # one output: streamed
    pieces: list[str] = []
    window.generation.piece.connect(pieces.append)
    result = _write(qtbot, window)
    assert len(pieces) == len(FIRST)                           # one piece per character, as produced
    assert "".join(pieces) == panel.streamed_text() == result.hypotheses[0].text
    assert panel.couplet_lines() == (FIRST, result.hypotheses[0].text)
    assert panel.candidates.count() == 1 and panel.tokens.strip.tokens() == list(result.hypotheses[0].text)


def test_the_alternatives_of_a_greedy_output_hold_its_token_first(qtbot, window):
    panel = window.panels["write"]
    _settings(panel, "greedy", alternatives=3)
    hyp = _write(qtbot, window).hypotheses[0]
    # three at most: a position the rules decide (a mirrored repeat) has one token of probability 1
    assert {len(step) for step in hyp.alternatives} <= {1, 3} and max(map(len, hyp.alternatives)) == 3
    panel.tokens.select_token(0)
    listed = panel.tokens.alternatives()
    assert listed[0][2] and listed[0][0] == hyp.tokens[0]      # greedy writes the likeliest
    assert math.isclose(listed[0][1], math.exp(hyp.token_logprobs[0]), rel_tol=1e-4)


def test_a_model_without_attention_keeps_its_message_whichever_hypothesis_is_selected(window, monkeypatch):
    from textgen_core.generation import Candidate, GenerationResult

    asked = []
    monkeypatch.setattr(window.generation, "attention", asked.append)
    hyps = [Candidate(text, -1.0 - i, [10 + i] * 7, list(text), True) for i, text in
            enumerate(("旭日临门福满堂", "秋月当空桂满园"))]
    result = GenerationResult(FIRST, list(range(7)), hyps, None, "cnn-tagger has no attention to show")
    panel, attention = window.panels["write"], window.panels["attention"]
    panel.show_result(result)
    panel.candidates.setCurrentRow(1)
    assert panel.couplet_lines()[1] == "秋月当空桂满园" and asked == []
    assert attention.stack.currentWidget() is attention.placeholder
    assert attention.placeholder.text() == "cnn-tagger has no attention to show."
