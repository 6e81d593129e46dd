"""StreamFramer: RFC 6587 octet counting and LF/NUL framing, fed in any chunking."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from logmaster.archive.line import INCOMPLETE, truncated_marker
from logmaster.collector.framing import NON_TRANSPARENT, OCTET, Frame, StreamFramer

MAX = 64

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def octet(*messages: bytes) -> bytes:
    return b"".join(b"%d %s" % (len(m), m) for m in messages)


def frame_all(data: bytes, max_len: int = MAX) -> tuple[list[Frame], StreamFramer]:
    f = StreamFramer(max_len)
    return f.feed(data) + f.finish(), f


def frame_bytewise(data: bytes, max_len: int = MAX) -> tuple[list[Frame], StreamFramer]:
    f = StreamFramer(max_len)
    out: list[Frame] = []
    for i in range(len(data)):
        out += f.feed(data[i : i + 1])
    return out + f.finish(), f


def frame_chunks(chunks: list[bytes], max_len: int = MAX) -> tuple[list[Frame], StreamFramer]:
    f = StreamFramer(max_len)
    out: list[Frame] = []
    for chunk in chunks:
        out += f.feed(chunk)
    return out + f.finish(), f


def every_split(data: bytes, max_len: int = MAX) -> list[tuple[int, list[Frame]]]:
    """The frames for every single split point of ``data`` into two feeds."""
    return [(i, frame_chunks([data[:i], data[i:]], max_len)[0]) for i in range(1, len(data))]


# -- detection ------------------------------------------------------------------------------


def test_octet_counting_frames_messages_with_spaces_and_newlines() -> None:
    """Octet counting takes exactly MSG-LEN bytes, LF and NUL inside a message included."""
    msgs = [b"<13>1 2026-11-28T10:00:00Z gw1 app - - - hi", b"a\nb\x00c", b"x"]
    frames, f = frame_all(octet(*msgs))
    assert f.mode == OCTET
    assert frames == [(m, b"") for m in msgs]
    assert f.framing_errors == 0
    assert f.truncated == 0


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        (b"<13>one\n<13>two\n", [b"<13>one", b"<13>two"]),
        (b"<13>one\r\n<13>two\r\n", [b"<13>one", b"<13>two"]),
        (b"<13>one\x00<13>two\x00", [b"<13>one", b"<13>two"]),
        (b"<13>one\n\n\r\n<13>two\x00\x00", [b"<13>one", b"<13>two"]),
        (b"<13>a\rb\n", [b"<13>a\rb"]),
    ],
)
def test_non_transparent_framing_splits_on_lf_crlf_and_nul(
    stream: bytes, expected: list[bytes]
) -> None:
    """LF, CRLF (CR is trailer) and NUL end a message; blank frames are not messages."""
    frames, f = frame_all(stream)
    assert f.mode == NON_TRANSPARENT
    assert frames == [(m, b"") for m in expected]


def test_framing_is_detected_per_connection() -> None:
    """Each framer (connection) decides its own mode from its own first bytes."""
    a, b = StreamFramer(MAX), StreamFramer(MAX)
    assert a.feed(b"5 hello") == [(b"hello", b"")]
    assert b.feed(b"hello\n") == [(b"hello", b"")]
    assert (a.mode, b.mode) == (OCTET, NON_TRANSPARENT)
    # Once decided, the mode does not change with later bytes.
    assert b.feed(b"5 hello\n") == [(b"5 hello", b"")]
    assert a.feed(b"6 world!") == [(b"world!", b"")]
    assert (a.mode, b.mode) == (OCTET, NON_TRANSPARENT)


def test_detection_waits_for_the_length_field() -> None:
    """A stream starting with digits stays undecided until the space (or a non-digit) arrives."""
    f = StreamFramer(MAX)
    assert f.feed(b"1") == []
    assert f.feed(b"2") == []
    assert f.mode is None
    assert f.feed(b" ") == []
    assert f.mode == OCTET
    assert f.feed(b"hello world!") == [(b"hello world!", b"")]


@pytest.mark.parametrize("stream", [b"05 hello\n", b"2026-11-28 boot\n", b"12345678901 x\n"])
def test_digit_starts_that_are_not_a_length_field_mean_lf_framing(stream: bytes) -> None:
    """Leading zero, a date, or more than 10 digits: not octet counting."""
    frames, f = frame_all(stream)
    assert f.mode == NON_TRANSPARENT
    assert frames == [(stream[:-1], b"")]


def test_short_digit_only_lf_messages_are_framed_promptly() -> None:
    """'5\\n6\\n' is LF framing: the messages come out without waiting for close."""
    f = StreamFramer(MAX)
    assert f.feed(b"5\n6\n") == [(b"5", b""), (b"6", b"")]


def test_empty_feed_does_not_decide_the_mode() -> None:
    """An empty read before the first bytes does not choose the framing."""
    f = StreamFramer(MAX)
    assert f.feed(b"") == []
    assert f.mode is None
    assert f.feed(b"5 hello") == [(b"hello", b"")]


# -- chunking -------------------------------------------------------------------------------

CHUNK_CASES = {
    "octet": octet(b"<13>first message", b"second\nwith lf", b"3rd", b"y" * 64),
    "octet-oversize": octet(b"a" * 10, b"b" * 200, b"c" * 65, b"tail"),
    "octet-bad-count": octet(b"good") + b"x5 garbage here\n" + octet(b"again"),
    "octet-stray-separators": octet(b"one") + b"\r\n\x00 " + octet(b"two") + b"\n",
    "lf": b"<13>one\n<13>two two\n\n<13>three\n",
    "crlf": b"<13>one\r\n<13>two\r\n",
    "nul": b"<13>one\x00<13>two\x00",
    "lf-oversize": b"<13>short\n" + b"L" * 200 + b"\n<13>after\n" + b"M" * 65 + b"\x00end\n",
    "partial-tail": b"<13>one\n<13>unfinished",
    "octet-partial-tail": octet(b"whole") + b"20 not all here",
}


@pytest.mark.parametrize("name", sorted(CHUNK_CASES))
def test_every_split_point_gives_the_same_frames(name: str) -> None:
    """Feeding in two pieces split at any byte, or byte by byte, equals feeding all at once."""
    data = CHUNK_CASES[name]
    whole, f_all = frame_all(data)
    assert whole, "the case must produce frames"
    for i, frames in every_split(data):
        assert frames == whole, f"split at byte {i}"
    bytewise, f_bb = frame_bytewise(data)
    assert bytewise == whole
    assert (f_bb.truncated, f_bb.framing_errors) == (f_all.truncated, f_all.framing_errors)


def test_oversize_crlf_marker_length_does_not_depend_on_chunking() -> None:
    """The original length in the truncated marker is the same however the bytes arrive."""
    data = b"a" * 100 + b"\r\nnext\n"
    whole, _ = frame_all(data)
    bytewise, _ = frame_bytewise(data)
    assert whole == [(b"a" * MAX, truncated_marker(100)), (b"next", b"")]
    assert bytewise == whole


# -- oversize -------------------------------------------------------------------------------


def test_oversize_octet_frame_is_truncated_and_stream_stays_in_step() -> None:
    """A frame over max_len keeps max_len bytes, marks the original length, skips the rest."""
    big = bytes(range(256)) * 2
    frames, f = frame_all(octet(b"before", big, b"after"))
    assert frames == [
        (b"before", b""),
        (big[:MAX], truncated_marker(len(big))),
        (b"after", b""),
    ]
    assert f.truncated == 1
    assert f.framing_errors == 0


def test_octet_frame_of_exactly_max_len_is_not_truncated() -> None:
    """max_len bytes is still whole; max_len + 1 is truncated."""
    frames, f = frame_all(octet(b"e" * MAX, b"f" * (MAX + 1)))
    assert frames == [(b"e" * MAX, b""), (b"f" * MAX, truncated_marker(MAX + 1))]
    assert f.truncated == 1


def test_oversize_octet_frame_discard_spans_many_feeds() -> None:
    """The discarded rest of an oversize frame may arrive over many reads."""
    f = StreamFramer(MAX)
    out = f.feed(b"1000 " + b"z" * 100)
    assert out == [(b"z" * MAX, truncated_marker(1000))]
    for _ in range(8):
        assert f.feed(b"z" * 100) == []
    assert f.feed(b"z" * 100 + octet(b"next")) == [(b"next", b"")]
    assert f.finish() == []


@pytest.mark.parametrize("terminator", [b"\n", b"\x00"])
def test_oversize_lf_message_is_truncated_and_stream_stays_in_step(terminator: bytes) -> None:
    """An LF/NUL message over max_len keeps its head and the marker; the next one is intact."""
    big = b"<13>" + b"q" * 300
    frames, f = frame_all(b"<13>a\n" + big + terminator + b"<13>b\n")
    assert frames == [
        (b"<13>a", b""),
        (big[:MAX], truncated_marker(len(big))),
        (b"<13>b", b""),
    ]
    assert f.truncated == 1


def test_oversize_lf_message_arriving_in_pieces() -> None:
    """Only max_len bytes of an endless line are buffered; the marker has its full length."""
    f = StreamFramer(MAX)
    assert f.feed(b"x" * 100) == []
    for _ in range(50):
        assert f.feed(b"x" * 100) == []
        assert f.buffered <= MAX
    assert f.feed(b"x" * 10 + b"\nok\n") == [
        (b"x" * MAX, truncated_marker(5110)),
        (b"ok", b""),
    ]


# -- bad input ------------------------------------------------------------------------------


def test_bad_octet_count_resyncs_at_the_next_lf() -> None:
    """A frame whose length field is not a number is taken up to LF; counting resumes."""
    data = octet(b"one") + b"bogus frame text\n" + octet(b"two", b"three")
    frames, f = frame_all(data)
    assert frames == [
        (b"one", b""),
        (b"bogus frame text", b""),
        (b"two", b""),
        (b"three", b""),
    ]
    assert f.framing_errors == 1


def test_bad_octet_count_with_leading_zero_is_a_framing_error() -> None:
    """'05 ...' is not a valid MSG-LEN inside an octet-counted stream."""
    frames, f = frame_all(octet(b"one") + b"05 hello\n" + octet(b"two"))
    assert frames == [(b"one", b""), (b"05 hello", b""), (b"two", b"")]
    assert f.framing_errors == 1


def test_bad_octet_count_without_lf_is_truncated_not_buffered_forever() -> None:
    """Garbage with no LF in an octet stream is cut at max_len and counted."""
    f = StreamFramer(MAX)
    assert f.feed(octet(b"one")) == [(b"one", b"")]
    out = f.feed(b"garbage" * 20)
    assert len(out) == 1
    assert out[0][0] == (b"garbage" * 20)[:MAX]
    assert out[0][1] == truncated_marker(140)
    assert f.framing_errors == 1
    assert f.truncated == 1
    assert f.buffered <= MAX


# -- finish ---------------------------------------------------------------------------------


def test_finish_returns_partial_lf_message_as_incomplete() -> None:
    """Bytes after the last LF when the connection ends are kept, marked incomplete."""
    f = StreamFramer(MAX)
    assert f.feed(b"<13>done\n<13>half") == [(b"<13>done", b"")]
    assert f.finish() == [(b"<13>half", INCOMPLETE)]
    assert f.finish() == []


def test_finish_returns_partial_octet_frame_without_its_length_field() -> None:
    """A count larger than the data: the data that came is returned, incomplete."""
    f = StreamFramer(MAX)
    assert f.feed(octet(b"whole") + b"50 only part") == [(b"whole", b"")]
    assert f.finish() == [(b"only part", INCOMPLETE)]


def test_finish_of_oversize_partial_lf_message_has_both_markers() -> None:
    """An endless line cut by close: truncated to max_len, original length, and incomplete."""
    f = StreamFramer(MAX)
    assert f.feed(b"p" * 500) == []
    assert f.finish() == [(b"p" * MAX, truncated_marker(500) + INCOMPLETE)]
    assert f.truncated == 1


def test_finish_with_nothing_left_returns_nothing() -> None:
    """A clean close after whole frames, or after separators only, adds no message."""
    for data in (octet(b"a", b"b"), b"a\nb\n", b"a\n\r\n\x00", b""):
        f = StreamFramer(MAX)
        f.feed(data)
        assert f.finish() == []


# -- properties -----------------------------------------------------------------------------


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


lf_message = st.binary(min_size=1, max_size=150).filter(
    lambda m: b"\n" not in m and b"\x00" not in m and not m.endswith(b"\r")
)


@PROPERTY
@given(
    messages=st.lists(lf_message, min_size=1, max_size=20),
    terminators=st.lists(st.sampled_from([b"\n", b"\r\n", b"\x00"]), min_size=20, max_size=20),
    cuts=st.lists(st.integers(min_value=0), max_size=30),
)
def test_property_lf_framing_recovers_messages(
    messages: list[bytes], terminators: list[bytes], cuts: list[int]
) -> None:
    """Any non-empty messages without LF/NUL, any terminators, any chunking: exactly them."""
    # A first message starting "<digits> " is octet counting by definition.
    assume(re.match(rb"[1-9][0-9]{0,9} ", messages[0]) is None)
    data = b"".join(m + t for m, t in zip(messages, terminators, strict=False))
    frames, f = frame_chunks(chunked(data, cuts), max_len=100)
    assert f.mode == NON_TRANSPARENT
    expected = [
        (m, b"") if len(m) <= 100 else (m[:100], truncated_marker(len(m))) for m in messages
    ]
    assert frames == expected
    assert f.truncated == sum(len(m) > 100 for m in messages)
    assert f.framing_errors == 0


@PROPERTY
@given(
    messages=st.lists(st.binary(min_size=1, max_size=120), min_size=1, max_size=20),
    cuts=st.lists(st.integers(min_value=0), max_size=30),
)
def test_property_octet_framing_recovers_messages(messages: list[bytes], cuts: list[int]) -> None:
    """Any bytes at all, octet counted, any chunking: exactly the messages, oversize marked."""
    data = octet(*messages)
    frames, f = frame_chunks(chunked(data, cuts), max_len=MAX)
    assert f.mode == OCTET
    expected = [
        (m, b"") if len(m) <= MAX else (m[:MAX], truncated_marker(len(m))) for m in messages
    ]
    assert frames == expected
    assert f.truncated == sum(len(m) > MAX for m in messages)
    assert f.framing_errors == 0


@PROPERTY
@given(
    data=st.binary(max_size=600),
    cuts=st.lists(st.integers(min_value=0), max_size=40),
    max_len=st.integers(min_value=1, max_value=100),
)
def test_property_arbitrary_bytes_never_raise_and_stay_bounded(
    data: bytes, cuts: list[int], max_len: int
) -> None:
    """Feeding any bytes in any chunking never raises; every frame fits max_len."""
    f = StreamFramer(max_len)
    frames: list[Frame] = []
    for chunk in chunked(data, cuts):
        frames += f.feed(chunk)
        # Undecided digits, an unfinished length field plus frame, or an endless line's head.
        assert f.buffered <= 2 * max_len + 12
    frames += f.finish()
    for raw, marker in frames:
        assert isinstance(raw, bytes)
        assert len(raw) <= max_len
        assert marker in (b"", INCOMPLETE) or marker.startswith(b"\\[truncated ")
