"""The parser registry stays honest, and no parser raises on anything."""

from __future__ import annotations

import pkgutil
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from sample_lines import ISTANBUL, RECEIVED, SAMPLES_DIR, mutations, samples

import logmaster.parsers as parsers
from logmaster.parsers import BY_NAME, NOT_FORMATS, REGISTRY, parse
from logmaster.parsers.base import Syslog

TESTS_DIR = Path(__file__).parent
ALL_SAMPLES = [line for name in BY_NAME for line in samples(name) if line.strip()]


def test_every_parser_module_is_registered_once() -> None:
    """Each format module of logmaster.parsers appears in REGISTRY exactly once, by its name."""
    modules = {m.name for m in pkgutil.iter_modules(parsers.__path__)} - NOT_FORMATS
    registered = [p.name for p in REGISTRY]
    assert sorted(registered) == sorted(modules)
    assert len(set(registered)) == len(registered)
    for parser in REGISTRY:
        assert type(parser).__module__ == f"logmaster.parsers.{parser.name}"


def test_every_parser_has_samples_and_tests() -> None:
    """A registered parser has a samples file with lines and a test module of its own."""
    for name in BY_NAME:
        assert (SAMPLES_DIR / f"{name}.txt").is_file(), f"no samples/{name}.txt"
        assert len([ln for ln in samples(name) if ln.strip()]) >= 5, f"too few {name} samples"
        assert (TESTS_DIR / f"test_{name}.py").is_file(), f"no test_{name}.py"


def test_every_sample_is_understood_by_its_own_parser() -> None:
    """Automatic detection picks the right format for every sample line of every parser."""
    for name in BY_NAME:
        for line in samples(name):
            if not line.strip():
                continue
            event, understood = parse(line, zone=ISTANBUL, received=RECEIVED)
            assert understood, f"{name}: not understood: {line!r}"
            assert event["event.dataset"].split(".")[0] == name.split("_")[0] or (
                event["event.dataset"].startswith(name)
            ), f"{name} sample claimed as {event['event.dataset']}: {line!r}"


def test_pinned_format_is_used_alone() -> None:
    """A device pinned to a format gets only that parser: other formats stay unparsed."""
    line = samples("fortigate")[0]
    _, understood = parse(line, zone=ISTANBUL, received=RECEIVED, pinned="mikrotik")
    assert not understood
    _, understood = parse(line, zone=ISTANBUL, received=RECEIVED, pinned="fortigate")
    assert understood


def test_unknown_line_keeps_header_and_message() -> None:
    """A line no parser knows is an event with the header fields and its message only."""
    event, understood = parse(
        b"<13>Nov 28 10:00:00 host1 app: nothing anyone parses", zone=ISTANBUL, received=RECEIVED
    )
    assert not understood
    assert event["message"] == "nothing anyone parses"
    assert event["host.name"] == "host1"
    assert "event.dataset" not in event


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_parse_never_raises_on_bytes(raw: bytes) -> None:
    """Arbitrary bytes through the whole pipeline (header + every parser) never raise."""
    event, _ = parse(raw, zone=ISTANBUL, received=RECEIVED)
    assert "message" in event


@settings(max_examples=300, deadline=None)
@given(mutations(ALL_SAMPLES))
def test_parse_never_raises_on_mutated_samples(text: str) -> None:
    """Samples of every format, cut and spliced, never make a parser raise."""
    parse(text, zone=ISTANBUL, received=RECEIVED)
    syslog = Syslog(message=text)
    for parser in REGISTRY:
        parser.parse(syslog)


@given(st.from_regex(r"\A[0-9]{1,4}(\.[0-9]{1,4}){2,4}\Z") | st.ip_addresses(v=4).map(str))
def test_ip_fast_path_agrees_with_ipaddress(text: str) -> None:
    """The IPv4 fast path accepts exactly what ipaddress accepts, and normalises the same."""
    import ipaddress

    from logmaster.parsers.base import _ip

    try:
        expected: str | None = str(ipaddress.ip_address(text))
    except ValueError:
        expected = None
    assert _ip(text) == expected
