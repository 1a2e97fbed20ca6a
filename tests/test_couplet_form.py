"""textgen_core.couplet_form: the form check of a written couplet (pure Python, fast)."""

from __future__ import annotations

import dataclasses

import pytest

from textgen_core.couplet_form import FormCheck, check_form, form_share

KEPT = [
    ("晚风摇树树还挺", "晨露润花花更红"),          # mirrored 叠字
    ("愿景天成无墨迹", "万方乐奏有于阗"),
    ("丹枫江冷人初去", "绿柳堤新燕复来"),
    ("春风得意，马蹄疾", "秋水无声，雁影长"),      # punctuation at the same place
    ("一山一水一世界", "半竹半梅半乾坤"),           # a character three times, mirrored
    ("天天向上", "日日更新"),
    ("晚 风 摇 树 树 还 挺", "晨 露 润 花 花 更 红"),  # spaced as the corpus writes it
    ("海阔凭鱼跃,天高任鸟飞", "山深听鹤唳，林静看云飞"),  # ASCII comma opposite a full-width one
]


@pytest.mark.parametrize(("first", "second"), KEPT)
def test_real_couplets_keep_the_form(first: str, second: str) -> None:
    result = check_form(first, second)
    assert result == FormCheck(length=True, punctuation=True, repeats=True)
    assert result.kept


def test_result_is_frozen() -> None:
    result = check_form("天天向上", "日日更新")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.length = False  # type: ignore[misc]


def test_different_length_fails_length_only() -> None:
    result = check_form("晚风摇树树还挺", "晨露润花花更")
    assert not result.length and result.punctuation and result.repeats
    assert not result.kept


def test_empty_second_line() -> None:
    result = check_form("晚风摇树树还挺", "")
    assert not result.length
    assert not result.kept


def test_punctuation_moved() -> None:
    result = check_form("春风得意，马蹄疾", "秋水无声雁，影长")
    assert result.length and not result.punctuation and not result.kept


def test_punctuation_missing_in_second_line() -> None:
    result = check_form("春风得意，马蹄疾", "秋水无声天雁影长")
    assert result.length and not result.punctuation


def test_punctuation_where_the_first_line_has_none() -> None:
    assert not check_form("春风得意马蹄疾", "秋水无声。雁影").punctuation


def test_first_line_repeat_not_mirrored() -> None:
    result = check_form("晚风摇树树还挺", "晨露润花草更红")
    assert result.length and result.punctuation and not result.repeats and not result.kept


def test_second_line_repeat_the_first_lacks() -> None:
    result = check_form("丹枫江冷人初去", "绿柳堤堤燕复来")
    assert not result.repeats


def test_repeat_mirrored_at_other_positions_fails() -> None:
    # the first line repeats at 3/4, the second at 4/5: same count, wrong places
    assert not check_form("晚风摇树树还挺", "晨露润花更更红").repeats


def test_non_adjacent_repeat() -> None:
    assert check_form("一山一水", "半竹半梅").repeats
    assert not check_form("一山一水", "半竹全梅").repeats


def test_repeated_punctuation_is_not_a_repeat() -> None:
    # two commas in the first line, two different marks opposite: punctuation check only
    assert check_form("春风，秋雨，好", "夏花；冬雪，佳").kept


def test_both_lines_empty() -> None:
    assert check_form("", "").kept


def test_form_share() -> None:
    pairs = [
        ("晚风摇树树还挺", "晨露润花花更红"),     # kept
        ("晚风摇树树还挺", "晨露润花草更红"),     # repeats broken
        ("春风得意，马蹄疾", "秋水无声雁，影长"),  # punctuation broken
        ("天天向上", "日日更"),                   # length broken
    ]
    share = form_share(pairs)
    assert share == {"length": 75.0, "punctuation": 75.0, "repeats": 75.0, "kept": 25.0}


def test_form_share_of_nothing() -> None:
    assert form_share([]) == {"length": 0.0, "punctuation": 0.0, "repeats": 0.0, "kept": 0.0}


def test_form_share_accepts_a_generator() -> None:
    assert form_share(p for p in KEPT)["kept"] == 100.0
