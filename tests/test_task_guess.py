"""The task is guessed from the corpus files: novel -> continuation, couplets, translation."""

from __future__ import annotations

import pytest

from tests.conftest import COUPLETS, NOVEL, TRANSLATION
from textgen_core.task_guess import HEAD_BYTES, guess_task


@pytest.mark.parametrize(("files", "task"), [
    (COUPLETS, "couplet"),
    ([TRANSLATION], "translation"),
    ([NOVEL], "continuation"),
    ([NOVEL, NOVEL], "continuation"),            # two texts, not pairs of lines
    ([COUPLETS[0], NOVEL], "continuation"),
    ([COUPLETS[0]], "continuation"),             # one file without tabs is plain text
])
def test_bundled_samples(files, task):
    guess = guess_task([str(f) for f in files])
    assert guess is not None and guess.task == task and guess.reason


def test_tables_of_couplets_and_of_one_language(tmp_path):
    tsv, csv_file, english = tmp_path / "c.tsv", tmp_path / "c.csv", tmp_path / "e.tsv"
    tsv.write_text("春风得意马蹄疾\t一日看尽长安花\n海内存知己\t天涯若比邻\n", encoding="utf-8")
    csv_file.write_text("春风得意马蹄疾,一日看尽长安花\n海内存知己,天涯若比邻\n", encoding="utf-8")
    english.write_text("How are you?\tHow do you do?\nHi.\tHello.\n", encoding="utf-8")
    assert guess_task([tsv]).task == "couplet"
    assert guess_task([csv_file]).task == "couplet"
    assert guess_task([english]).task == "translation"          # a table is pairs in any case


def test_two_aligned_files_in_two_languages_and_in_gbk(tmp_path):
    en, zh = tmp_path / "en.txt", tmp_path / "zh.txt"
    en.write_text("I won!\nI quit.\nTry it.\n", encoding="utf-8")
    zh.write_text("我赢了。\n我退出。\n试试吧。\n", encoding="utf-8")
    assert guess_task([en, zh]).task == "translation"
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_bytes("春风得意马蹄疾\n海内存知己\n".encode("gbk"))
    second.write_bytes("一日看尽长安花\n天涯若比邻\n".encode("gbk"))
    assert guess_task([first, second]).task == "couplet"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "gb18030"])
def test_big_files_are_guessed_from_their_head(tmp_path, encoding):
    novel = tmp_path / "novel.txt"
    text = NOVEL.read_text(encoding="utf-8")
    novel.write_bytes((text * (3 * HEAD_BYTES // len(text.encode(encoding)) + 1)).encode(encoding))
    assert novel.stat().st_size > 2 * HEAD_BYTES
    assert guess_task([novel]).task == "continuation"
    first, second = tmp_path / "in.txt", tmp_path / "out.txt"
    for src, dst in zip(COUPLETS, (first, second)):
        dst.write_bytes((src.read_text(encoding="utf-8") * 4).encode(encoding))
    assert guess_task([first, second]).task == "couplet"


def test_unreadable_files_give_no_guess(tmp_path):
    assert guess_task([]) is None
    assert guess_task([tmp_path / "missing.txt"]) is None
    assert guess_task([tmp_path]) is None
    binary = tmp_path / "b.txt"
    binary.write_bytes(bytes(range(256)) * 40)
    assert guess_task([binary]) is None
