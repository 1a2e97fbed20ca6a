"""Tests for textgen_core.encoding: short legacy-code-page files, whatever the charset detector answers.

charset-normalizer's answers for short files change between releases: 3.4 often answers Korean or
Japanese for a two-line GBK file, 3.5 also Thai (cp874) or Cyrillic (ISO-8859-5, PTCP154). Each case runs
with the installed release (the newest, as a fresh install resolves it) and with the detector made to give
each of those answers, so the decision cannot hang on the detector's release.
"""

from __future__ import annotations

import random
import types
from pathlib import Path

import charset_normalizer
import pytest

from textgen_core.encoding import decode_bytes, read_text
from textgen_core.errors import CorpusError

SAMPLES = Path(__file__).resolve().parent.parent / "resources" / "samples"

# Short GBK files: couplets with and without spaces, a few lines, Chinese punctuation, traditional text.
GBK_TEXTS = [
    "晚 风 摇 树 树 还 挺\n晨 露 润 花 花 更 红\n",  # charset-normalizer 3.5: ISO-8859-5
    "士兵亦兵士\n夜深才到皆因醉\n",  # 3.5: Thai
    "桃核象核桃\n酒醒方知已嫁人\n",  # 3.5: Shift_JIS half-width kana
    "愿 景 天 成 无 墨 迹\n万 方 乐 奏 有 于 阗\n丹 枫 江 冷 人 初 去\n",
    "海阔凭鱼跃，天高任鸟飞。\n欲穷千里目，更上一层楼。\n",
    "“闲来野钓人稀处”——“兴起高歌酒醉中”。\n",  # 3.5: Thai
    "你好。\n谢谢！\n",
    "松 煙 衝 翠 幄\n",  # traditional characters saved as GBK; 3.5: mac_cyrillic
    "塵夢哪如鶴夢長\n",  # 3.4 and 3.5: Shift_JIS
]
BIG5_TEXTS = [
    "晚 風 搖 樹 樹 還 挺\n晨 露 潤 花 花 更 紅\n",
    "佛手仙人掌\n士兵亦兵士\n",
    "假君子\n萬里青雲合\n",
    "寒 鴉 亂 點 夕 陽 句\n玉 兔 升 騰 蟾 闕 裡\n",
    "海闊憑魚躍，天高任鳥飛。\n",
    "「你好。」他說：「謝謝！」\n",
]
CHINESE = [(text, "gbk", "gb18030") for text in GBK_TEXTS] + [(text, "big5", "big5") for text in BIG5_TEXTS]
WESTERN = [
    "café naïve\n",
    "Cette maison est célèbre.\n",
    "Ça va ?\n",
    "Tu ne dois pas manquer ça.\nÊtes-vous sûrs de vouloir y aller ?\n",
    "Go.\tVa !\nSee you.\tÀ bientôt, café crème, élève.\n",
    "Grüße aus München, schöne Straße. Ärger über Öl.\n",
    "¡Hola! ¿Qué tal? El niño comió piñata.\n",
    "Coração, ação, não é? Pão e feijão.\n",
    "«Ça va ?» dit-il. L’été à Noël, £5 or €10, 20°C.\n",
]
# What charset-normalizer has answered for short Chinese files, or could: single-byte code pages of
# several scripts, the wrong CJK family, Chinese for Western text, and no answer at all.
ANSWERS = [
    ("iso8859_5",), ("ptcp154",), ("cp874",), ("cp1251", "cp1252"), ("mac_cyrillic",), ("koi8_r",),
    ("mac_greek",), ("cp1256",), ("cp1252",), ("shift_jis_2004",), ("cp949",), ("gb18030",), ("big5",), (),
]  # fmt: skip


def detector_answers(monkeypatch: pytest.MonkeyPatch, answers: tuple[str, ...]) -> None:
    """Make charset-normalizer answer ``answers``, best first, each as plausible as the next."""
    matches = [types.SimpleNamespace(encoding=a, chaos=0.0, could_be_from_charset=[a]) for a in answers]
    monkeypatch.setattr(charset_normalizer, "from_bytes", lambda data: matches)


@pytest.mark.parametrize(("text", "codec", "expected"), CHINESE)
def test_short_chinese_files_with_installed_detector(text, codec, expected):
    assert decode_bytes(text.encode(codec), "f.txt") == (text, expected)


@pytest.mark.parametrize("answers", ANSWERS, ids="-".join)
def test_short_chinese_files_whatever_the_detector_answers(monkeypatch, answers):
    detector_answers(monkeypatch, answers)
    for text, codec, expected in CHINESE:
        assert decode_bytes(text.encode(codec), "f.txt") == (text, expected), answers


def test_bundled_couplets_as_short_gbk_files(tmp_path):
    """Forty one- to three-line GBK files cut from the bundled couplets, with and without spaces."""
    lines = (SAMPLES / "couplets.in.txt").read_text(encoding="utf-8").splitlines()
    lines += (SAMPLES / "couplets.out.txt").read_text(encoding="utf-8").splitlines()
    rng = random.Random(11)
    wrong = []
    for trial in range(40):
        rows = rng.sample(lines, rng.randint(1, 3))
        text = "\n".join(row if trial % 2 else row.replace(" ", "") for row in rows) + "\n"
        path = tmp_path / f"c{trial}.txt"
        path.write_bytes(text.encode("gbk"))
        decoded, encoding = read_text(path)
        if (decoded, encoding) != (text, "gb18030"):
            wrong.append((text, encoding, decoded))
    assert wrong == []


@pytest.mark.parametrize("answers", [None, ("gb18030",), ("big5",), ("cp932",), ()], ids=str)
def test_western_text_stays_windows_1252(monkeypatch, answers):
    """Accented letters followed by a letter also decode strictly as GBK; the reading decides."""
    if answers is not None:
        detector_answers(monkeypatch, answers)
    for text in WESTERN:
        assert decode_bytes(text.encode("cp1252"), "f.txt") == (text, "cp1252"), answers


@pytest.mark.parametrize(
    ("text", "codec"),
    [
        ("Съешь же ещё этих мягких французских булок, да выпей чаю.\n", "cp1251"),
        ("Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.\n", "cp1253"),
        ("สวัสดีครับ ภาษาไทย\nเป็นมนุษย์สุดประเสริฐเลิศคุณค่า\n", "cp874"),
        ("Příliš žluťoučký kůň úpěl ďábelské ódy.\n", "cp1250"),
    ],
)
def test_other_single_byte_text_keeps_the_detectors_answer(monkeypatch, text, codec):
    detector_answers(monkeypatch, (codec,))
    assert decode_bytes(text.encode(codec), "f.txt") == (text, codec)


def _garbled(rng: random.Random) -> bytes:
    """Lines of random bytes 0x81-0xFE: every pair of them is a valid GB18030 character."""
    return b"".join(bytes(rng.randint(0x81, 0xFE) for _ in range(30)) + b"\n" for _ in range(12))


@pytest.mark.parametrize("answers", [None, *ANSWERS], ids=str)
def test_mojibake_is_refused(monkeypatch, tmp_path, answers):
    if answers is not None:
        detector_answers(monkeypatch, answers)
    path = tmp_path / "garbled.txt"
    path.write_bytes(_garbled(random.Random(3)))
    path.read_bytes().decode("gb18030")  # decodes strictly, into rare characters
    with pytest.raises(CorpusError) as info:
        read_text(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: cannot tell the text encoding: even the best guess")
    assert message.endswith("reads as mostly rare or unassigned characters; re-save the file as UTF-8")
