"""Subword tokenizers: SentencePiece (Kudo & Richardson, 2018) behind one small class.

Three kinds are offered, all trained in memory by SentencePiece:

* ``"char"``: one token per character (couplets, classical Chinese), vocabulary = the distinct
  characters seen, capped at ``vocab_size``;
* ``"bpe"``: byte-pair encoding merges (Sennrich et al., 2016);
* ``"unigram"``: the unigram language-model segmentation (Kudo, 2018).

Choices that matter to callers:

* Special ids are fixed: ``<pad>`` 0, ``<unk>`` 1, ``<s>`` (bos) 2, ``</s>`` (eos) 3. ``"\\n"`` is a
  user-defined symbol (always one token), so paragraph breaks survive novel continuation.
* No Unicode normalization (``normalization_rule_name="identity"``, extra spaces kept): for every
  character inside the vocabulary ``decode(encode(x)) == x``, Chinese full-width punctuation and
  repeated spaces included. Characters outside the vocabulary become ``<unk>`` (decoded as "⁇").
* Spaces are meaningful: SentencePiece writes them as "▁". A dummy "▁" is put in front of each text
  only when the training corpus is mostly spaced (English); for unspaced scripts (Chinese) it is
  left out, so a couplet of n characters is exactly n tokens with the char kind. The choice is
  stored in the model file.
* ``character_coverage`` drops the rarest characters (mapped to ``<unk>``), except printable
  ASCII seen in the corpus, which is always kept: with 0.9995, English text would otherwise lose
  digits and brackets.
* Big corpora are reservoir-sampled down to ``input_sentence_size`` lines before training, and lines
  longer than 1000 characters are cut into chunks (SentencePiece silently skips long lines).
"""

from __future__ import annotations

import io
import logging
import os
import random
import re
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import sentencepiece as spm

from textgen_core.errors import ConfigError, TextGenError

logger = logging.getLogger(__name__)

KINDS = ("char", "bpe", "unigram")
_MODEL_TYPE_NAMES = {1: "unigram", 2: "bpe", 3: "word", 4: "char"}  # sentencepiece ModelType enum
_MAX_LINE_CHARS = 1000  # SentencePiece skips sentences longer than 4192 bytes; chunk before that
_SPACED_LINES_FOR_DUMMY_PREFIX = 0.1  # share of lines with a space above which "▁" is prefixed
_NEWLINE_SYMBOL = "\n"
_SPACE_PIECE = "\u2581"  # SentencePiece writes a space as "▁"
_MAX_RETRIES = 8


@dataclass(frozen=True)
class TokenizerConfig:
    """How to train a tokenizer.

    ``vocab_size`` is exact for bpe/unigram (lowered with a warning when the corpus cannot fill
    it) and an upper bound for char. ``shared`` means one vocabulary for source and target; the
    tokenizer itself does not use it.
    """

    kind: str = "char"
    vocab_size: int = 8000
    character_coverage: float = 0.9995
    input_sentence_size: int = 1_000_000
    shared: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(
                f"tokenizer kind must be one of {', '.join(KINDS)}, got {self.kind!r}"
            )
        if not _is_int(self.vocab_size) or not 16 <= self.vocab_size <= 1_000_000:
            raise ConfigError(
                f"tokenizer vocab_size must be an integer in [16, 1000000], got {self.vocab_size!r}"
            )
        cov = self.character_coverage
        if isinstance(cov, bool) or not isinstance(cov, (int, float)) or not 0.98 <= cov <= 1.0:
            raise ConfigError(
                f"tokenizer character_coverage must be a number in [0.98, 1.0], got {cov!r}"
            )
        if not _is_int(self.input_sentence_size) or self.input_sentence_size < 1:
            raise ConfigError(
                "tokenizer input_sentence_size must be a positive integer, "
                f"got {self.input_sentence_size!r}"
            )
        if not isinstance(self.shared, bool):
            raise ConfigError(f"tokenizer shared must be true or false, got {self.shared!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Tokenizer:
    """A trained SentencePiece model with fixed special ids (see the module docstring)."""

    PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3

    def __init__(self, model_proto: bytes, *, source: str = "tokenizer model") -> None:
        """Wrap a serialized SentencePiece model; prefer :meth:`train`, :meth:`load`,
        :meth:`from_bytes`. ``source`` names the model in error messages."""
        try:
            sp = spm.SentencePieceProcessor(model_proto=bytes(model_proto))
        except (RuntimeError, TypeError, ValueError):
            raise TextGenError(f"{source} is damaged or not a SentencePiece model") from None
        if sp.get_piece_size() == 0:
            raise TextGenError(f"{source} is empty or damaged (no vocabulary)")
        specials = (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id())
        if specials != (self.PAD_ID, self.UNK_ID, self.BOS_ID, self.EOS_ID):
            raise TextGenError(
                f"{source} is not a TextGen tokenizer (special ids are {specials}, "
                f"expected pad/unk/bos/eos = 0/1/2/3)"
            )
        self._sp = sp
        self._proto = bytes(model_proto)
        self.kind: str = _model_type(self._proto)

    # ----------------------------------------------------------------------------- training
    @classmethod
    def train(
        cls, lines: Iterable[str], config: TokenizerConfig, model_path: str | os.PathLike[str]
    ) -> Tokenizer:
        """Train on ``lines`` (each one sentence/paragraph) and write ``model_path`` atomically.

        Raises TextGenError for an empty corpus, ConfigError when ``vocab_size`` is smaller than
        the characters the corpus needs.
        """
        sample = _sample_lines(lines, config.input_sentence_size)
        if not sample:
            raise TextGenError("cannot train a tokenizer: the corpus has no non-empty lines")
        spaced = sum(" " in line for line in sample) / len(sample)
        dummy_prefix = spaced >= _SPACED_LINES_FOR_DUMMY_PREFIX
        size = config.vocab_size
        for _ in range(_MAX_RETRIES):
            try:
                proto = _train_proto(sample, config, size, dummy_prefix)
                break
            except RuntimeError as exc:
                size = _smaller_vocab_size(str(exc), size, config)
        else:
            raise TextGenError(
                f"cannot train a {config.kind} tokenizer: vocab_size {config.vocab_size} is too "
                "high for this corpus; try a smaller one"
            )
        if size != config.vocab_size:
            logger.warning(
                "tokenizer vocab_size %d is too high for this corpus; used %d instead",
                config.vocab_size,
                size,
            )
        tok = cls(proto, source="the trained tokenizer")
        _write_atomic(Path(model_path), proto)
        logger.info(
            "trained %s tokenizer with %d tokens -> %s", config.kind, tok.vocab_size, model_path
        )
        return tok

    # ------------------------------------------------------------------------ serialization
    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Tokenizer:
        """Read a model file; a missing or damaged file raises TextGenError naming it."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise TextGenError(f"cannot read tokenizer model {path}: {reason}") from None
        return cls(data, source=f"tokenizer model {path}")

    @classmethod
    def from_bytes(cls, data: bytes) -> Tokenizer:
        """Rebuild from :meth:`to_bytes` output (as stored inside checkpoints)."""
        return cls(data, source="the stored tokenizer")

    def to_bytes(self) -> bytes:
        """The serialized SentencePiece model proto."""
        return self._proto

    # ----------------------------------------------------------------------------- use
    def encode(self, text: str, *, per_char: bool = False) -> list[int]:
        """Token ids of ``text``; no bos/eos added.

        ``per_char`` (char tokenizers; other kinds ignore it): exactly one id per character, each
        character outside the vocabulary its own ``<unk>``. Plain SentencePiece merges a run of
        unknown characters into one ``<unk>`` piece, which would shorten a couplet's first line
        (龘靐春风 -> 3 ids).
        """
        if not per_char or self.kind != "char":
            return list(self._sp.encode(text, out_type=int))
        piece_to_id = self._sp.piece_to_id
        return [piece_to_id(_SPACE_PIECE if ch == " " else ch) for ch in text]

    def has_char(self, ch: str) -> bool:
        """Whether the single character ``ch`` is a piece of the vocabulary (not ``<unk>``)."""
        return self._sp.piece_to_id(_SPACE_PIECE if ch == " " else ch) != self.UNK_ID

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``; pad/bos/eos are skipped, ``<unk>`` reads as "⁇"."""
        skip = (self.PAD_ID, self.BOS_ID, self.EOS_ID)
        return self._sp.decode([i for i in self._checked(ids) if i not in skip])

    def pieces(self, ids: Sequence[int]) -> list[str]:
        """One readable label per id, for attention heatmaps.

        Labels are SentencePiece pieces with "▁" kept (it marks a space, and a bare space would
        be invisible on an axis); specials read ``<pad>``, ``<unk>``, ``<s>``, ``</s>``, and the
        newline token reads "↵".
        """
        labels = []
        for i in self._checked(ids):
            piece = self._sp.id_to_piece(i)
            labels.append("↵" if piece == _NEWLINE_SYMBOL else piece)
        return labels

    def _checked(self, ids: Sequence[int]) -> list[int]:
        out = [int(i) for i in ids]
        size = self.vocab_size
        for i in out:
            if not 0 <= i < size:
                raise TextGenError(
                    f"token id {i} is outside the tokenizer's vocabulary of {size} tokens "
                    "(model and tokenizer do not match)"
                )
        return out

    @property
    def vocab_size(self) -> int:
        return int(self._sp.get_piece_size())

    @property
    def pad_id(self) -> int:
        return self.PAD_ID

    @property
    def unk_id(self) -> int:
        return self.UNK_ID

    @property
    def bos_id(self) -> int:
        return self.BOS_ID

    @property
    def eos_id(self) -> int:
        return self.EOS_ID

    @property
    def newline_id(self) -> int:
        """Id of the ``"\\n"`` token: paragraph breaks, and the separator of a prefix language
        model's ``source <sep> target`` rows. Every tokenizer trained here has it."""
        token = int(self._sp.piece_to_id(_NEWLINE_SYMBOL))
        if token == self.UNK_ID:
            raise TextGenError("this tokenizer has no newline token; re-create the project to retrain it")
        return token

    def __repr__(self) -> str:
        return f"Tokenizer(kind={self.kind!r}, vocab_size={self.vocab_size})"


# --------------------------------------------------------------------------------- helpers
def _split_lines(lines: Iterable[str]) -> Iterator[str]:
    """Non-empty lines without line endings, long ones cut into chunks."""
    for raw in lines:
        for line in str(raw).splitlines():
            if not line.strip():
                continue
            for start in range(0, len(line), _MAX_LINE_CHARS):
                yield line[start : start + _MAX_LINE_CHARS]


def _sample_lines(lines: Iterable[str], k: int) -> list[str]:
    """Reservoir sample (Vitter's algorithm R) of at most ``k`` lines, in a fixed-seed order."""
    rng = random.Random(0)
    sample: list[str] = []
    for n, line in enumerate(_split_lines(lines)):
        if n < k:
            sample.append(line)
        else:
            j = rng.randint(0, n)
            if j < k:
                sample[j] = line
    return sample


def _ascii_seen(sample: list[str]) -> str:
    """Printable ASCII characters of the sample: kept whatever their frequency, so digits and
    brackets never fall outside ``character_coverage`` in English text."""
    seen: set[str] = set()
    for line in sample:
        seen.update(line)
    return "".join(sorted(c for c in seen if "!" <= c <= "~"))


def _train_proto(
    sample: list[str], config: TokenizerConfig, vocab_size: int, dummy_prefix: bool
) -> bytes:
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sample),
        model_writer=buf,
        model_type=config.kind,
        vocab_size=vocab_size,
        hard_vocab_limit=config.kind != "char",
        character_coverage=config.character_coverage,
        input_sentence_size=config.input_sentence_size,
        shuffle_input_sentence=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=dummy_prefix,
        user_defined_symbols=[_NEWLINE_SYMBOL],
        required_chars=_ascii_seen(sample),
        pad_id=Tokenizer.PAD_ID,
        unk_id=Tokenizer.UNK_ID,
        bos_id=Tokenizer.BOS_ID,
        eos_id=Tokenizer.EOS_ID,
        num_threads=max(1, min(2, os.cpu_count() or 1)),
        minloglevel=2,
    )
    return buf.getvalue()


def _smaller_vocab_size(message: str, size: int, config: TokenizerConfig) -> int:
    """The size to retry with after SentencePiece refused ``size``; raises when retrying is moot."""
    if "smaller than required_chars" in message:
        need = re.search(r"(\d+) vs (\d+)", message)
        detail = f" ({need.group(2)} needed)" if need else ""
        raise ConfigError(
            f"tokenizer vocab_size {config.vocab_size} is smaller than the corpus's characters"
            f"{detail}; raise vocab_size or use the char kind"
        )
    if "too high" not in message:
        first = message.strip().splitlines()[0] if message.strip() else "unknown error"
        raise TextGenError(f"sentencepiece could not train the tokenizer: {first}")
    accepted = re.search(r"<=\s*(\d+)", message)
    new = int(accepted.group(1)) if accepted else int(size * 0.75)
    new = min(new, size - 1)
    if new < 16:
        raise TextGenError(
            f"cannot train a {config.kind} tokenizer: the corpus is too small for a vocabulary"
        )
    return new


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder and os.replace (never a half-written file).

    The temporary file is created with mode 0o666 so the user's umask applies as for any file.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise TextGenError(f"cannot write tokenizer model {path}: {exc.strerror or exc}") from None


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of a serialized protobuf message."""
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
            yield number, wire, value
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            yield number, wire, data[pos : pos + length]
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _model_type(proto: bytes) -> str:
    """ModelProto.trainer_spec (field 2).model_type (field 3), read without protobuf."""
    try:
        for number, wire, value in _fields(proto):
            if number == 2 and wire == 2 and isinstance(value, bytes):
                for sub_number, sub_wire, sub_value in _fields(value):
                    if sub_number == 3 and sub_wire == 0 and isinstance(sub_value, int):
                        return _MODEL_TYPE_NAMES.get(sub_value, "unigram")
    except ValueError:
        pass
    return "unigram"  # the proto default
