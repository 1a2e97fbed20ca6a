"""Tests for textgen_core.corpus: formats, encodings, bad input and splits.

The sample text is copied from the project's sample corpora (couplets/train.*.txt, Tatoeba
cmn-eng.tsv and eng-fra.tsv, 红楼梦 with its CRLF line ends, tiny Shakespeare); the whole files are
also loaded when present.
"""

from __future__ import annotations

import bz2
import gzip
import logging
import lzma
import os
import random
import tarfile
import zipfile
from pathlib import Path

import pytest

from textgen_core.corpus import (
    TASKS,
    Corpus,
    Pair,
    load_corpus,
    read_text,
    split_pairs,
    split_text,
)
from textgen_core.errors import ConfigError, CorpusError

SHARED = Path("/work/shared/data")

COUPLET_IN = ["晚 风 摇 树 树 还 挺", "愿 景 天 成 无 墨 迹", "丹 枫 江 冷 人 初 去",
              "闲 来 野 钓 人 稀 处", "投 石 向 天 跟 命 斗"]
COUPLET_OUT = ["晨 露 润 花 花 更 红", "万 方 乐 奏 有 于 阗", "绿 柳 堤 新 燕 复 来",
               "兴 起 高 歌 酒 醉 中", "闭 门 问 卷 与 时 争"]
# Lines of the couplet sample that Big5 can encode (shared by simplified and traditional script).
_BIG5_ROWS = """志高心必苦|言巧路常通 夜深才到皆因醉|酒醒方知已嫁人 假君子|真水仙
    雪花引我生梅骨|秋雨任他老菊心 但愿万民安享福|不求一己得升官 蜜蜂采蜂蜜|油菜榨菜油
    士兵亦兵士|桃核象核桃 居有平安真自在|光明磊落好清白 雄心吞日月|醒眼看沉浮
    花香香草野|雨露露云天 江山焉可辨|日月使分明 自此青山成莫逆|而今明月化前身
    政善民勤千家福|河清海晏万代春 香分花上露|水吸石中泉 剪梅清煮雪|捻月漫思人
    光宗耀祖全家照|拜佛求神世界安 佛手仙人掌|巫山神女峰 万里青云合|三生碧草同
    白石清溪堪漱枕|老鬼索命已出山"""
BIG5_COUPLETS = [tuple(row.split("|")) for row in _BIG5_ROWS.split()]
ATTRIBUTION = "CC-BY 2.0 (France) Attribution: tatoeba.org "
CMN_ENG = [
    f"Hi.\t嗨。\t{ATTRIBUTION}#538123 (CM) & #891077 (Martha)",
    f"Hi.\t你好。\t{ATTRIBUTION}#538123 (CM) & #4857568 (musclegirlxyp)",
    f"Run.\t你用跑的。\t{ATTRIBUTION}#4008918 (JSakuragi) & #3748344 (egg0073)",
    f"Stop!\t住手！\t{ATTRIBUTION}#448320 (CM) & #448321 (GlossaMatik)",
]
ENG_FRA = [
    "Go.\tVa !", "Run!\tCours\u202f!", "Wow!\tÇa alors\u202f!", "I need you.\tJ'ai besoin de toi."
]
HONGLOUMENG = [
    "第1章 甄士隐梦幻识通灵 贾雨村风尘怀闺秀",
    "\u3000\u3000此开卷第一回也。",
    "\u3000\u3000作者自云：因曾历过一番梦幻之后，故将真事隐去，而借通灵说撰此《石头记》一书也，"
    "故曰“甄士隐”云云。但书中所记何事何人？自己又云：“今风尘碌碌，一事无成，忽念及当日所有之女子，"
    "一一细考较去，觉其行止见识皆出我之上。我堂堂须眉，诚不若彼裙钗，我实愧则有馀，悔又无益，"
    "大无可如何之日也。",
    "\u3000\u3000看官，你道此书从何而起？说来虽近荒唐，细玩颇有趣味。",
]
SHAKESPEARE = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
    "First Citizen:\nYou are all resolved rather to die than to famish?\n"
)


def write(path: Path, text: str, encoding: str = "utf-8", newline: str = "\n") -> Path:
    path.write_bytes(text.replace("\n", newline).encode(encoding))
    return path


def squeeze(line: str) -> str:
    return line.replace(" ", "")


# ------------------------------------------------------------------------------------ formats
def test_couplet_two_files_remove_spaces(tmp_path):
    first = write(tmp_path / "in.txt", "\n".join(COUPLET_IN) + "\n")
    second = write(tmp_path / "out.txt", "\n".join(COUPLET_OUT) + "\n")
    corpus = load_corpus("couplet", [first, second])
    assert corpus.task == "couplet" and corpus.text == "" and corpus.warnings == ()
    assert corpus.pairs[0] == Pair("晚风摇树树还挺", "晨露润花花更红")
    assert [p.source for p in corpus.pairs] == [squeeze(s) for s in COUPLET_IN]
    assert [p.target for p in corpus.pairs] == [squeeze(s) for s in COUPLET_OUT]
    assert corpus.encoding == "utf-8"
    assert corpus.files == (str(first), str(second))


def test_couplet_tsv_and_csv(tmp_path):
    rows = list(zip(COUPLET_IN, COUPLET_OUT))
    tsv = write(tmp_path / "c.tsv", "".join(f"{a}\t{b}\n" for a, b in rows))
    csv_text = '"十年寒窗，苦读","一朝成名，天下"\n' + "".join(f"{a},{b}\n" for a, b in rows)
    csv_file = write(tmp_path / "c.csv", csv_text)
    from_tsv = load_corpus("couplet", [tsv])
    from_csv = load_corpus("couplet", [csv_file])
    assert from_tsv.pairs == tuple(Pair(squeeze(a), squeeze(b)) for a, b in rows)
    assert from_csv.pairs[0] == Pair("十年寒窗，苦读", "一朝成名，天下")  # quoted commas kept
    assert from_csv.pairs[1:] == from_tsv.pairs


def test_couplet_drops_length_mismatch_with_one_warning(tmp_path, caplog):
    first = ["春风", "", "上联七个字很长", "海阔凭鱼跃", "山高"]
    second = ["秋月", "", "下联短", "天高任鸟飞", "水长流"]
    a = write(tmp_path / "a.txt", "\n".join(first) + "\n")
    b = write(tmp_path / "b.txt", "\n".join(second) + "\n")
    with caplog.at_level(logging.WARNING, logger="textgen_core.corpus"):
        corpus = load_corpus("couplet", [a, b])
    # lines without spaces stay as they are
    assert corpus.pairs == (Pair("春风", "秋月"), Pair("海阔凭鱼跃", "天高任鸟飞"))
    assert len(corpus.warnings) == 1
    assert corpus.warnings[0].startswith("dropped 2 couplet pairs whose two lines differ in length")
    assert "line 3" in corpus.warnings[0]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == list(
        corpus.warnings
    )


def test_couplet_removes_every_kind_of_whitespace(tmp_path):
    tsv = write(tmp_path / "c.tsv", "春 风\u3000得\t 秋 月  明 \n")
    assert load_corpus("couplet", [tsv]).pairs == (Pair("春风得", "秋月明"),)


def test_translation_tsv_with_attribution_and_swap(tmp_path):
    tsv = write(tmp_path / "cmn.tsv", "\n".join(CMN_ENG) + "\n")
    corpus = load_corpus("translation", [tsv])
    assert [(p.source, p.target) for p in corpus.pairs] == [
        ("Hi.", "嗨。"), ("Hi.", "你好。"), ("Run.", "你用跑的。"), ("Stop!", "住手！")
    ]
    assert corpus.pairs[0].extra.startswith("CC-BY 2.0 (France) Attribution: tatoeba.org #538123")
    swapped = load_corpus("translation", [tsv], swap=True)
    assert [(p.source, p.target, p.extra) for p in swapped.pairs] == [
        (p.target, p.source, p.extra) for p in corpus.pairs
    ]


def test_translation_two_columns_strip_and_blank_lines(tmp_path):
    text = "\n".join(ENG_FRA[:2]) + "\n\n   \n" + "  " + ENG_FRA[2] + "  \n" + ENG_FRA[3] + "\n\n"
    corpus = load_corpus("translation", [write(tmp_path / "fra.tsv", text)])
    assert corpus.pairs == (
        Pair("Go.", "Va !"), Pair("Run!", "Cours\u202f!"), Pair("Wow!", "Ça alors\u202f!"),
        Pair("I need you.", "J'ai besoin de toi."),
    )  # fmt: skip
    assert corpus.warnings == ()


def test_translation_extra_columns_joined(tmp_path):
    tsv = write(tmp_path / "t.tsv", "a\tb\t c \td\n")
    assert load_corpus("translation", [tsv]).pairs == (Pair("a", "b", "c\td"),)


def test_translation_empty_side_dropped_with_warning(tmp_path):
    tsv = write(tmp_path / "t.tsv", "Hi.\t你好。\nOrphan.\t \n\t\t\nRun.\t跑。\n")
    corpus = load_corpus("translation", [tsv])
    assert corpus.pairs == (Pair("Hi.", "你好。"), Pair("Run.", "跑。"))
    assert len(corpus.warnings) == 1 and corpus.warnings[0].startswith("dropped 1 translation pair")


def test_translation_two_files_and_csv(tmp_path):
    src = write(tmp_path / "en.txt", "Hi.\nRun.\n\nStop!\n")
    tgt = write(tmp_path / "zh.txt", "你好。\n你用跑的。\n\n住手！\n", encoding="gb18030")
    corpus = load_corpus("translation", [src, tgt])
    expected = (Pair("Hi.", "你好。"), Pair("Run.", "你用跑的。"), Pair("Stop!", "住手！"))
    assert corpus.pairs == expected
    assert corpus.encoding == "utf-8"  # the first file's
    csv_file = write(tmp_path / "t.csv", 'source,target\n"He said ""hi""","Il a dit\n« salut »"\n')
    pairs = load_corpus("translation", [csv_file]).pairs
    assert pairs == (Pair("source", "target"), Pair('He said "hi"', "Il a dit « salut »"))


def test_continuation_crlf_and_concatenation(tmp_path):
    novel = write(tmp_path / "hlm.txt", "\n".join(HONGLOUMENG) + "\n", newline="\r\n")
    play = write(tmp_path / "shakespeare.txt", "\n\n" + SHAKESPEARE + "\n\n")
    corpus = load_corpus("continuation", [novel, play])
    assert corpus.pairs == () and corpus.encoding == "utf-8" and corpus.warnings == ()
    assert "\r" not in corpus.text
    assert corpus.text == "\n".join(HONGLOUMENG) + "\n\n" + SHAKESPEARE
    assert "Speak, speak.\n\nFirst Citizen:" in corpus.text  # paragraphs kept
    single = load_corpus("continuation", str(novel))  # a bare path is one file
    assert single.text == "\n".join(HONGLOUMENG) + "\n"


def test_read_text_line_ends(tmp_path):
    for newline in ("\n", "\r\n", "\r"):
        path = write(tmp_path / "t.txt", "一\n二\n\n三", newline=newline)
        assert read_text(path) == ("一\n二\n\n三", "utf-8")


@pytest.mark.skipif(not SHARED.is_dir(), reason="sample corpora not present")
def test_real_sample_files():
    couplets = load_corpus(
        "couplet", [SHARED / "couplets/train.in.txt", SHARED / "couplets/train.out.txt"]
    )
    assert len(couplets.pairs) > 20_000
    assert couplets.pairs[0] == Pair("晚风摇树树还挺", "晨露润花花更红")
    assert all(len(p.source) == len(p.target) and " " not in p.source for p in couplets.pairs)
    novel = load_corpus("continuation", [SHARED / "novels/hongloumeng_ch1-110.txt"])
    assert novel.text.startswith("\n".join(HONGLOUMENG[:2]) + "\n") and "\r" not in novel.text


# ---------------------------------------------------------------------------------- encodings
HLM_TEXT = "\n".join(HONGLOUMENG) + "\n"
BIG5_TEXT = "".join(f"{a}\t{b}\n" for a, b in BIG5_COUPLETS)


@pytest.mark.parametrize(
    ("text", "codec", "expected"),
    [
        (HLM_TEXT, "utf-8", "utf-8"),
        (HLM_TEXT, "utf-8-sig", "utf-8-sig"),
        (HLM_TEXT, "utf-16", "utf-16"),  # little-endian with BOM
        (HLM_TEXT, "utf-16-be-bom", "utf-16"),
        (HLM_TEXT, "gbk", "gb18030"),
        (HLM_TEXT, "gb18030", "gb18030"),
        (BIG5_TEXT, "big5", "big5"),
        (HLM_TEXT, "utf-16-le", "utf-16-le"),  # no BOM
        ("Go.\tVa !\nWow!\tÇa alors !\nSee you.\tÀ bientôt, café crème, élève.\n", "cp1252",
         "cp1252"),
    ],
)
def test_encodings(tmp_path, text, codec, expected):
    def encode(value: str) -> bytes:
        if codec == "utf-16-be-bom":
            return b"\xfe\xff" + value.encode("utf-16-be")
        return value.encode(codec)

    (tmp_path / "f.txt").write_bytes(encode(text))
    assert read_text(tmp_path / "f.txt") == (text, expected)
    (tmp_path / "crlf.txt").write_bytes(encode(text.replace("\n", "\r\n")))
    assert read_text(tmp_path / "crlf.txt") == (text, expected)


@pytest.mark.parametrize("codec", ["gbk", "big5"])
def test_short_cjk_files(tmp_path, codec):
    """Two-line files, where charset detectors alone often answer Korean, Japanese, Thai or Cyrillic."""
    pool = list(BIG5_COUPLETS)
    if codec == "gbk":
        pool += list(zip(map(squeeze, COUPLET_IN), map(squeeze, COUPLET_OUT)))
    rng = random.Random(7)
    for trial in range(12):
        rows = rng.sample(pool, 2)
        first = write(tmp_path / f"in{trial}.txt", "\n".join(a for a, _ in rows) + "\n", codec)
        second = write(tmp_path / f"out{trial}.txt", "\n".join(b for _, b in rows) + "\n", codec)
        corpus = load_corpus("couplet", [first, second])
        assert corpus.pairs == tuple(Pair(a, b) for a, b in rows), corpus.encoding
        assert corpus.encoding == ("big5" if codec == "big5" else "gb18030")
    spaced = write(tmp_path / "spaced.txt", "晚 风 摇 树 树 还 挺\n晨 露 润 花 花 更 红\n", "gbk")
    assert read_text(spaced) == ("晚 风 摇 树 树 还 挺\n晨 露 润 花 花 更 红\n", "gb18030")


# --------------------------------------------------------------------------------- bad input
def _raw(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _bad_files(tmp: Path) -> list[tuple[str, list[Path], str]]:
    """(task, paths, expected fragment): files that are not readable text; paths[0] is named."""
    with zipfile.ZipFile(tmp / "corpus.zip", "w") as archive:
        archive.writestr("train.txt", HLM_TEXT)
    with tarfile.open(tmp / "corpus.tar", "w") as tar:
        tar.add(write(tmp / "inner.txt", HLM_TEXT), arcname="inner.txt")
    payload = HLM_TEXT.encode()
    rng = random.Random(5)  # random bytes 0x81-0xFE decode strictly as GB18030, into rare characters
    lone = b"\x00\xd8a\x00"  # UTF-16-LE: an unpaired high surrogate, then "a"
    cases = [
        ("couplet", [tmp / "missing.txt"], "not found"),
        ("continuation", [tmp], "directory"),
        ("continuation", [_raw(tmp / "nul.txt", b"text\nmore\x00\x01\x02binary")],
         "line 2: contains NUL"),
        ("continuation", [_raw(tmp / "ctl.txt", bytes(range(1, 9)) * 200)], "control characters"),
        ("continuation", [_raw(tmp / "bad16.txt", b"\xff\xfe" + "好\n".encode("utf-16-le") + lone)],
         "line 2: bytes that are not valid utf-16"),
        ("continuation", [_raw(tmp / "badutf8.txt", payload + b"\xff\xfe\xfa\n")],
         "line 5: invalid UTF-8"),
        ("continuation", [tmp / "corpus.zip"], "is a zip archive; extract it first"),
        ("continuation", [_raw(tmp / "novel.epub", (tmp / "corpus.zip").read_bytes())],
         "is a zip archive (a .epub document), not plain text"),
        ("continuation", [_raw(tmp / "c.gz", gzip.compress(payload))], "is a gzip archive"),
        ("continuation", [_raw(tmp / "c.bz2", bz2.compress(payload))], "is a bz2 archive"),
        ("continuation", [_raw(tmp / "c.xz", lzma.compress(payload))], "is an xz archive"),
        ("continuation", [_raw(tmp / "c.7z", b"7z\xbc\xaf\x27\x1c\x00\x04" + payload)],
         "is a 7z archive"),
        ("continuation", [_raw(tmp / "c.rar", b"Rar!\x1a\x07\x01\x00" + payload)],
         "is a rar archive"),
        ("continuation", [tmp / "corpus.tar"], "is a tar archive"),
        ("continuation", [_raw(tmp / "empty.txt", b"")], "empty"),
        ("translation", [_raw(tmp / "blank.tsv", b" \r\n\t\n\n")], "empty"),
        ("couplet", [_raw(tmp / "bom.txt", b"\xff\xfe")], "empty"),
        ("continuation", [_raw(tmp / "garbled.txt", bytes(rng.randint(0x81, 0xFE) for _ in range(360)))],
         "reads as mostly rare or unassigned characters; re-save the file as UTF-8"),
    ]
    if os.name == "posix":  # sparse file (instant) and a FIFO (reading it would block)
        with open(tmp / "huge.txt", "wb") as fh:
            fh.truncate(2 * 1024**3 + 10)
        cases.append(("continuation", [tmp / "huge.txt"], "2.0 GiB, too large to be a corpus"))
        os.mkfifo(tmp / "fifo.txt")
        cases.append(("continuation", [tmp / "fifo.txt"], "not a regular file"))
    return cases


def _bad_corpora(tmp: Path) -> list[tuple[str, list[Path], str]]:
    """(task, paths, expected fragment): readable text that is not a usable corpus."""
    good = write(tmp / "good.txt", "春风\n秋月\n")
    return [
        ("translation", [write(tmp / "notab.tsv", "Hi.\t你好。\n\nRun. 跑。\n")],
         "line 3 has no tab"),
        ("couplet", [write(tmp / "onecol.csv", "春风,秋月\n夏雨\n")], "line 2 has one column"),
        ("translation", [write(tmp / "huge.csv", 'a,"' + ("x" * 15_000 + "\n") * 10 + '"\n')],
         "malformed CSV"),
        ("couplet", [write(tmp / "three.txt", "一\n二\n三\n"), good], "has 3 lines but"),
        ("couplet", [write(tmp / "long.tsv", "春\t秋\n" + "长" * 20_001 + "\t短\n"), good],
         "line 2 is 20,003 characters long"),
        ("translation", [write(tmp / "long2.tsv", "a\t" + "b" * 20_001 + "\n")], "line 1 is"),
        ("continuation", [write(tmp / "long.txt", "开头\n" + "字" * 1_000_001)],
         "line 2 is 1,000,001 characters"),
        ("poem", [good], "unknown task 'poem'"),
        ("couplet", [good, good, good], "not 3 files"),
        ("translation", [good, good, good], "not 3 files"),
        ("couplet", [write(tmp / "uneven.tsv", "一二\t三\n四\t五六\n")], "no usable couplet pairs"),
        ("translation", [write(tmp / "half.tsv", "Hi.\t\n")], "no usable translation pairs"),
    ]


def test_bad_inputs_raise_one_line_corpus_errors(tmp_path):
    for task, paths, fragment in _bad_files(tmp_path) + _bad_corpora(tmp_path):
        with pytest.raises(CorpusError) as info:
            load_corpus(task, paths)
        message = str(info.value)
        assert "\n" not in message, message
        assert message.startswith(str(paths[0])), message
        assert fragment in message, (fragment, message)


def test_too_large_file(tmp_path, monkeypatch):
    monkeypatch.setattr("textgen_core.encoding.MAX_FILE_BYTES", 1000)
    path = write(tmp_path / "big.txt", "字" * 400)
    with pytest.raises(CorpusError, match=r"big\.txt: file is .* too large to be a corpus"):
        load_corpus("continuation", [path])


def test_line_counts_named_and_no_files(tmp_path):
    a = write(tmp_path / "a.txt", "一\n二\n三\n")
    b = write(tmp_path / "b.txt", "四\n五\n\n\n")  # trailing blank lines do not count
    with pytest.raises(CorpusError, match=r"a\.txt has 3 lines but .*b\.txt has 2"):
        load_corpus("translation", [a, b])
    with pytest.raises(CorpusError, match="no corpus file"):
        load_corpus("couplet", [])
    assert set(TASKS) == {"couplet", "translation", "continuation"}


# ------------------------------------------------------------------------------------ splits
PAIRS = [Pair(f"source {i}", f"target {i}") for i in range(200)]


def test_split_pairs_reproducible_disjoint_covering():
    parts = split_pairs(PAIRS, valid_fraction=0.1, test_fraction=0.05, seed=3)
    assert [len(parts[k]) for k in ("train", "valid", "test")] == [170, 20, 10]
    ids = [PAIRS.index(p) for k in ("train", "valid", "test") for p in parts[k]]
    assert sorted(ids) == list(range(200))  # disjoint and covering
    assert all(parts[k] == sorted(parts[k], key=PAIRS.index) for k in parts)  # corpus order kept
    assert split_pairs(PAIRS, valid_fraction=0.1, test_fraction=0.05, seed=3) == parts
    assert split_pairs(PAIRS, valid_fraction=0.1, test_fraction=0.05, seed=4) != parts


def test_split_pairs_small_and_zero():
    three = PAIRS[:3]
    assert {k: len(v) for k, v in split_pairs(three).items()} == {"train": 1, "valid": 1, "test": 1}
    parts = split_pairs(PAIRS[:50], valid_fraction=0, test_fraction=0)
    assert parts == {"train": PAIRS[:50], "valid": [], "test": []}
    assert split_pairs(PAIRS[:1])["train"] == PAIRS[:1]
    assert split_pairs([]) == {"train": [], "valid": [], "test": []}
    for bad in ({"valid_fraction": 1.0}, {"test_fraction": -0.1},
                {"valid_fraction": 0.6, "test_fraction": 0.5}, {"valid_fraction": float("nan")}):
        with pytest.raises(ConfigError):
            split_pairs(PAIRS, **bad)


NUMBERED = "".join(f"line {i:04d} {'x' * (i % 17)}\n" + ("\n" if i % 9 == 0 else "")
                   for i in range(1000))


def test_split_text_chunks_reproducible_disjoint_covering():
    parts = split_text(NUMBERED, valid_fraction=0.1, test_fraction=0.1, seed=5, n_chunks=50)
    assert split_text(NUMBERED, valid_fraction=0.1, test_fraction=0.1, seed=5, n_chunks=50) == parts
    assert split_text(NUMBERED, valid_fraction=0.1, test_fraction=0.1, seed=6, n_chunks=50) != parts
    originals = NUMBERED.split("\n")
    seen = []
    for name in ("train", "valid", "test"):
        lines = parts[name].split("\n")
        assert set(lines) <= set(originals)  # cut only at line boundaries
        numbered = [int(line.split()[1]) for line in lines if line]
        assert numbered == sorted(numbered)  # order kept inside the split
        seen += numbered
    assert sorted(seen) == list(range(1000))  # disjoint and covering
    assert 0.05 < len(parts["valid"]) / len(NUMBERED) < 0.15
    # chunks are joined with "\n": three splits drop exactly two joints of the original text
    assert sum(len(p) for p in parts.values()) == len(NUMBERED) - 2


def test_split_text_edges():
    assert split_text(NUMBERED, valid_fraction=0.0)["train"] == NUMBERED
    assert split_text(SHAKESPEARE, n_chunks=1) == {"train": SHAKESPEARE, "valid": "", "test": ""}
    one_line = "今天天气很好。" * 2000  # no line breaks at all: cut after sentence ends
    parts = split_text(one_line, valid_fraction=0.2, n_chunks=20)
    assert parts["valid"] and parts["train"]
    pieces = (parts["train"] + "\n" + parts["valid"]).split("\n")
    assert all(piece.endswith("。") for piece in pieces)
    assert sum(map(len, pieces)) == len(one_line)
    with pytest.raises(ConfigError):
        split_text(NUMBERED, n_chunks=0)


def test_corpus_is_frozen():
    corpus = Corpus("couplet", (Pair("a", "b"),), "", "utf-8", (), ("x",))
    with pytest.raises(AttributeError):
        corpus.task = "translation"  # type: ignore[misc]
