"""Splitting a syslog byte stream into messages (RFC 6587), knowing nothing about sockets.

Two framings exist on TCP and TLS; a connection uses one, detected from its first bytes:

- octet counting (RFC 6587 3.4.1, RFC 5425): ``MSG-LEN SP SYSLOG-MSG``, MSG-LEN a decimal
  without leading zero. Chosen when the stream starts with ``[1-9][0-9]* ``.
- non-transparent framing (RFC 6587 3.4.2): each message ends with LF (a CR before it belongs to
  the trailer) or NUL. Everything else.

Defined behaviour for bad input, each counted in :attr:`StreamFramer.framing_errors` or
:attr:`StreamFramer.truncated`:

- a message longer than ``max_len`` keeps its first ``max_len`` bytes and gets the
  ``\\[truncated N]`` marker; the rest of the frame is read and discarded, so framing stays in step;
- in an octet-counted stream, a frame whose length field is not a number is a framing error: the
  bytes up to the next LF are taken as one message and counting resumes after it;
- bytes left when the connection ends (a count larger than the data, a stall) are returned by
  :meth:`StreamFramer.finish` with the ``\\[incomplete]`` marker: never dropped.
"""

from __future__ import annotations

import re

from logmaster.archive.line import INCOMPLETE, truncated_marker

OCTET = "octet-counting"
NON_TRANSPARENT = "non-transparent"

_OCTET_START = re.compile(rb"[1-9][0-9]{0,9} ")
_MAX_LEN_DIGITS = 10
_SEPARATORS = b"\r\n\x00 "

Frame = tuple[bytes, bytes]  # (raw message, marker or b"")


class StreamFramer:
    """Incremental framer for one connection: ``feed`` bytes, get whole messages back."""

    __slots__ = (
        "_buf",
        "_discard",
        "_over_cr",
        "_over_head",
        "_over_len",
        "framing_errors",
        "max_len",
        "mode",
        "truncated",
    )

    def __init__(self, max_len: int) -> None:
        self.max_len = max_len
        self.mode: str | None = None
        self._buf = b""
        self._discard = 0  # octet mode: bytes of an oversize frame still to skip
        self._over_head: bytes | None = None  # LF mode: kept head of an oversize message
        self._over_len = 0
        self._over_cr = False  # LF mode: the oversize bytes counted so far end with CR
        self.framing_errors = 0
        self.truncated = 0

    def feed(self, data: bytes) -> list[Frame]:
        buf = self._buf + data if self._buf else data
        if self.mode is None:
            if len(buf) <= _MAX_LEN_DIGITS and (buf.isdigit() or not buf):
                self._buf = buf  # too early to tell
                return []
            self.mode = OCTET if _OCTET_START.match(buf) else NON_TRANSPARENT
        out: list[Frame] = []
        if self.mode == OCTET:
            self._buf = self._octets(buf, out)
        else:
            self._buf = self._lines(buf, out)
        return out

    def finish(self) -> list[Frame]:
        """The connection ended: return what is left as incomplete messages."""
        out: list[Frame] = []
        if self._over_head is not None:
            self.truncated += 1
            out.append((self._over_head, truncated_marker(self._over_len) + INCOMPLETE))
            self._over_head = None
        rest = self._buf
        self._buf = b""
        if self.mode == OCTET:
            m = _OCTET_START.match(rest.lstrip(_SEPARATORS))
            if m is not None:
                rest = rest.lstrip(_SEPARATORS)[m.end() :]
        if rest.strip(_SEPARATORS):
            self.framing_errors += 1
            if len(rest) > self.max_len:
                self.truncated += 1
                out.append((rest[: self.max_len], truncated_marker(len(rest)) + INCOMPLETE))
            else:
                out.append((rest, INCOMPLETE))
        return out

    @property
    def buffered(self) -> int:
        return len(self._buf) + (len(self._over_head) if self._over_head else 0)

    # -- octet counting ---------------------------------------------------------------------

    def _octets(self, buf: bytes, out: list[Frame]) -> bytes:
        pos = 0
        end = len(buf)
        max_len = self.max_len
        if self._discard:
            skip = min(self._discard, end)
            self._discard -= skip
            pos = skip
        while pos < end:
            # Stray separators between frames are tolerated, as rsyslog does.
            if buf[pos] in _SEPARATORS:
                pos += 1
                continue
            space = buf.find(b" ", pos, pos + _MAX_LEN_DIGITS + 1)
            if space == -1:
                if end - pos <= _MAX_LEN_DIGITS and buf[pos:end].isdigit():
                    break  # the length field is still arriving
                pos = self._resync(buf, pos, out)
                if pos < 0:
                    return buf[-pos - 1 :]
                continue
            digits = buf[pos:space]
            if not digits.isdigit() or digits[0] == 0x30:
                pos = self._resync(buf, pos, out)
                if pos < 0:
                    return buf[-pos - 1 :]
                continue
            length = int(digits)
            start = space + 1
            if length <= max_len:
                if end - start < length:
                    break
                out.append((buf[start : start + length], b""))
                pos = start + length
                continue
            # Oversize: keep the head once it is all here, then discard the rest of the frame.
            if end - start < max_len:
                break
            self.truncated += 1
            out.append((buf[start : start + max_len], truncated_marker(length)))
            available = end - start - max_len
            skip = min(available, length - max_len)
            self._discard = length - max_len - skip
            pos = start + max_len + skip
        return buf[pos:]

    def _resync(self, buf: bytes, pos: int, out: list[Frame]) -> int:
        """A bad length field: take up to the next LF as one message. Negative = need more."""
        newline = buf.find(b"\n", pos)
        if newline == -1:
            if len(buf) - pos > self.max_len:
                self.framing_errors += 1
                self.truncated += 1
                out.append((buf[pos : pos + self.max_len], truncated_marker(len(buf) - pos)))
                return len(buf)
            return -pos - 1
        self.framing_errors += 1
        self._emit_line(buf[pos:newline], out)
        return newline + 1

    # -- non-transparent (LF / NUL) ---------------------------------------------------------

    def _lines(self, buf: bytes, out: list[Frame]) -> bytes:
        if self._over_head is not None:
            newline = _find_terminator(buf)
            if newline == -1:
                self._over_len += len(buf)
                self._over_cr = buf.endswith(b"\r")
                return b""
            self._over_len += newline
            if buf[newline - 1] == 0x0D if newline else self._over_cr:
                self._over_len -= 1  # a CR before the terminator belongs to it, as in _emit_line
            self.truncated += 1
            out.append((self._over_head, truncated_marker(self._over_len)))
            self._over_head = None
            buf = buf[newline + 1 :]
        parts = buf.split(b"\n")
        rest = parts.pop()
        if b"\x00" in buf:
            split: list[bytes] = []
            for part in parts:
                split.extend(part.split(b"\x00"))
            tail = rest.split(b"\x00")
            rest = tail.pop()
            parts = split + tail
        emit = self._emit_line
        for part in parts:
            emit(part, out)
        if len(rest) > self.max_len:
            self._over_head = rest[: self.max_len]
            self._over_len = len(rest)
            self._over_cr = rest.endswith(b"\r")
            return b""
        return rest

    def _emit_line(self, part: bytes, out: list[Frame]) -> None:
        if part.endswith(b"\r"):
            part = part[:-1]
        if not part:
            return  # blank lines between messages are not messages
        if len(part) > self.max_len:
            self.truncated += 1
            out.append((part[: self.max_len], truncated_marker(len(part))))
        else:
            out.append((part, b""))


def _find_terminator(buf: bytes) -> int:
    newline = buf.find(b"\n")
    nul = buf.find(b"\x00")
    if nul != -1 and (newline == -1 or nul < newline):
        return nul
    return newline
