"""The query language (``index/query.py``) evaluated on one event in memory, for live tail.

:func:`compile_predicate` turns the AST into a function ``event -> bool`` that means what the
SQL of ``index/sql.py`` means, so a tail shows the lines a search would find:

- words and phrases: the message's words (letters and digits; ``_`` and punctuation separate
  them), case and diacritics folded as SQLite FTS5's ``unicode61`` tokenizer does; a phrase is
  its words consecutive; ``word*`` a prefix of one word;
- text fields: equal ignoring case; wildcards (``*``, ``?``) ignoring case (SQLite's LIKE);
- ip fields: the same address, or inside the network; int: numbers; mac: normalised form;
- a field absent from the event matches nothing, so ``NOT`` keeps such events.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import re
import unicodedata
from collections.abc import Callable
from typing import Any

from logmaster.index import query as q
from logmaster.index.fields import BY_FIELD
from logmaster.parsers.base import mac as normal_mac

Event = dict[str, Any]
Predicate = Callable[[Event], bool]

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


@functools.lru_cache(maxsize=4096)
def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """The message's words as the full-text index sees them."""
    return _TOKEN.findall(_fold(text))


def compile_predicate(node: q.Node | None) -> Predicate:
    """A function telling whether an event matches ``node`` (None matches everything)."""
    if node is None:
        return lambda _event: True
    if isinstance(node, q.And):
        parts = [compile_predicate(i) for i in node.items]
        return lambda event: all(p(event) for p in parts)
    if isinstance(node, q.Or):
        parts = [compile_predicate(i) for i in node.items]
        return lambda event: any(p(event) for p in parts)
    if isinstance(node, q.Not):
        inner = compile_predicate(node.item)
        return lambda event: not inner(event)
    if isinstance(node, q.Word):
        return _text(node.text, node.prefix)
    if isinstance(node, q.Phrase):
        return _text(node.text, False)
    if isinstance(node, q.Match):
        tests = [_match(node, f) for f in node.fields]
        if len(tests) == 1:
            return tests[0]
        return lambda event: any(t(event) for t in tests)
    raise TypeError(f"unknown query node {node!r}")


def _text(text: str, prefix: bool) -> Predicate:
    wanted = words(text)
    if not wanted:
        # Only punctuation: the SQL compares the text itself (LIKE, case-insensitive).
        needle = text.lower()
        return lambda event: needle in str(event.get("message") or "").lower()
    n = len(wanted)

    def test(event: Event) -> bool:
        have = words(str(event.get("message") or ""))
        for i in range(len(have) - n + 1):
            if have[i : i + n - 1] != wanted[:-1]:
                continue
            last = have[i + n - 1]
            if last == wanted[-1] or (prefix and last.startswith(wanted[-1])):
                return True
        return False

    return test


def _match(node: q.Match, field: str) -> Predicate:
    if field == "message":
        return _text(node.value or "", node.op == "wildcard")
    col = BY_FIELD.get(field)
    kind = col.kind if col is not None else "text"
    op = node.op
    if op == "exists":
        return lambda event: event.get(field) is not None
    if op == "range":
        convert: Callable[[Any], Any] = _time if kind == "time" else _number
        low = None if node.low in (None, "*") else convert(node.low or "")
        high = None if node.high in (None, "*") else convert(node.high or "")

        def in_range(event: Event) -> bool:
            value = event.get(field)
            if value is None:
                return False
            try:
                have = convert(value)
            except (TypeError, ValueError):
                return False
            if low is not None and (have < low or (have == low and not node.low_inclusive)):
                return False
            return not (
                high is not None and (have > high or (have == high and not node.high_inclusive))
            )

        return in_range
    if op == "wildcard":
        pattern = re.compile(
            "".join(
                ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in node.value or ""
            ),
            re.IGNORECASE | re.DOTALL,
        )
        return lambda event: (v := event.get(field)) is not None and bool(pattern.fullmatch(str(v)))
    if kind == "ip":
        return _ip(field, node)
    if kind == "int":
        want_int = int(node.value or 0)
        return lambda event: _safe(lambda: int(event[field]) == want_int)
    if kind == "mac":
        want_mac = normal_mac(node.value or "") or node.value
        return lambda event: (v := event.get(field)) is not None and normal_mac(str(v)) == want_mac
    if kind == "time":
        want_time = _time(node.value or "")
        return lambda event: _safe(lambda: _time(event[field]) == want_time)
    want_text = (node.value or "").lower()
    return lambda event: (v := event.get(field)) is not None and str(v).lower() == want_text


def _ip(field: str, node: q.Match) -> Predicate:
    if node.op == "cidr":
        net = ipaddress.ip_network(node.value or "", strict=False)

        def inside(event: Event) -> bool:
            addr = _address(event.get(field))
            return addr is not None and addr.version == net.version and addr in net

        return inside
    want = _address(node.value)
    return lambda event: want is not None and _address(event.get(field)) == want


def _address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if value is None:
        return None
    try:
        addr = ipaddress.ip_address(str(value))
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped  # the index stores IPv4 as mapped IPv6: the same address
    return addr


def _safe(test: Callable[[], bool]) -> bool:
    try:
        return test()
    except (KeyError, TypeError, ValueError):
        return False


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError("not a number")
    return float(value)


def _time(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
