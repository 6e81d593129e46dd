"""Shared by the format parser tests: sample lines, parsing them as the indexer does, mutations."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from logmaster.parsers import parse, read_syslog
from logmaster.parsers.base import Syslog

ISTANBUL = ZoneInfo("Europe/Istanbul")
RECEIVED = dt.datetime(2024, 12, 30, 12, 0, tzinfo=ISTANBUL)
SAMPLES_DIR = Path(__file__).parent / "samples"

# Fields parse() copies from the syslog header alone; the header parsers' tests check them.
HEADER_ONLY = {
    "event.created",
    "message",
    "log.syslog.priority",
    "log.syslog.facility.code",
    "log.syslog.appname",
    "log.syslog.procid",
    "log.syslog.msgid",
    "log.syslog.structured_data",
}


def samples(name: str) -> list[str]:
    """The lines of ``samples/<name>.txt`` (trailing spaces are part of real lines)."""
    return (SAMPLES_DIR / f"{name}.txt").read_text("utf-8").splitlines()


def at(*args: int, tz: dt.tzinfo = ISTANBUL) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tz)


def event_of(name: str, line: str) -> dict[str, Any]:
    """The event ``line`` (a line of the ``name`` samples) parses to, header-only fields dropped."""
    assert line in samples(name), f"not a line of samples/{name}.txt: {line!r}"
    event, understood = parse(line, zone=ISTANBUL, received=RECEIVED)
    assert understood, f"no parser understood {line!r}"
    return {k: v for k, v in event.items() if k not in HEADER_ONLY}


def messages(name: str) -> list[str]:
    """What the syslog header leaves of each sample line: what a format parser is given."""
    return [read_syslog(line, ISTANBUL, RECEIVED).message for line in samples(name)]


@st.composite
def mutations(draw: st.DrawFn, texts: list[str]) -> str:
    """One of ``texts`` with a few spans replaced by arbitrary text, or cut short."""
    text = draw(st.sampled_from(texts))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        if draw(st.integers(0, 5)) == 0:
            return text[:i]
        j = draw(st.integers(i, min(len(text), i + 24)))
        text = text[:i] + draw(st.text(max_size=12)) + text[j:]
    return text


def ist(*parts: int) -> dt.datetime:
    """A time in Europe/Istanbul."""
    return dt.datetime(*parts, tzinfo=ISTANBUL)


def offset(hours: float, *parts: int) -> dt.datetime:
    """A time at a fixed UTC offset."""
    return dt.datetime(*parts, tzinfo=dt.timezone(dt.timedelta(hours=hours)))


def fields_of(line: str, received: dt.datetime) -> dict[str, Any]:
    """What parse() makes of ``line``, minus receive time, raw message and log.syslog.*."""
    event, parsed = parse(line, zone=ISTANBUL, received=received)
    assert parsed, line
    return {
        k: v
        for k, v in event.items()
        if k not in ("event.created", "message") and not k.startswith("log.syslog.")
    }


@st.composite
def mutated_syslog(draw: st.DrawFn, bases: list[Syslog]) -> Syslog:
    """One of ``bases`` (header fields kept) with its message cut, spliced with noise, or both."""
    base = draw(st.sampled_from(bases))
    text = base.message
    i = draw(st.integers(0, len(text)))
    j = draw(st.integers(i, len(text)))
    noise = draw(st.text(max_size=20))
    return Syslog(
        message=text[:i] + noise + text[j:],
        format=base.format,
        hostname=base.hostname,
        appname=base.appname,
    )
