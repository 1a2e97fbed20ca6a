"""Streamed text built one token at a time equals ``tokenizer.decode`` of the whole output: the
project's character tokenizer, and a SentencePiece BPE with a dummy "▁" prefix and byte fallback."""

from __future__ import annotations

import io
import random

import pytest
import sentencepiece as spm

from app.stream_text import StreamDecoder
from textgen_core.tokenizer import Tokenizer

LINES = ["Hello world, this is a test.", "我们明天去公园吧。", "The quick brown fox jumps over the dog.",
         "春风得意花铺路", "  two  spaces  ", "café naïve"] * 40
TEXTS = ["Hello 龘 world 春天\n好", " leading space", "é ü 🙂 end", "a  b", "\n\nnew paragraph"]


@pytest.fixture(scope="module")
def byte_fallback() -> Tokenizer:
    """A BPE that spells characters it lacks as UTF-8 bytes (<0xE9> pieces) and puts "▁" first."""
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(LINES), model_writer=buf, model_type="bpe", vocab_size=330,
        byte_fallback=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=True, user_defined_symbols=["\n"], pad_id=0, unk_id=1, bos_id=2, eos_id=3,
        character_coverage=0.98, minloglevel=2,
    )
    return Tokenizer(buf.getvalue())


def _streamed(tokenizer: Tokenizer, ids: list[int]) -> tuple[str, list[str]]:
    decoder = StreamDecoder(tokenizer)
    pieces = [decoder.push(i) for i in ids]
    pieces.append(decoder.finish())
    assert decoder.text == "".join(pieces)
    return decoder.text, pieces


@pytest.mark.parametrize("text", TEXTS)
def test_text_streamed_with_byte_pieces_and_word_boundaries_equals_decode(byte_fallback, text):
    ids = byte_fallback.encode(text)
    assert any(p.startswith("<0x") for p in byte_fallback.pieces(ids)) or "龘" not in text
    streamed, _ = _streamed(byte_fallback, ids)
    assert streamed == byte_fallback.decode(ids) == text
    assert "\ufffd" not in streamed                         # a character's bytes are held, not broken


def test_random_token_sequences_stream_as_they_decode(byte_fallback):
    rng = random.Random(0)
    size = byte_fallback.vocab_size
    specials = [0, 1, 2, 3]                                  # pad, unk, bos, eos
    byte_ids = [i for i, p in enumerate(byte_fallback.pieces(range(size))) if p.startswith("<0x")]
    for _ in range(2000):
        ids = [rng.choice([rng.randrange(size), rng.choice(byte_ids), rng.choice(specials)])
               for _ in range(rng.randint(1, 10))]
        assert _streamed(byte_fallback, ids)[0] == byte_fallback.decode(ids), byte_fallback.pieces(ids)


def test_a_character_tokenizer_streams_one_character_per_token(couplet_generator):
    tok = couplet_generator.tgt_tok
    ids = tok.encode("春风得意，花铺路", per_char=True)
    streamed, pieces = _streamed(tok, [tok.bos_id, *ids, tok.eos_id])
    assert streamed == tok.decode(ids) == "春风得意，花铺路"
    assert pieces[1:-2] == list("春风得意，花铺路")
    unknown = [*ids[:2], tok.unk_id, *ids[2:]]
    assert _streamed(tok, unknown)[0] == tok.decode(unknown)      # "<unk>" reads as decode writes it
