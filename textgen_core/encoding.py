"""Reading text files whose encoding nobody wrote down.

Corpora come as UTF-8 (with or without a BOM), UTF-16 (Windows "Unicode"), or a legacy code page
(GBK/GB18030 from mainland tools, Big5 from Taiwan and Hong Kong, Windows-1252 for Western text),
with LF, CRLF or lone-CR line ends. :func:`read_text` decodes such a file in this order:

1. refuse what is not a text file: missing, a directory, not a regular file, over 2 GiB, an archive
   (by magic bytes), NUL bytes outside UTF-16;
2. a byte-order mark decides (UTF-32, UTF-8-SIG, UTF-16, GB18030); NUL bytes without a BOM are
   accepted only as UTF-16 whose decoding is free of unassigned and control characters;
3. strict UTF-8 over the whole file (a bad byte after plenty of valid UTF-8 is reported by line);
4. charset-normalizer on a bounded sample (the first 64 KiB plus 16 KiB from where UTF-8 broke);
   its first answer is trusted only for Korean or Japanese with at least 256 non-ASCII characters;
5. otherwise a vote among the CJK code pages that decode the sample strictly (only GB18030 and Big5
   when the detector answered a single-byte code page): each decoding is scored by its commonness,
   the share of its non-ASCII characters that its own national standard lists as frequently used
   (GB2312 level-1 hanzi, Big5 常用字, KS X 1001 Hangul, JIS X 0208 level-1 kanji and kana, plus each
   standard's punctuation rows; a GB18030 decoding also by the Big5 list, for GBK files of
   traditional text, except characters next to a Latin letter, which is how Western text read as
   GBK looks). Mis-decoded bytes land on rare characters, so the right code page scores highest even
   on a two-line file, where the detector alone often answers Korean, Japanese, Thai or Cyrillic.
   Ties go to GB18030, then Big5: this product's corpora are Chinese. (Korean or Japanese files
   shorter than about 256 characters in a legacy code page may therefore be misread; UTF-8 always
   works.);
6. the vote's winner is weighed against a single-byte reading: the detector's single-byte answer
   (Windows-1252 when the detector finds it about as plausible, as it often ranks cp1250, cp852 or
   mac_latin2 first on Western text), or Windows-1252 when that reads more plausibly or the detector
   has no single-byte answer. Its plausibility is the share of its non-ASCII characters in runs
   that read as real text: common punctuation, not wedged between letters, and words in one script,
   without a lowercase letter before an uppercase one, native digits among letters or obsolete
   letters, Latin words not mostly accented letters, Thai spelled as Thai is. Double-byte text read
   one byte at a time fails these. The single-byte reading wins only when it is more plausible by
   more than 0.2: single-byte text almost never decodes strictly into common CJK characters;
7. a best reading that still scores under 0.5 (mostly rare or unassigned characters) is mojibake:
   the file is refused with a message that suggests re-saving it as UTF-8.
"""

from __future__ import annotations

import codecs
import logging
import os
import re
import stat
import unicodedata

from textgen_core.errors import CorpusError

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 2 * 1024**3
SAMPLE_BYTES = 64 * 1024
WINDOW_BYTES = 16 * 1024
_UTF8_EVIDENCE = 16  # valid non-ASCII UTF-8 characters before a bad byte: the file is broken UTF-8
_SHORT_SAMPLE = 256  # fewer non-ASCII characters than this: the detector's CJK answer is re-checked
_SCORED_CHARS = 4096  # non-ASCII characters scored per candidate code page

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
    (b"\x84\x31\x95\x33", "gb18030"),
)
_ARCHIVES = (
    (0, b"PK\x03\x04", "zip"),
    (0, b"PK\x05\x06", "zip"),
    (0, b"PK\x07\x08", "zip"),
    (0, b"\x1f\x8b", "gzip"),
    (0, b"\xfd7zXZ\x00", "xz"),
    (0, b"7z\xbc\xaf\x27\x1c", "7z"),
    (0, b"Rar!\x1a\x07", "rar"),
    (0, b"\x28\xb5\x2f\xfd", "zstd"),
    (257, b"ustar", "tar"),
)
_ZIPPED_DOCUMENTS = frozenset({".docx", ".xlsx", ".pptx", ".odt", ".ods", ".epub"})
_BZ2 = re.compile(rb"BZh[1-9](?:\x31\x41\x59\x26\x53\x59|\x17\x72\x45\x38\x50\x90)")
_IMPLAUSIBLE = frozenset({"Cc", "Cn", "Co", "Cs"})
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x19\x1c-\x1f\x7f]")  # keeps \t \n \v \f \r, ^Z, ESC

# Code page -> (family, reference codec whose byte ranges say which characters are common).
_CJK_FAMILY = {
    "gb18030": "gb", "gbk": "gb", "gb2312": "gb", "hz": "gb",
    "big5": "big5", "cp950": "big5", "big5hkscs": "big5",
    "euc_kr": "ko", "cp949": "ko", "johab": "ko",
    "shift_jis": "ja", "cp932": "ja", "euc_jp": "ja", "shift_jis_2004": "ja",
    "shift_jisx0213": "ja", "euc_jis_2004": "ja", "euc_jisx0213": "ja",
}  # fmt: skip
_REFERENCE = {"gb": "gb2312", "big5": "big5", "ko": "euc_kr", "ja": "euc_jp"}
_CANDIDATES = ("gb18030", "big5", "cp950", "big5hkscs", "cp932", "euc_jp", "cp949")
_SUPERSETS = {
    "big5": ("cp950", "big5hkscs"), "euc_kr": ("cp949",), "shift_jis": ("cp932",),
    "cp1252": ("latin-1",),
}  # fmt: skip
_WESTERN_TOLERANCE = 0.01  # detector "chaos" within which Windows-1252 is preferred
_CHINESE = ("gb18030", "big5", "cp950", "big5hkscs")  # weighed against a single-byte answer
_CJK_MARGIN = 0.2  # how much more plausible a single-byte reading must be than the CJK one
_PLAUSIBLE = 0.5  # a best reading that scores less is mojibake: the file is refused
_RUN = re.compile(r"[^\s!-/:-@\[-`{-~]+")  # text between whitespace and ASCII punctuation
_SIGNS = frozenset("«»‹›‘’‚“”„–—…•·°€£¥§©®™¿¡№\u05f3\u05f4\u060c\u061b\u061f")  # that text uses
_WEDGED = re.compile(r"[^\W\d_][«»‹›‘‚“”„…•°€£¥§©®™¿¡№][^\W\d_]")  # a sign between two letters
_OBSOLETE = frozenset("\u0e03\u0e05\u0e26\u0e3a\u0e4d\u0e4e")  # Thai letters no modern word uses
_THAI_MISSPELT = re.compile(
    "(?:^|[^\u0e01-\u0e2e\u0e30-\u0e3a\u0e45\u0e47-\u0e4e])[\u0e30-\u0e3a\u0e45\u0e47-\u0e4e]"
    "|[\u0e40-\u0e44](?![\u0e01-\u0e2e])|[\u0e31\u0e34-\u0e39]{2}|[\u0e47-\u0e4e]{2}"
)  # a vowel or tone mark after no consonant, a leading vowel before none, two stacked marks


def display(path: str | os.PathLike) -> str:
    """A path as it goes into a one-line message."""
    return os.fsdecode(path).replace("\n", "\\n").replace("\r", "\\r")


def read_text(path: str | os.PathLike) -> tuple[str, str]:
    """Decode a whole text file -> (text with '\\n' line ends, encoding). Raises CorpusError.

    The encoding is a Python codec name: "utf-8", "utf-8-sig", "utf-16", "gb18030", "big5", ...
    """
    name = display(path)
    try:
        data = _read_bytes(os.fsdecode(path), name)
        text, encoding = decode_bytes(data, name)
    except MemoryError:
        raise CorpusError(f"{name}: file is too large to load into memory") from None
    logger.debug("%s: decoded %d bytes as %s", name, len(data), encoding)
    return text, encoding


def _read_bytes(path: str, name: str) -> bytes:
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise CorpusError(f"{name}: is a directory, not a text file")
        if not stat.S_ISREG(info.st_mode):
            raise CorpusError(f"{name}: is not a regular file")
        _check_size(info.st_size, name)
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise CorpusError(f"{name}: file not found") from None
    except PermissionError:
        raise CorpusError(f"{name}: cannot be read (permission denied)") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise CorpusError(f"{name}: cannot be read ({display(reason)})") from None
    _check_size(len(data), name)
    return data


def _check_size(size: int, name: str) -> None:
    if size > MAX_FILE_BYTES:
        raise CorpusError(
            f"{name}: file is {size / 1024**3:.1f} GiB, too large to be a corpus "
            f"(limit {MAX_FILE_BYTES // 1024**3} GiB); split it or use a sample"
        )


def decode_bytes(data: bytes, name: str) -> tuple[str, str]:
    """Decode a file's bytes (see the module docstring); ``name`` goes into error messages."""
    _check_archive(data, name)
    if not data:
        raise CorpusError(f"{name}: file is empty")
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return _finish(*_decode_all(data, codec, name), name)
    if b"\x00" in data:
        codec = _bomless_utf16(data)
        if codec is None:
            line = data.count(b"\n", 0, data.index(b"\x00")) + 1
            raise CorpusError(f"{name}: line {line}: contains NUL bytes; this is a binary file, "
                              "not text")
        return _finish(*_decode_all(data, codec, name), name)
    try:
        return _finish(data.decode("utf-8"), "utf-8", name)
    except UnicodeDecodeError as exc:
        bad = exc.start
    head = data[:bad].decode("utf-8")
    if len(head) - len(head.encode("ascii", "ignore")) >= _UTF8_EVIDENCE:
        raise CorpusError(
            f"{name}: line {head.count(chr(10)) + 1}: invalid UTF-8 byte 0x{data[bad]:02x} in a "
            "file that is UTF-8 up to there; fix that line or re-save the file as UTF-8"
        )
    codec = _detect(_sample(data, bad), name)
    return _finish(*_decode_all(data, codec, name), name)


def _check_archive(data: bytes, name: str) -> None:
    for offset, magic, kind in _ARCHIVES:
        if data[offset : offset + len(magic)] == magic:
            article = "an" if kind[0] in "aeiox" else "a"
            extension = os.path.splitext(name)[1].lower()
            if kind == "zip" and extension in _ZIPPED_DOCUMENTS:
                raise CorpusError(f"{name}: is a zip archive (a {extension} document), not plain "
                                  "text; save or export it as a .txt file first")
            raise CorpusError(f"{name}: is {article} {kind} archive; extract it first")
    if _BZ2.match(data[:10]):
        raise CorpusError(f"{name}: is a bz2 archive; extract it first")


def _decode_all(data: bytes, codec: str, name: str) -> tuple[str, str]:
    """Decode strictly with ``codec`` (or a superset of it) -> (text, codec used)."""
    for attempt in (codec, *_SUPERSETS.get(codec, ())):
        try:
            return data.decode(attempt), attempt
        except UnicodeDecodeError as exc:
            error = exc
    line = data[: error.start].decode(codec, errors="replace").count("\n") + 1
    raise CorpusError(
        f"{name}: line {line}: bytes that are not valid {codec} (the encoding detected for this "
        "file); re-save the file as UTF-8"
    )


def _finish(text: str, codec: str, name: str) -> tuple[str, str]:
    """Normalise line ends, refuse binary-looking and empty text -> (text, codec)."""
    text = text.removeprefix("\ufeff")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    sample = text[:SAMPLE_BYTES]
    controls = _CONTROL.findall(sample)
    if len(controls) > max(4, len(sample) // 100):
        first = _CONTROL.search(text)
        line = text.count("\n", 0, first.start() if first else 0) + 1
        raise CorpusError(f"{name}: line {line}: full of control characters; this is a binary "
                          "file, not text")
    if not text or text.isspace():
        raise CorpusError(f"{name}: file is empty (only whitespace)")
    return text, codec


def _bomless_utf16(data: bytes) -> str | None:
    """UTF-16 without a BOM: the byte order whose decoding has no unassigned or control characters.

    ASCII in UTF-16 puts NULs on one byte parity; read in the wrong order, a newline becomes the
    unassigned U+0A00, so the wrong order shows itself on any multi-line file.
    """
    if len(data) % 2:
        return None
    sample = data[: SAMPLE_BYTES - SAMPLE_BYTES % 2]
    best, best_bad = None, len(sample)
    for codec in ("utf-16-le", "utf-16-be"):
        try:
            text = codecs.getincrementaldecoder(codec)("strict").decode(sample, final=False)
        except UnicodeDecodeError:
            continue
        bad = sum(
            1 for ch in text if ch not in "\t\n\r" and unicodedata.category(ch) in _IMPLAUSIBLE
        )
        plausible = bad <= len(text) // 1000 and re.search(r"[\t\n ]", text)
        if plausible and bad < best_bad:
            best, best_bad = codec, bad
    return best


def _sample(data: bytes, bad: int) -> bytes:
    """The first 64 KiB, plus 16 KiB from the start of the line where UTF-8 broke."""
    head = data[:SAMPLE_BYTES]
    if len(data) > SAMPLE_BYTES:
        head = head[: head.rfind(b"\n") + 1] or head
    if bad < len(head):
        return head
    start = data.rfind(b"\n", 0, bad) + 1
    return head + data[start : start + WINDOW_BYTES]


def _normalize(codec: str) -> str:
    try:
        name = codecs.lookup(codec).name.replace("-", "_")
    except LookupError:
        return "utf_16_unknown"  # an unknown name is skipped like a BOM-less UTF-16 guess
    if name in ("gbk", "gb2312", "gb18030"):
        return "gb18030"
    return {"utf_8": "utf-8"}.get(name, name)


def _detect(sample: bytes, name: str) -> str:
    """charset-normalizer on the sample, then the vote and the checks of the module docstring."""
    matches = _detector_matches(sample, name)
    first = _normalize(matches[0].encoding) if matches else None
    family = _CJK_FAMILY.get(first or "")
    if family in ("ko", "ja") and not _is_short(sample, first):
        return _plausible(first, _score(sample, first), name)
    if family or first is None:
        codec = _cjk_vote(sample, first, _CANDIDATES)
    else:  # a single-byte answer: the Chinese code pages are weighed against it
        codec = _cjk_vote(sample, None, _CHINESE)
    score = _score(sample, codec) if codec else -1.0
    single, single_score = _best_single_byte(sample, matches)
    logger.debug("encoding vote: %s scores %.3f, %s %.3f", codec, score, single, single_score)
    if single_score > score + _CJK_MARGIN:
        codec, score = single, single_score
    return _plausible(codec, score, name)


def _detector_matches(sample: bytes, name: str) -> list:
    """charset-normalizer's answers, best first, without UTF-16/32 (BOM-less UTF-16 is checked apart)."""
    from charset_normalizer import from_bytes

    try:
        matches = list(from_bytes(sample))
    except Exception as exc:  # the detector must never become the user's error message
        logger.warning("%s: charset detection failed: %s", name, exc)
        return []
    return [m for m in matches if not _normalize(m.encoding).startswith(("utf_16", "utf_32"))]


def _single_byte_answer(matches: list) -> str | None:
    """The detector's best answer outside the CJK code pages; Windows-1252, the most widespread
    single-byte code page (the WHATWG Encoding Standard reads even "latin1" and "ascii" labels as
    windows-1252), wins when the detector finds it about as plausible: it often ranks cp1250, cp852
    or mac_latin2 first on Western text.
    """
    singles = [m for m in matches if _normalize(m.encoding) not in _CJK_FAMILY]
    if not singles:
        return None
    limit = singles[0].chaos + _WESTERN_TOLERANCE
    if any(m.chaos <= limit and "cp1252" in (m.could_be_from_charset or [m.encoding]) for m in singles):
        return "cp1252"
    return _normalize(singles[0].encoding)


def _best_single_byte(sample: bytes, matches: list) -> tuple[str, float]:
    """The detector's single-byte answer, or Windows-1252 where that reads more plausibly or the
    detector has no single-byte answer (it may take short Western text for CJK) -> (codec, score)."""
    best, best_score = "cp1252", -1.0
    for codec in dict.fromkeys((_single_byte_answer(matches) or "cp1252", "cp1252")):
        score = _score(sample, codec)
        if score > best_score:
            best, best_score = codec, score
    return best, best_score


def _plausible(codec: str, score: float, name: str) -> str:
    """``codec`` unless its decoding is still mostly rare or unassigned characters (mojibake)."""
    if score < _PLAUSIBLE:
        raise CorpusError(f"{name}: cannot tell the text encoding: even the best guess, {codec}, reads "
                          "as mostly rare or unassigned characters; re-save the file as UTF-8")
    logger.debug("%s: %s scores %.3f", name, codec, score)
    return codec


def _is_short(sample: bytes, codec: str) -> bool:
    text = sample.decode(codec, errors="ignore")
    return len(text) - len(text.encode("ascii", "ignore")) < _SHORT_SAMPLE


def _strict_decode(sample: bytes, codec: str) -> str | None:
    """The sample decoded strictly with ``codec`` or a superset (it may end inside a character)."""
    for attempt in (codec, *_SUPERSETS.get(codec, ())):
        try:
            return codecs.getincrementaldecoder(attempt)("strict").decode(sample, final=False)
        except UnicodeDecodeError:
            continue
    return None


def _score(sample: bytes, codec: str) -> float:
    """How plausible the sample reads in ``codec``: commonness for CJK code pages, else plausibility."""
    text = _strict_decode(sample, codec)
    if text is None:
        return 0.0
    family = _CJK_FAMILY.get(codec)
    if family is None:
        return _plausibility(text)
    return _family_score(text, family)


def _cjk_vote(sample: bytes, detected: str | None, candidates: tuple[str, ...]) -> str | None:
    """The CJK code page whose strict decoding uses the most common characters (ties: list order);
    None when none decodes the sample.
    """
    candidates = list(candidates)
    if detected is not None and detected not in candidates:
        candidates.insert(4, detected)
    best, best_score = None, -1.0
    for codec in candidates:
        try:
            text = codecs.getincrementaldecoder(codec)("strict").decode(sample, final=False)
        except UnicodeDecodeError:
            continue
        score = _family_score(text, _CJK_FAMILY[codec])
        logger.debug("encoding vote: %s scores %.3f", codec, score)
        if score > best_score + 1e-9:
            best, best_score = codec, score
    return best


def _plausibility(text: str) -> float:
    """Share of the non-ASCII characters that stand in runs (text between spaces and ASCII
    punctuation) that read as real text: :func:`_run_is_plausible`. It scores a single-byte decoding
    as :func:`_commonness` scores a CJK one: double-byte text read one byte at a time turns into
    symbols wedged between letters and words that no language spells.
    """
    good = total = 0
    for match in _RUN.finditer(text):
        run = match.group()
        if run.isascii():
            continue
        count = len(run) - len(run.encode("ascii", "ignore"))
        total += count
        good += count if _run_is_plausible(run) else 0
        if total >= _SCORED_CHARS:
            break
    return good / total if total else 1.0


def _run_is_plausible(run: str) -> bool:
    """Only common punctuation, none of it wedged between two letters (apostrophes, dashes and the
    middle dot may be), and words that :func:`_word_is_plausible` accepts."""
    if _WEDGED.search(run):
        return False
    parts, word = [], []
    for ch in run + " ":
        category = unicodedata.category(ch)
        if category[0] in "LM" or category == "Nd":
            word.append(ch)
            continue
        if ch >= "\x80" and ch not in _SIGNS:
            return False
        if word:
            parts.append("".join(word))
            word = []
    return all(_word_is_plausible(part) for part in parts)


def _word_is_plausible(word: str) -> bool:
    """A word in one script, with no lowercase letter right before an uppercase one, no native digits
    among letters, no combining mark first, no obsolete letter, Thai spelled as Thai is spelled, and,
    in Latin script, no more than about two accented letters per unaccented one."""
    if unicodedata.category(word[0])[0] == "M" or _THAI_MISSPELT.search(word):
        return False
    scripts, plain, accented, native_digits, previous = set(), 0, 0, False, ""
    for ch in word:
        category = unicodedata.category(ch)
        if ch in _OBSOLETE or (category == "Lu" and previous == "Ll"):
            return False
        previous = category
        if category == "Nd":
            native_digits = native_digits or ch >= "\x80"
        elif category[0] == "L":
            scripts.add("LATIN" if ch < "\x80" else unicodedata.name(ch, "?").split(" ", 1)[0])
            plain += ch < "\x80"
            accented += ch >= "\x80"
    if len(scripts) > 1 or (native_digits and scripts):
        return False
    return scripts != {"LATIN"} or accented <= 2 * plain + 1


def _family_score(text: str, family: str) -> float:
    """How well a CJK decoding reads: its commonness; for GB18030 also by Big5's list of frequently
    used characters, as GBK files of traditional Chinese are Chinese too."""
    if family == "gb":
        return max(_commonness(text, "gb"), _commonness(text, "big5", apart_from_latin=True))
    return _commonness(text, family)


def _commonness(text: str, family: str, apart_from_latin: bool = False) -> float:
    """Share of the non-ASCII characters that the family's standard lists as frequently used.

    With ``apart_from_latin``, a character next to an ASCII letter never counts: Western text read as
    GBK fuses each accented letter with the letter after it into a traditional character.
    """
    reference = _REFERENCE[family]
    common = total = 0
    for index, ch in enumerate(text):
        if ch < "\x80":
            continue
        total += 1
        near = text[max(index - 1, 0) : index + 2]
        if not (apart_from_latin and any(c.isascii() and c.isalpha() for c in near)):
            common += _is_common(ch, family, reference)
        if total >= _SCORED_CHARS:
            break
    return common / total if total else 0.0


def _is_common(ch: str, family: str, reference: str) -> bool:
    try:
        raw = ch.encode(reference)
    except UnicodeEncodeError:
        return False
    if len(raw) != 2:
        return False
    hi, code = raw[0], int.from_bytes(raw, "big")
    if family == "gb":  # GB2312 level-1 hanzi (3755 most used), punctuation, full-width forms
        return 0xB0A1 <= code <= 0xD7F9 or hi in (0xA1, 0xA3)
    if family == "big5":  # Big5 常用字 (5401 frequently used), punctuation and symbols
        return 0xA440 <= code <= 0xC67E or 0xA140 <= code <= 0xA3BF
    if family == "ko":  # KS X 1001 precomposed Hangul (2350), punctuation
        return 0xB0A1 <= code <= 0xC8FE or hi == 0xA1
    return 0xB0A1 <= code <= 0xCFD3 or hi in (0xA1, 0xA4, 0xA5)  # JIS level-1 kanji, kana
