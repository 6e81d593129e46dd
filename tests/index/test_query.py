"""The search language: terms, fields, values by kind, precedence, errors; and --from/--to times."""

from __future__ import annotations

import contextlib
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logmaster.index.query import (
    And,
    Match,
    Node,
    Not,
    Or,
    Phrase,
    QueryError,
    Word,
    parse_query,
    parse_time,
    time_range,
)

IST = ZoneInfo("Europe/Istanbul")
NOW = dt.datetime(2026, 11, 28, 10, 30, 15, tzinfo=IST)

PROPERTY = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse(text: str, **kw: bool) -> Node | None:
    return parse_query(text, now=NOW, zone=IST, **kw)


def match(text: str) -> Match:
    node = parse(text)
    assert isinstance(node, Match), node
    return node


def error(text: str, **kw: bool) -> QueryError:
    with pytest.raises(QueryError) as info:
        parse(text, **kw)
    return info.value


def w(text: str) -> Word:
    return Word(text, False)


# -- match everything ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\t\n", "*", "  *  "])
def test_empty_blank_or_star_matches_everything(text: str) -> None:
    """An empty, blank or lone-* query parses to None (no condition)."""
    assert parse(text) is None


# -- full text ----------------------------------------------------------------------------------


def test_bare_word_searches_the_message() -> None:
    """A bare word is a Word without prefix."""
    assert parse("denied") == Word("denied", False)


def test_trailing_star_makes_a_prefix_word() -> None:
    """``word*`` is a prefix search."""
    assert parse("deni*") == Word("deni", True)


def test_quoted_phrase_keeps_spaces_and_escapes() -> None:
    """A phrase keeps its words in order; only \\" and \\\\ are escapes."""
    assert parse('"logged in"') == Phrase("logged in")
    assert parse(r'"say \"hi\" \\ C:\Temp"') == Phrase(r'say "hi" \ C:\Temp')


def test_star_inside_a_phrase_is_literal() -> None:
    """Quoting turns wildcards off."""
    assert parse('"foo*"') == Phrase("foo*")


def test_lower_case_keywords_are_words() -> None:
    """``and``/``or``/``not`` are ordinary words; only upper-case ones are operators."""
    assert parse("a and b") == And((w("a"), w("and"), w("b")))


def test_non_ascii_words() -> None:
    """Turkish text is searched like any other."""
    assert parse("kullanıcı giriş*") == And((w("kullanıcı"), Word("giriş", True)))


# -- fields -------------------------------------------------------------------------------------


def test_ecs_field_equality() -> None:
    """``field:value`` on an ECS text column keeps the value as typed."""
    assert match("event.action:accept") == Match(
        "event.action", ("event.action",), "text", "eq", "accept"
    )


@pytest.mark.parametrize(
    ("typed", "fields"),
    [
        ("src", ("source.ip",)),
        ("dst", ("destination.ip",)),
        ("ip", ("source.ip", "destination.ip", "client.ip", "source.nat.ip", "destination.nat.ip")),
        ("user", ("user.name",)),
        ("device", ("observer.name",)),
        ("host", ("host.name",)),
        ("app", ("log.syslog.appname",)),
        ("sev", ("log.syslog.severity.code",)),
        ("src.port", ("source.port",)),
        ("dst.port", ("destination.port",)),
        ("mac", ("source.mac", "client.mac")),
    ],
)
def test_aliases_resolve_to_ecs_fields(typed: str, fields: tuple[str, ...]) -> None:
    """Operator aliases map to the ECS fields of fields.resolve_field; ``field`` stays as typed."""
    values = {"ip": "1.2.3.4", "int": "1", "mac": "aa:bb:cc:dd:ee:ff", "text": "x"}
    node = parse(f"{typed}:*")
    assert isinstance(node, Match)
    node = match(f"{typed}:{values[node.kind]}")
    assert node.field == typed
    assert node.fields == fields


def test_unknown_field_is_text() -> None:
    """A field outside the columns (keyvalue.foo) is a text field."""
    assert match("keyvalue.foo:bar") == Match(
        "keyvalue.foo", ("keyvalue.foo",), "text", "eq", "bar"
    )


def test_quoted_field_value() -> None:
    """A quoted value may hold spaces and stars and is compared literally."""
    assert match('user:"ali veli*"') == Match("user", ("user.name",), "text", "eq", "ali veli*")


def test_value_keeps_colons_after_the_first() -> None:
    """Only the first colon separates field and value."""
    assert match("log.syslog.msgid:a:b:c").value == "a:b:c"


def test_field_exists() -> None:
    """``field:*`` asks for events that have the field."""
    assert match("user.name:*") == Match("user.name", ("user.name",), "text", "exists")


def test_wildcards_in_field_values() -> None:
    """``*`` and ``?`` in an unquoted value make a wildcard match, leading ``*`` included."""
    assert match("user:ali*") == Match("user", ("user.name",), "text", "wildcard", "ali*")
    assert match("host:*gw*").value == "*gw*"
    assert match("user:al?ce").op == "wildcard"


def test_leading_wildcard_in_fields_can_be_refused() -> None:
    """field_leading_wildcard=False rejects ``host:*gw`` but still allows ``host:gw*``."""
    assert error("host:*gw", field_leading_wildcard=False).position == 5
    assert parse("host:gw*", field_leading_wildcard=False) == Match(
        "host", ("host.name",), "text", "wildcard", "gw*"
    )


# -- IP, MAC, int, time values ------------------------------------------------------------------


def test_single_ip_is_eq_normalised() -> None:
    """A single address is op eq in ipaddress's form."""
    assert match("src:10.0.0.1") == Match("src", ("source.ip",), "ip", "eq", "10.0.0.1")
    assert match("dst:2001:DB8:0:0::1").value == "2001:db8::1"


def test_ipv4_cidr() -> None:
    """A network is op cidr, normalised with strict=False."""
    assert match("src:10.1.2.3/8") == Match("src", ("source.ip",), "ip", "cidr", "10.0.0.0/8")


def test_ipv6_cidr_with_colons() -> None:
    """IPv6 networks need no quotes although they contain colons."""
    assert match("src:2001:db8::/32") == Match("src", ("source.ip",), "ip", "cidr", "2001:db8::/32")
    assert match("ip:2001:DB8:1::5/48").value == "2001:db8:1::/48"


def test_ipv6_cidr_inside_parentheses_and_or() -> None:
    """An IPv6 value ends at the closing parenthesis."""
    node = parse("(src:fe80::/10 OR dst:::1)")
    assert node == Or(
        (
            Match("src", ("source.ip",), "ip", "cidr", "fe80::/10"),
            Match("dst", ("destination.ip",), "ip", "eq", "::1"),
        )
    )


def test_quoted_ip_is_validated_too() -> None:
    """Quotes do not switch validation off on IP fields."""
    assert match('src:"192.168.1.1"').value == "192.168.1.1"


@pytest.mark.parametrize(
    "typed", ["AA-BB-CC-DD-EE-FF", "aabb.ccdd.eeff", "AA:BB:CC:DD:EE:FF", "aabbccddeeff"]
)
def test_mac_normalised_to_lower_colon_form(typed: str) -> None:
    """MAC values in any common notation become aa:bb:cc:dd:ee:ff."""
    assert match(f"mac:{typed}") == Match(
        "mac", ("source.mac", "client.mac"), "mac", "eq", "aa:bb:cc:dd:ee:ff"
    )


def test_mac_wildcard_is_lower_case_colon() -> None:
    """A MAC prefix pattern is normalised like a MAC."""
    assert match("source.mac:AA-BB-CC*") == Match(
        "source.mac", ("source.mac",), "mac", "wildcard", "aa:bb:cc*"
    )


def test_int_values_are_normalised() -> None:
    """Whole numbers on int fields lose leading zeros."""
    assert match("dst.port:0443") == Match("dst.port", ("destination.port",), "int", "eq", "443")


def test_inclusive_range() -> None:
    """``[a TO b]`` includes both ends."""
    assert match("dst.port:[1 TO 1024]") == Match(
        "dst.port", ("destination.port",), "int", "range", None, "1", "1024", True, True
    )


def test_exclusive_and_mixed_ranges() -> None:
    """``{a TO b}`` excludes both ends; brackets may be mixed."""
    node = match("destination.port:{1 TO 1024}")
    assert (node.low, node.high, node.low_inclusive, node.high_inclusive) == (
        "1",
        "1024",
        False,
        False,
    )
    node = match("destination.port:[1 TO 1024}")
    assert (node.low_inclusive, node.high_inclusive) == (True, False)


def test_open_range_ends() -> None:
    """``*`` is an open end (None, not inclusive); both open means the field exists."""
    node = match("sev:[* TO 3]")
    assert (node.low, node.high, node.low_inclusive, node.high_inclusive) == (
        None,
        "3",
        False,
        True,
    )
    node = match("sev:[4 TO *]")
    assert (node.low, node.high, node.low_inclusive, node.high_inclusive) == (
        "4",
        None,
        True,
        False,
    )
    assert match("sev:[* TO *]").op == "exists"


@pytest.mark.parametrize(
    ("text", "low", "high", "low_inc", "high_inc"),
    [
        ("sev:<=3", None, "3", False, True),
        ("sev:<5", None, "5", False, False),
        ("dst.port:>1024", "1024", None, False, False),
        ("dst.port:>=7", "7", None, True, False),
    ],
)
def test_comparisons_are_half_open_ranges(
    text: str, low: str | None, high: str | None, low_inc: bool, high_inc: bool
) -> None:
    """``<``, ``<=``, ``>``, ``>=`` are ranges with one open end."""
    node = match(text)
    assert node.op == "range"
    assert (node.low, node.high, node.low_inclusive, node.high_inclusive) == (
        low,
        high,
        low_inc,
        high_inc,
    )


def test_numeric_range_on_a_field_outside_the_columns() -> None:
    """Fields in ``extra`` compare as numbers, so their range ends must be numbers."""
    assert match("keyvalue.bytes:>1000.5").low == "1000.5"
    assert "not a number" in error("keyvalue.bytes:>lots").message


def test_time_comparison_accepts_iso_and_turkish_dates() -> None:
    """Time values become ISO 8601 with offset; without one they are in the given zone."""
    assert match("@timestamp:>=2026-11-28T10:00").low == "2026-11-28T10:00:00+03:00"
    assert match("@timestamp:<2026-11-28T07:00:00Z").high == "2026-11-28T10:00:00+03:00"
    assert match('event.created:>="28.11.2026 09:15"').low == "2026-11-28T09:15:00+03:00"


def test_time_range_with_relative_and_now() -> None:
    """Relative times in a query are resolved against ``now``."""
    node = match("@timestamp:[-1h TO now]")
    assert (node.low, node.high) == ("2026-11-28T09:30:15+03:00", "2026-11-28T10:30:15+03:00")


def test_a_bare_day_means_the_whole_day() -> None:
    """``@timestamp:<day>`` is [midnight, next midnight) in the zone."""
    expected = ("2026-11-28T00:00:00+03:00", "2026-11-29T00:00:00+03:00", True, False)
    for text in ("@timestamp:2026-11-28", "@timestamp:28.11.2026", "@timestamp:today"):
        node = match(text)
        assert node.op == "range"
        assert (node.low, node.high, node.low_inclusive, node.high_inclusive) == expected


def test_exact_time_equality() -> None:
    """A time with a clock is an exact instant."""
    assert match("@timestamp:2026-11-28T10:00:05+03:00").value == "2026-11-28T10:00:05+03:00"


# -- boolean structure --------------------------------------------------------------------------


def test_implicit_and_between_adjacent_terms() -> None:
    """Adjacent terms are ANDed."""
    assert parse("a b c") == And((w("a"), w("b"), w("c")))


def test_and_or_not_keywords_and_symbols_agree() -> None:
    """AND/&&, OR/||, NOT/!/- spell the same operators."""
    words = parse("NOT a AND b OR c")
    assert words == Or((And((Not(w("a")), w("b"))), w("c")))
    assert parse("!a && b || c") == words
    assert parse("-a b || c") == words


def test_precedence_not_over_and_over_or() -> None:
    """``a OR b c`` is ``a OR (b AND c)``; NOT binds to the next term only."""
    assert parse("a OR b c") == Or((w("a"), And((w("b"), w("c")))))
    assert parse("a OR NOT b AND c") == Or((w("a"), And((Not(w("b")), w("c")))))


def test_parentheses_override_precedence() -> None:
    """Parentheses group; an AND of an AND is flattened."""
    assert parse("(a OR b) c") == And((Or((w("a"), w("b"))), w("c")))
    assert parse("a AND (b AND c)") == And((w("a"), w("b"), w("c")))
    assert parse("((a))") == w("a")


def test_not_of_a_group_and_double_negation() -> None:
    """NOT applies to groups; repeated NOTs nest."""
    assert parse("-(a OR b)") == Not(Or((w("a"), w("b"))))
    assert parse("NOT !a") == Not(Not(w("a")))


def test_operators_need_no_spaces_around_groups() -> None:
    """``&&``/``||`` end a word; parentheses and quotes separate terms."""
    assert parse("a&&b||(c)") == Or((And((w("a"), w("b"))), w("c")))
    assert parse('(a)"b c"') == And((w("a"), Phrase("b c")))


def test_mixed_real_query() -> None:
    """A typical operator query parses to the expected tree."""
    node = parse('src:10.0.0.0/8 AND dst.port:[1 TO 1024] AND NOT user:admin* "logged in"')
    assert node == And(
        (
            Match("src", ("source.ip",), "ip", "cidr", "10.0.0.0/8"),
            Match("dst.port", ("destination.port",), "int", "range", None, "1", "1024", True, True),
            Not(Match("user", ("user.name",), "text", "wildcard", "admin*")),
            Phrase("logged in"),
        )
    )


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ("a OR b)", 6, 'unexpected ")"'),
        ("(a OR b", 0, 'missing ")"'),
        ("a AND", 5, "unexpected end of query"),
        ("OR a", 0, 'unexpected "OR"'),
        ("a () b", 3, 'unexpected ")"'),
        ("src:10.0.0.300", 4, 'src: "10.0.0.300" is not an IP address or network'),
        ('dst:"2001:db8::/129"', 4, "is not an IP address or network"),
        ("src:", 4, 'missing value after "src:"'),
        ("*admin", 0, 'cannot start with "*"'),
        ("ad*min", 2, '"*" is only allowed at the end'),
        ('say "hi', 4, "unterminated quote"),
        ("dst.port:[1 TO", 14, "unexpected end of query"),
        ("dst.port:[1 1024]", 12, 'expected "TO"'),
        ("dst.port:[1 TO 2", 16, 'expected "]" or "}"'),
        ("dst.port:http", 9, "not a whole number"),
        ("dst.port:[1024 TO 1]", 10, "starts after it ends"),
        ("mac:aa:bb", 4, "not a MAC address"),
        ("src:10.0.*", 4, "use a network"),
        ("src:[10.0.0.1 TO 10.0.0.9]", 5, "ranges work on numbers and times"),
        ("sev:<=", 6, 'missing value after "<="'),
        ("@timestamp:>soon", 12, "is not a time"),
        ("10:00", 0, "is not a field name"),
        (":x", 0, "missing field name"),
        ("user:(a OR b)", 5, "field groups are not supported"),
        ("foo(bar)", 3, 'unexpected "("'),
        ("a - b", 2, '"-" must be directly followed'),
        ('""', 0, "empty phrase"),
        ("NOT", 3, "unexpected end of query"),
    ],
)
def test_malformed_queries_report_message_and_position(
    text: str, position: int, words: str
) -> None:
    """Each malformed query raises QueryError at the culprit's 0-based offset."""
    exc = error(text)
    assert exc.position == position
    assert words in str(exc)


def test_error_strings_read_naturally() -> None:
    """Where-errors read "at position N", value errors "(position N)"."""
    assert str(error("(a OR b) c)")) == 'unexpected ")" at position 10'
    assert str(error('src:"10.0.0.300"')) == (
        'src: "10.0.0.300" is not an IP address or network (position 4)'
    )


def test_errors_are_reported_in_reading_order() -> None:
    """The first problem in the text is the one reported."""
    assert error(") src:999.1.1.1").position == 0


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    """Thousands of parentheses or NOTs never hit the recursion limit."""
    assert "nested" in error("(" * 5000 + "a" + ")" * 5000).message
    node = parse("!" * 5000 + "a")
    for _ in range(5000):
        assert isinstance(node, Not)
        node = node.item
    assert node == w("a")


def test_query_error_is_a_value_error() -> None:
    """Callers that catch ValueError also catch QueryError."""
    assert isinstance(error(")"), ValueError)


QUERY_PIECES = st.sampled_from(
    [
        "a",
        "b*",
        "*",
        "?",
        "-",
        "!",
        "&&",
        "||",
        "AND",
        "OR",
        "NOT",
        "TO",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        '"',
        "\\",
        ":",
        "<",
        ">",
        "=",
        "/",
        ".",
        " ",
        "src:",
        "dst.port:",
        "mac:",
        "@timestamp:",
        "keyvalue.x:",
        "user:",
        "10.0.0.1",
        "::1",
        "2001:db8::/32",
        "/33",
        "999",
        "-15m",
        "today",
        "28.11.2026",
        "2026-11-28T10:00",
        "aa-bb-cc-dd-ee-ff",
        "ı",
        "\u0663",
        "\x00",
        "\t",
    ]
)


@PROPERTY
@given(st.one_of(st.text(), st.lists(QUERY_PIECES, max_size=30).map("".join)))
def test_any_text_parses_or_raises_query_error(text: str) -> None:
    """Whatever is typed, parse_query returns a node/None or raises QueryError, nothing else."""
    try:
        parse(text)
    except QueryError as exc:
        assert exc.position is not None
        assert 0 <= exc.position <= len(text)


# -- parse_time / time_range --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("-15m", NOW - dt.timedelta(minutes=15)),
        ("-2h", NOW - dt.timedelta(hours=2)),
        ("-7d", NOW - dt.timedelta(days=7)),
        ("-30s", NOW - dt.timedelta(seconds=30)),
        ("today", dt.datetime(2026, 11, 28, tzinfo=IST)),
        ("Yesterday", dt.datetime(2026, 11, 27, tzinfo=IST)),
        ("2026-11-28", dt.datetime(2026, 11, 28, tzinfo=IST)),
        ("2026-11-28T10:00", dt.datetime(2026, 11, 28, 10, 0, tzinfo=IST)),
        ("2026-11-28 10:00:05", dt.datetime(2026, 11, 28, 10, 0, 5, tzinfo=IST)),
        ("2026-11-28T07:00:00Z", dt.datetime(2026, 11, 28, 10, 0, tzinfo=IST)),
        ("2026-11-28T10:00:00+01:00", dt.datetime(2026, 11, 28, 12, 0, tzinfo=IST)),
        ("28.11.2026", dt.datetime(2026, 11, 28, tzinfo=IST)),
        ("28.11.2026 10:00", dt.datetime(2026, 11, 28, 10, 0, tzinfo=IST)),
        (" 28.11.2026 10:00:05 ", dt.datetime(2026, 11, 28, 10, 0, 5, tzinfo=IST)),
        ("1.2.2026", dt.datetime(2026, 2, 1, tzinfo=IST)),
    ],
)
def test_parse_time_accepts_relative_absolute_and_turkish(text: str, expected: dt.datetime) -> None:
    """Every documented form resolves to the right instant, in the zone."""
    value = parse_time(text, NOW, IST)
    assert value == expected
    assert value.tzinfo == IST


def test_today_is_local_midnight_not_utc_midnight() -> None:
    """At 01:00 Istanbul (22:00 UTC the day before) today is the Istanbul day."""
    now = dt.datetime(2026, 11, 27, 22, 0, tzinfo=dt.UTC)
    assert parse_time("today", now, IST) == dt.datetime(2026, 11, 28, tzinfo=IST)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "is not a time"),
        ("soon", "is not a time"),
        ("-15x", "is not a time"),
        ("15m", "is not a time"),
        ("31.02.2026", "is not a valid date or time"),
        ("28.11.2026 25:00", "is not a valid date or time"),
        ("-999999999d", "is not a valid date or time"),
    ],
)
def test_parse_time_rejects_with_a_clear_message(text: str, words: str) -> None:
    """Unknown or impossible times raise QueryError listing the accepted forms."""
    with pytest.raises(QueryError) as info:
        parse_time(text, NOW, IST)
    assert words in str(info.value)
    assert "-15m" in str(info.value)


@PROPERTY
@given(st.text())
def test_parse_time_never_raises_anything_else(text: str) -> None:
    """parse_time returns an aware datetime or raises QueryError."""
    with contextlib.suppress(QueryError):
        assert parse_time(text, NOW, IST).tzinfo is not None


def test_time_range_defaults_to_the_last_15_minutes() -> None:
    """No --from/--to: [now - 15 min, now]."""
    assert time_range(None, None, NOW, IST) == (NOW - dt.timedelta(minutes=15), NOW)
    assert time_range("", "  ", NOW, IST) == (NOW - dt.timedelta(minutes=15), NOW)


def test_time_range_with_only_one_end() -> None:
    """--from alone ends now; --to alone starts 15 minutes before it."""
    assert time_range("today", None, NOW, IST) == (dt.datetime(2026, 11, 28, tzinfo=IST), NOW)
    end = dt.datetime(2026, 11, 27, 12, 0, tzinfo=IST)
    assert time_range(None, "27.11.2026 12:00", NOW, IST) == (end - dt.timedelta(minutes=15), end)


def test_time_range_rejects_start_after_end() -> None:
    """--from later than --to is an error that says so."""
    with pytest.raises(QueryError, match="after the end"):
        time_range("today", "yesterday", NOW, IST)
