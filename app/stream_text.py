"""Text of streamed tokens, built one token at a time (no re-decoding of the whole output per token).

:class:`StreamDecoder` turns each token id into the text it adds, the way SentencePiece's own
``decode`` reads a whole sequence:

* ``<pad>``, ``<s>`` and ``</s>`` add nothing (:meth:`Tokenizer.decode` skips them too);
* "▁" is a space; the first piece of the text loses its leading "▁" when the tokenizer put a dummy
  one in front of every text (found out by decoding that one piece alone, once);
* byte-fallback pieces (``<0xE6>``) are UTF-8 bytes: they are held until they make a whole character
  (an unfinished character before a normal piece reads as U+FFFD, one per byte, as SentencePiece
  writes it);
* ``<unk>`` reads as SentencePiece writes it (" ⁇ "), the newline token as "\\n".

The streamed text is for display while writing: the caller replaces it with
``tokenizer.decode(ids)`` (the result's text) when the output is complete.
"""

from __future__ import annotations

import re
from typing import Any

_BYTE = re.compile(r"<0x([0-9A-Fa-f]{2})>")
_SPACE = "\u2581"            # SentencePiece's word-boundary marker "▁"
_REPLACEMENT = "\ufffd"


class StreamDecoder:
    """Feed token ids with :meth:`push`; each call returns the text that id adds (maybe "")."""

    def __init__(self, tokenizer: Any) -> None:
        self._tok = tokenizer
        self._skip = {tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id}
        try:
            self._newline: int | None = tokenizer.newline_id
        except Exception:                     # an old tokenizer without the newline symbol
            self._newline = None
        self._pieces: dict[int, str] = {}
        self._bytes = bytearray()             # byte-fallback bytes of an unfinished character
        self._first = True                    # the next piece is the first of the text
        self.ids: list[int] = []
        self.text = ""

    def push(self, token: int) -> str:
        """The text ``token`` adds to what was streamed so far (it may be held back: bytes)."""
        token = int(token)
        self.ids.append(token)
        if token in self._skip:
            return ""
        piece = self._piece(token)
        byte = _BYTE.fullmatch(piece)
        if byte is not None:
            self._first = False
            self._bytes.append(int(byte.group(1), 16))
            return self._emit(self._take_bytes(final=False))
        added = self._take_bytes(final=True)
        if token == self._tok.unk_id:
            added += self._tok.decode([token])
        elif token == self._newline:
            added += "\n"
        elif self._first and piece.startswith(_SPACE):
            added += self._tok.decode([token])          # a dummy prefix "▁" is dropped there
        else:
            added += piece.replace(_SPACE, " ")
        self._first = False
        return self._emit(added)

    def finish(self) -> str:
        """The text of bytes still held at the end (an unfinished character reads as U+FFFD)."""
        return self._emit(self._take_bytes(final=True))

    def _emit(self, added: str) -> str:
        self.text += added
        return added

    def _piece(self, token: int) -> str:
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = self._tok.pieces([token])[0]
        return piece

    def _take_bytes(self, *, final: bool) -> str:
        """Whole characters from the held bytes; with ``final`` the rest too, as U+FFFD per byte."""
        data, out = bytes(self._bytes), ""
        while data:
            size = _utf8_length(data[0])
            chunk = data[:size]
            if size and len(chunk) == size:
                try:
                    out += chunk.decode("utf-8")
                    data = data[size:]
                    continue
                except UnicodeDecodeError:
                    pass
            elif size and not final and _may_continue(chunk):
                break                                      # wait for the character's next bytes
            out += _REPLACEMENT
            data = data[1:]
        self._bytes = bytearray(data)
        return out


def _utf8_length(lead: int) -> int:
    """Bytes of the UTF-8 character starting with ``lead``; 0 for a byte that cannot start one."""
    if lead < 0x80:
        return 1
    if 0xC2 <= lead <= 0xDF:
        return 2
    if 0xE0 <= lead <= 0xEF:
        return 3
    if 0xF0 <= lead <= 0xF4:
        return 4
    return 0


def _may_continue(chunk: bytes) -> bool:
    """Whether ``chunk`` (shorter than its character) can still become a valid character."""
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.reason == "unexpected end of data"
    return True
