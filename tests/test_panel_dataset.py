"""The dataset panel parses corpus files, previews them and asks for a project to be created."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent

from app.panels.dataset import PREVIEW_ROWS, DatasetPanel
from tests.conftest import COUPLETS, NOVEL, TRANSLATION


@pytest.fixture
def panel(qtbot):
    widget = DatasetPanel()
    qtbot.addWidget(widget)
    widget.resize(900, 600)
    widget.show()
    return widget


def _pair_total(panel: DatasetPanel) -> int:
    return sum(count for count, _ in panel.split_counts().values())


def test_couplets_preview_counts_and_histogram(panel):
    panel.set_task("couplet")
    panel.load_files([str(p) for p in COUPLETS])
    corpus = panel.corpus()
    assert corpus is not None and panel.error_text() == ""
    assert panel.encoding_label.text() == "utf-8"
    assert panel.table.rowCount() == PREVIEW_ROWS and panel.table.columnCount() == 2
    assert panel.table.item(0, 0).text() == corpus.pairs[0].source
    assert panel.table.item(0, 1).text() == corpus.pairs[0].target
    assert " " not in panel.table.item(0, 0).text()  # space-separated characters were joined
    assert _pair_total(panel) == len(corpus.pairs) == 3000
    assert panel.split_counts()["valid"][0] == 150
    x, heights = panel.histogram_data()
    assert x and sum(heights) == len(corpus.pairs)
    assert panel.create_button.isEnabled()
    assert not panel.error_label.isVisible()


def test_translation_and_swap(panel):
    panel.set_task("translation")
    panel.load_files([str(TRANSLATION)])
    first = panel.corpus().pairs[0]
    assert panel.table.item(0, 0).text() == first.source
    assert first.source.isascii()
    assert _pair_total(panel) == len(panel.corpus().pairs)
    panel.swap_check.setChecked(True)
    assert panel.corpus().pairs[0].source == first.target
    assert panel.table.item(0, 0).text() == first.target


def test_continuation_shows_paragraphs_and_characters(panel):
    panel.set_task("continuation")
    panel.load_files([str(NOVEL)])
    corpus = panel.corpus()
    assert corpus is not None and corpus.task == "continuation"
    assert panel.table.columnCount() == 1
    assert panel.table.rowCount() == PREVIEW_ROWS
    counts = panel.split_counts()
    chars = sum(c for c, _ in counts.values())
    assert abs(chars - len(corpus.text)) < 200  # chunks are re-joined with newlines
    assert counts["train"][1] > counts["valid"][1] > 0 and counts["test"] == (0, 0)
    assert "characters" in panel.counts_label.text() and "paragraphs" in panel.counts_label.text()
    assert sum(panel.histogram_data()[1]) > 0


def test_gbk_file_is_detected(panel, tmp_path):
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_bytes("春风得意马蹄疾\n海内存知己\n".encode("gbk"))
    second.write_bytes("一日看尽长安花\n天涯若比邻\n".encode("gbk"))
    panel.load_files([str(first), str(second)])
    assert panel.error_text() == ""
    assert panel.encoding_label.text() == "gb18030"
    assert panel.table.item(1, 1).text() == "天涯若比邻"


def test_dropped_pairs_warn_in_amber(panel, tmp_path):
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("春风得意马蹄疾\n海内存知己\n", encoding="utf-8")
    second.write_text("一日看尽长安花\n天涯若比邻啊\n", encoding="utf-8")
    panel.load_files([str(first), str(second)])
    assert panel.corpus() is not None
    assert panel.warning_label.isVisible() and "dropped 1 couplet pair" in panel.warning_label.text()


@pytest.mark.parametrize("case", ["binary", "mismatched", "empty", "missing", "no_tab"])
def test_bad_input_shows_one_red_line(panel, tmp_path, case):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    if case == "binary":
        a.write_bytes(bytes(range(256)) * 40)
        files, task = [a], "continuation"
    elif case == "mismatched":
        a.write_text("春风\n海内\n明月\n", encoding="utf-8")
        b.write_text("秋雨\n", encoding="utf-8")
        files, task = [a, b], "couplet"
    elif case == "empty":
        a.write_bytes(b"")
        b.write_bytes(b"")
        files, task = [a, b], "couplet"
    elif case == "missing":
        files, task = [tmp_path / "nope.txt"], "continuation"
    else:
        a.write_text("hello world\n", encoding="utf-8")
        files, task = [a], "translation"
    panel.load_files([str(f) for f in files], task=task)
    assert panel.corpus() is None
    message = panel.error_text()
    assert message and "\n" not in message and "Traceback" not in message
    assert panel.error_label.isVisible() and panel.error_label.text() == message
    assert "c62828" in panel.error_label.styleSheet()
    assert not panel.create_button.isEnabled()
    assert panel.table.rowCount() == 0 and panel.histogram_data() == ([], [])


def test_choosing_a_novel_while_the_task_says_couplet_guesses_continuation(panel, monkeypatch):
    panel.set_task("couplet")
    asked = []
    monkeypatch.setattr(panel, "ask_for_files", lambda start: asked.append(start) or [str(NOVEL)])
    panel.choose_button.click()
    assert asked == [""]
    assert panel.task() == "continuation" and panel.error_text() == ""
    assert panel.corpus() is not None and panel.corpus().task == "continuation"
    assert panel.guess_label.isVisible() and "one plain-text file" in panel.guess_text()

    panel.task_combo.setCurrentIndex(panel.task_combo.findData("translation"))   # the user disagrees
    assert panel.task() == "translation" and not panel.guess_label.isVisible()
    assert "no tab" in panel.error_text()                       # and is told what that task needs
    panel.set_task("continuation")
    assert panel.guess_text() and panel.corpus() is not None

    monkeypatch.setattr(panel, "ask_for_files", lambda start: asked.append(start) or [])
    panel.choose_files()                                        # the dialog was cancelled: no change
    assert asked[-1] == str(NOVEL.parent) and panel.paths() == [str(NOVEL)]


@pytest.mark.parametrize(("files", "task"), [(COUPLETS, "couplet"), ([TRANSLATION], "translation")])
def test_pairs_are_guessed_and_a_given_task_is_kept(panel, files, task):
    seen = []
    panel.task_changed.connect(seen.append)
    panel.set_task("continuation")
    panel.load_files([str(f) for f in files])
    assert panel.task() == task and panel.corpus() is not None and panel.guess_text()
    assert seen == ["continuation", task]
    panel.load_files([str(NOVEL)], task="couplet")           # an opened project's task stays
    assert panel.task() == "couplet" and not panel.guess_text() and "no tab" in panel.error_text()


def _drop(panel: DatasetPanel, paths: list[Path]) -> tuple[bool, bool]:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    actions, buttons = Qt.DropAction.CopyAction, Qt.MouseButton.LeftButton
    enter = QDragEnterEvent(QPoint(10, 10), actions, mime, buttons, Qt.KeyboardModifier.NoModifier)
    panel.dragEnterEvent(enter)
    drop = QDropEvent(QPointF(10, 10), actions, mime, buttons, Qt.KeyboardModifier.NoModifier)
    panel.dropEvent(drop)
    return enter.isAccepted(), drop.isAccepted()


def test_drop_files_loads_them(panel):
    accepted = _drop(panel, COUPLETS)
    assert accepted == (True, True)
    assert panel.paths() == [str(p) for p in COUPLETS]
    assert panel.corpus() is not None and len(panel.corpus().pairs) == 3000
    assert "couplets.in.txt" in panel.files_label.text()


def test_drop_of_non_files_is_refused(panel):
    mime = QMimeData()
    mime.setText("just text")
    enter = QDragEnterEvent(QPoint(1, 1), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    panel.dragEnterEvent(enter)
    assert not enter.isAccepted()


def test_create_requested_carries_task_paths_and_swap(panel, qtbot):
    assert not panel.create_button.isEnabled()
    panel.set_task("translation")
    panel.swap_check.setChecked(True)
    panel.load_files([str(TRANSLATION)])
    with qtbot.waitSignal(panel.create_requested, timeout=1000) as blocker:
        qtbot.mouseClick(panel.create_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["translation", [str(TRANSLATION)], True]


def test_big_files_are_parsed_off_the_gui_thread(panel, qtbot):
    panel.async_bytes = 0  # treat every file as big
    panel.set_task("couplet")
    with qtbot.waitSignal(panel.parsed, timeout=10_000):
        panel.load_files([str(p) for p in COUPLETS])
        assert panel.is_busy() and panel.corpus() is None
        assert not panel.create_button.isEnabled()
    assert not panel.is_busy()
    assert panel.corpus() is not None and panel.table.rowCount() == PREVIEW_ROWS


def test_stale_background_result_is_dropped(panel, qtbot):
    panel.async_bytes = 0
    shown = []
    panel.parsed.connect(lambda: shown.append(panel.corpus().task if panel.corpus() else None))
    panel.set_task("couplet")
    panel.load_files([str(p) for p in COUPLETS])
    panel.set_task("continuation")  # a new request before the first one is shown
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=10_000)
    qtbot.wait(100)
    assert shown == ["continuation"]


def test_project_info_is_shown(panel):
    info = {
        "name": "demo", "task": "couplet", "model": "transformer",
        "tokenizer": {"kind": "char", "shared": True, "vocab_size": 2345, "tgt_vocab_size": 2345},
        "examples": {"train": 360, "valid": 20, "test": 20}, "sources": ["/data/in.txt", "/data/out.txt"],
    }
    assert not panel.info_box.isVisible()
    panel.show_project_info(info)
    assert panel.info_box.isVisible()
    assert "360 train" in panel.info_labels["examples"].text()
    assert "char" in panel.info_labels["tokenizer"].text()
    assert "2,345" in panel.info_labels["tokenizer"].text()


def test_screenshot(panel, qtbot):
    panel.set_task("couplet")
    panel.load_files([str(p) for p in COUPLETS])
    panel.grab().save("/tmp/panel_dataset.png")
    assert Path("/tmp/panel_dataset.png").stat().st_size > 0
