"""Level and oblique tones (平仄) of Chinese characters, from modern Mandarin readings.

Couplets (对联) want the two lines' tones to contrast (平仄相谐); above all the last characters:
a first line ending on an oblique tone (仄) is answered by a level one (平), the classic 仄起平收.
Here a character's class comes from its modern Mandarin readings as :mod:`pypinyin` gives them
(``Style.TONE3``, ``heteronym=True``): tones 1-2 are 平, tones 3-4 are 仄. Characters of the old
entering tone (入声, e.g. 白 国 竹 十) follow their modern reading (all four are 平 here), as in
the 中华新韵 convention, not the 平水韵 one where they are 仄.

A character with readings in both classes (长 cháng/zhǎng, 中 zhōng/zhòng) has no class (None):
no rule can rely on it. Neutral-tone readings (地 de, 家 jia) do not count. Readings are those that
pypinyin's character dictionary lists *and* that are in use: the default reading, or one that
pypinyin's phrase dictionary gives the character in some word. The character dictionary alone
(Unihan) also lists obscure readings, 春 chǔn, 年 nìng, 明 mèng, 高 gào, which would leave about a
quarter of a couplet vocabulary, 春 年 明 高 光 among it, without a class; filtered, it is about 7%,
genuine two-class characters (中 长 为 行 看 相 重 一 不 ...).

No torch here: the studio can report tones without loading it.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from functools import lru_cache

__all__ = ["PING", "ZE", "last_character", "tone_of", "tone_report"]

PING = "平"  # level tone: Mandarin tones 1 (阴平) and 2 (阳平)
ZE = "仄"  # oblique tone: Mandarin tones 3 (上) and 4 (去)
_CLASS = {"1": PING, "2": PING, "3": ZE, "4": ZE}  # tone 5 (neutral) has no class


@lru_cache(maxsize=1 << 16)
def tone_of(ch: str) -> str | None:
    """"平" (Mandarin tones 1-2), "仄" (tones 3-4), or None (not a Chinese character, neutral tone,
    or a character with readings in both classes, e.g. 长 cháng/zhǎng)."""
    if len(ch) != 1:
        return None
    classes = {_CLASS[r[-1]] for r in _readings(ch) if r[-1] in _CLASS}
    return classes.pop() if len(classes) == 1 else None


def _readings(ch: str) -> list[str]:
    """The character's readings in use (TONE3, neutral tone as 5): the default one and those the
    phrase dictionary uses; [] for a character pypinyin does not know."""
    from pypinyin import Style, pinyin
    from pypinyin.contrib.tone_convert import to_tone3

    found = pinyin(ch, style=Style.TONE3, heteronym=True, errors="ignore", neutral_tone_with_five=True)
    if not found or not found[0]:
        return []
    in_use = {to_tone3(r, neutral_tone_with_five=True) for r in _phrase_readings().get(ch, ())}
    return [r for i, r in enumerate(found[0]) if i == 0 or r in in_use]


@lru_cache(maxsize=1)
def _phrase_readings() -> dict[str, set[str]]:
    """Character -> every reading (tone marks) pypinyin's phrase dictionary gives it (built once)."""
    from pypinyin.phrases_dict import phrases_dict

    seen: defaultdict[str, set[str]] = defaultdict(set)
    for phrase, readings in phrases_dict.items():
        if len(phrase) == len(readings):
            for ch, options in zip(phrase, readings):
                seen[ch].update(options)
    return dict(seen)


def last_character(line: str) -> str | None:
    """The line's last character that is neither whitespace nor punctuation; None if it has none."""
    for ch in reversed(line):
        if not ch.isspace() and not unicodedata.category(ch).startswith("P"):
            return ch
    return None


def tone_report(first_line: str, second_line: str) -> dict | None:
    """For a couplet output: {"first": "仄", "second": "平", "contrast": True} comparing the last
    Chinese characters of both lines (trailing punctuation skipped); None when either tone is
    unknown (then no contrast can be claimed)."""
    first, second = last_character(first_line), last_character(second_line)
    a = tone_of(first) if first else None
    b = tone_of(second) if second else None
    if a is None or b is None:
        return None
    return {"first": a, "second": b, "contrast": a != b}
