"""Tokenizer: real sentencepiece training on slices of the sample corpora."""

from __future__ import annotations

import logging
import re
from itertools import islice
from pathlib import Path

import pytest

from textgen_core.errors import ConfigError, TextGenError
from textgen_core.tokenizer import Tokenizer, TokenizerConfig

DATA = Path("/work/shared/data")
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="sample corpora not available")
pytestmark = needs_data


def _couplets(n: int) -> list[str]:
    with open(DATA / "couplets/train.in.txt", encoding="utf-8") as fh:
        return ["".join(line.split()) for line in islice(fh, n)]


def _translation(n: int) -> tuple[list[str], list[str]]:
    with open(DATA / "translation/cmn-eng.tsv", encoding="utf-8") as fh:
        rows = [line.rstrip("\n").split("\t") for line in islice(fh, n)]
    return [r[0] for r in rows], [r[1] for r in rows]


@pytest.fixture(scope="module")
def couplet_tok(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    path = tmp_path_factory.mktemp("tok") / "couplet.model"
    return Tokenizer.train(_couplets(2000), TokenizerConfig(kind="char"), path)


@pytest.fixture(scope="module")
def english_tok(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    en, _ = _translation(4000)
    path = tmp_path_factory.mktemp("tok") / "en.model"
    config = TokenizerConfig(kind="bpe", vocab_size=1000, character_coverage=1.0)
    return Tokenizer.train(en, config, path)


def test_char_couplets_round_trip_one_token_per_character(couplet_tok: Tokenizer) -> None:
    assert couplet_tok.kind == "char"
    lines = _couplets(2000)
    with_unk = 0
    for line in lines[:300]:
        ids = couplet_tok.encode(line)
        # no dummy "▁" for an unspaced corpus: n characters are exactly n tokens
        assert len(ids) == len(line)
        if Tokenizer.UNK_ID in ids:  # a character outside the 0.9995 coverage
            with_unk += 1
            assert couplet_tok.decode(ids).count("⁇") == ids.count(Tokenizer.UNK_ID)
        else:
            assert couplet_tok.decode(ids) == line
    assert with_unk < 15
    distinct = len(set("".join(lines)))
    # char vocab = distinct characters seen (within coverage) + specials, not the 8000 bound
    assert distinct * 0.9 < couplet_tok.vocab_size <= distinct + 8


def test_char_vocab_size_is_an_upper_bound(tmp_path: Path) -> None:
    tok = Tokenizer.train(_couplets(2000), TokenizerConfig(vocab_size=100), tmp_path / "m.model")
    assert tok.vocab_size == 100


def test_chinese_full_width_punctuation_survives(tmp_path: Path) -> None:
    text = "他说：「你好，世界！」真的吗？是的；好。　全角空格（括号）"
    lines = [*_couplets(500), text, "一二三，四五六。"]
    tok = Tokenizer.train(lines, TokenizerConfig(character_coverage=1.0), tmp_path / "m.model")
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    pieces = tok.pieces(ids)
    # no NFKC: full-width punctuation is kept, not folded to ASCII
    for mark in "：「，！」？；（）　":
        assert mark in pieces
    assert ":" not in pieces and "," not in pieces


def test_bpe_english_round_trip_keeps_spaces(english_tok: Tokenizer) -> None:
    assert english_tok.kind == "bpe"
    en, _ = _translation(4000)
    for line in en[-300:]:
        assert english_tok.decode(english_tok.encode(line)) == line
    text = "I don't  think so,  Tom.  "
    ids = english_tok.encode(text)
    assert english_tok.decode(ids) == text  # repeated and trailing spaces are kept
    assert len(ids) <= len(text) / 2  # merges happened
    assert english_tok.pieces(english_tok.encode("Tom is here."))[0].startswith("▁")


def test_mixed_english_chinese_shared_vocabulary(tmp_path: Path) -> None:
    en, zh = _translation(3000)
    config = TokenizerConfig(kind="bpe", vocab_size=2500, character_coverage=1.0)
    tok = Tokenizer.train(en + zh, config, tmp_path / "m")
    for line in en[:100] + zh[:100]:
        assert tok.decode(tok.encode(line)) == line
    mixed = zh[10] + " " + en[10]
    assert tok.decode(tok.encode(mixed)) == mixed


def test_unigram_trains_and_round_trips(tmp_path: Path) -> None:
    en, _ = _translation(3000)
    tok = Tokenizer.train(en, TokenizerConfig(kind="unigram", vocab_size=600), tmp_path / "u")
    assert tok.kind == "unigram"
    assert tok.vocab_size == 600
    for line in en[:100]:
        assert tok.decode(tok.encode(line)) == line


def test_rare_ascii_is_kept_despite_character_coverage(tmp_path: Path) -> None:
    en, _ = _translation(3000)
    lines = [*en, "Room 237 (see page 5) & {more}"]
    tok = Tokenizer.train(lines, TokenizerConfig(kind="bpe", vocab_size=800), tmp_path / "m")
    assert tok.unk_id not in tok.encode("Room 237 (see page 5) & {more}")
    assert tok.unk_id in tok.encode("Ω")  # other rare characters still fall outside coverage


def test_newline_is_one_token(couplet_tok: Tokenizer) -> None:
    text = "晚风摇树\n愿景天成"
    ids = couplet_tok.encode(text)
    assert couplet_tok.decode(ids) == text
    assert couplet_tok.pieces(ids).count("↵") == 1
    assert len(ids) == len(text)


@pytest.mark.parametrize("kind", ["char", "bpe", "unigram"])
def test_special_ids_are_fixed(tmp_path: Path, kind: str) -> None:
    en, _ = _translation(2000)
    tok = Tokenizer.train(en, TokenizerConfig(kind=kind, vocab_size=300), tmp_path / "m")
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (0, 1, 2, 3)
    assert tok.pieces([0, 1, 2, 3]) == ["<pad>", "<unk>", "<s>", "</s>"]
    text = en[5]
    ids = tok.encode(text)
    assert not {0, 2, 3} & set(ids)  # encode adds no specials
    assert tok.decode([tok.bos_id, *ids, tok.eos_id, tok.pad_id, tok.pad_id]) == text
    assert tok.unk_id in tok.encode("鬱")


def test_decode_rejects_ids_outside_the_vocabulary(couplet_tok: Tokenizer) -> None:
    with pytest.raises(TextGenError, match="outside the tokenizer's vocabulary"):
        couplet_tok.decode([5, couplet_tok.vocab_size])


def test_bytes_round_trip_and_file_match(couplet_tok: Tokenizer, tmp_path: Path) -> None:
    data = couplet_tok.to_bytes()
    again = Tokenizer.from_bytes(data)
    assert again.to_bytes() == data
    assert again.kind == "char" and again.vocab_size == couplet_tok.vocab_size
    line = _couplets(3)[2]
    assert again.encode(line) == couplet_tok.encode(line)
    path = tmp_path / "sub" / "dir" / "t.model"
    trained = Tokenizer.train(_couplets(300), TokenizerConfig(), path)
    assert path.read_bytes() == trained.to_bytes() == Tokenizer.load(path).to_bytes()
    assert [p.name for p in path.parent.iterdir()] == ["t.model"]  # no temp file left


def test_training_replaces_an_existing_model(tmp_path: Path) -> None:
    path = tmp_path / "t.model"
    path.write_bytes(b"old")
    tok = Tokenizer.train(_couplets(300), TokenizerConfig(), path)
    assert path.read_bytes() == tok.to_bytes()


@pytest.mark.parametrize("kind", ["unigram", "bpe"])
def test_vocab_too_high_falls_back_with_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    en, _ = _translation(300)
    with caplog.at_level(logging.WARNING, logger="textgen_core.tokenizer"):
        tok = Tokenizer.train(en, TokenizerConfig(kind=kind, vocab_size=8000), tmp_path / "m")
    assert tok.vocab_size < 8000
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 1
    assert f"used {tok.vocab_size} instead" in messages[0]
    assert tok.decode(tok.encode(en[0])) == en[0]


def test_vocab_smaller_than_alphabet_is_a_config_error(tmp_path: Path) -> None:
    _, zh = _translation(2000)
    with pytest.raises(ConfigError, match="vocab_size 100 is smaller"):
        Tokenizer.train(zh, TokenizerConfig(kind="bpe", vocab_size=100), tmp_path / "m")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    "content", [b"", b"not a model at all\x00\x01\x02", None], ids=["empty", "garbage", "cut"]
)
def test_corrupt_model_file_is_a_one_line_error(
    tmp_path: Path, couplet_tok: Tokenizer, content: bytes | None
) -> None:
    path = tmp_path / "broken.model"
    path.write_bytes(couplet_tok.to_bytes()[:50] if content is None else content)
    with pytest.raises(TextGenError) as info:
        Tokenizer.load(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message


def test_missing_model_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.model"
    with pytest.raises(TextGenError, match=re.escape(str(path))):
        Tokenizer.load(path)


def test_corrupt_bytes_from_a_checkpoint() -> None:
    with pytest.raises(TextGenError, match="stored tokenizer"):
        Tokenizer.from_bytes(b"\x12\x34garbage")


@pytest.mark.parametrize("lines", [[], ["", "   ", "\n"]], ids=["empty", "blank"])
def test_empty_corpus_is_an_error(tmp_path: Path, lines: list[str]) -> None:
    with pytest.raises(TextGenError, match="no non-empty lines"):
        Tokenizer.train(iter(lines), TokenizerConfig(), tmp_path / "m")


def test_big_input_is_sampled(tmp_path: Path) -> None:
    lines = _couplets(6000)
    full = Tokenizer.train(lines, TokenizerConfig(character_coverage=1.0), tmp_path / "a")
    small = TokenizerConfig(character_coverage=1.0, input_sentence_size=300)
    sampled = Tokenizer.train(iter(lines), small, tmp_path / "b")
    again = Tokenizer.train(iter(lines), small, tmp_path / "c")
    # only ~300 lines were seen: far fewer distinct characters, and the sample is deterministic
    assert sampled.vocab_size < full.vocab_size * 0.6
    assert sampled.to_bytes() == again.to_bytes()


def test_long_lines_are_not_silently_skipped(tmp_path: Path) -> None:
    # sentencepiece drops sentences over 4192 bytes; one 3000-character line must still train
    text = "".join(_couplets(500))[:3000]
    tok = Tokenizer.train([text], TokenizerConfig(character_coverage=1.0), tmp_path / "m")
    assert tok.decode(tok.encode(text)) == text
    assert Tokenizer.UNK_ID not in tok.encode(text)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kind", "word"),
        ("vocab_size", 0),
        ("vocab_size", 8000.0),
        ("character_coverage", 0.5),
        ("input_sentence_size", 0),
        ("shared", "yes"),
    ],
)
def test_config_validation_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        TokenizerConfig(**{field: value})  # type: ignore[arg-type]
