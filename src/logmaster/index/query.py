"""The search language operators type, parsed into a small AST; and the --from/--to time parser.

Like Kibana/Lucene, kept small::

    query      = [ or_expr ] | "*"                       (empty or "*": match everything -> None)
    or_expr    = and_expr { ("OR" | "||") and_expr }
    and_expr   = not_expr { [ "AND" | "&&" ] not_expr }  (adjacent terms: implicit AND)
    not_expr   = { "NOT" | "!" | "-" } primary           ("-" must touch its term: -foo)
    primary    = "(" or_expr ")" | term
    term       = word | phrase | field ":" value
    word       = bare text, may end with one "*" (prefix search); never starts with "*"
    phrase     = '"' text '"'                            (\\" and \\\\ are the only escapes)
    value      = "*"                                     (the field exists)
               | bare | phrase                           (equality; bare may hold * ? wildcards)
               | ("[" | "{") end "TO" end ("]" | "}")    ([ ] inclusive, { } exclusive)
               | ("<" | "<=" | ">" | ">=") (bare | phrase)
    end        = "*" | bare | phrase                     ("*" = open end)

Precedence: NOT > AND > OR, so ``a b OR c`` is ``(a AND b) OR c``. Keywords are upper-case only;
``and`` is an ordinary word. Bare text stops at white space, parentheses, quotes, ``&&`` and
``||``; a parenthesis or quote glued to the end of a term is an error rather than a silent second
term. A word's first ``:`` makes it ``field:value`` and the value keeps any further colons, so
``src:2001:db8::/32`` and ``@timestamp:>2026-11-28T10:00`` need no quotes; text containing ``:``
is searched as a phrase (``"10:00:05"``). ``user:(a OR b)`` groups are not supported (an error
says to write ``user:a OR user:b``), to keep one meaning per parenthesis.

Field names are ECS names (any dotted name; names outside the index columns are read from the
``extra`` JSON as text) or the aliases of :func:`logmaster.index.fields.resolve_field`. Unquoted
values with ``*`` or ``?`` are wildcards; quoted values are always literal. Values are checked,
and normalised, by the field's kind so that backends can bind them as they are:

- ip: an address (op ``eq``) or a network (op ``cidr``), as :mod:`ipaddress` prints them; no
  wildcards and no ranges (a network is the range);
- int: whole numbers (``080`` -> ``80``); ranges and comparisons;
- mac: lower-case colon form (``aa-bb-...`` and ``aabb.ccdd.eeff`` are accepted);
- time: anything :func:`parse_time` accepts, resolved with the ``now``/``zone`` given to
  :func:`parse_query` and stored as ISO 8601 with its offset; a day on its own
  (``@timestamp:2026-11-28``, ``today``) means the whole day;
- text: as typed; ranges only on fields outside the columns, whose ends must be numbers.

Every malformed query raises :class:`QueryError` with the 0-based offset of the culprit; no other
exception escapes :func:`parse_query` or :func:`parse_time` whatever the input.

Time ranges are separate from the query: :func:`parse_time` reads one --from/--to value (``-15m``,
``-2h``, ``-7d``, ``-30s``, ``now``, ``today``, ``yesterday``, ISO 8601 with or without offset,
``28.11.2026``, ``28.11.2026 10:00[:05]``; no offset = in the operator's zone) and
:func:`time_range` applies the defaults (the last 15 minutes).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass
from typing import Literal, TypeAlias
from zoneinfo import ZoneInfo

from logmaster.index.fields import BY_FIELD, Kind, resolve_field
from logmaster.parsers.base import mac as normal_mac

__all__ = [
    "DEFAULT_SPAN",
    "And",
    "Match",
    "Node",
    "Not",
    "Op",
    "Or",
    "Phrase",
    "QueryError",
    "Word",
    "parse_query",
    "parse_time",
    "time_range",
]

Op = Literal["eq", "wildcard", "cidr", "range", "exists"]

_UTC = ZoneInfo("UTC")
DEFAULT_SPAN = dt.timedelta(minutes=15)  # time_range() without --from: the last 15 minutes
MAX_DEPTH = 50  # parentheses; deeper input would otherwise end in RecursionError

# Messages that say *where* the parser stopped read "... at position N"; messages about a value
# read "... (position N)" because they already name the value.
_WHERE = ("unexpected", "missing", "expected", "unterminated")


class QueryError(ValueError):
    """A query or time the user typed cannot be understood; ``position`` is a 0-based offset."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message, position)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        if self.position is None:
            return self.message
        if self.message.startswith(_WHERE):
            return f"{self.message} at position {self.position}"
        return f"{self.message} (position {self.position})"


@dataclass(frozen=True)
class Word:
    """A word of the message; ``prefix`` when typed as ``word*``."""

    text: str
    prefix: bool = False


@dataclass(frozen=True)
class Phrase:
    """Words of the message in this order."""

    text: str


@dataclass(frozen=True)
class Match:
    """A condition on a field. ``fields`` are the ECS names (any of them may match).

    ``eq``/``wildcard``/``cidr`` use ``value``; ``range`` uses ``low``/``high`` where None is an
    open end (its inclusive flag is then False); ``exists`` uses nothing.
    """

    field: str
    fields: tuple[str, ...]
    kind: Kind
    op: Op
    value: str | None = None
    low: str | None = None
    high: str | None = None
    low_inclusive: bool = False
    high_inclusive: bool = False


@dataclass(frozen=True)
class And:
    """Every item matches."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    """At least one item matches."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    """The item does not match (events without the field included)."""

    item: Node


Node: TypeAlias = Word | Phrase | Match | And | Or | Not


def parse_query(
    text: str,
    *,
    now: dt.datetime | None = None,
    zone: ZoneInfo | None = None,
    field_leading_wildcard: bool = True,
) -> Node | None:
    """The AST of ``text``, or None when it matches everything (empty, blank or ``*``).

    ``now`` and ``zone`` resolve the time values of the query like :func:`parse_time` does
    (defaults: the current time, UTC). ``field_leading_wildcard=False`` also rejects
    ``host:*gw``; a bare word may never start with ``*`` because the full-text index can only
    look words up by their beginning.
    """
    if text.strip() in ("", "*"):
        return None
    zone = zone or _UTC
    if now is None:
        now = dt.datetime.now(zone)
    return _Parser(_Lexer(text, field_leading_wildcard, now, zone)).parse()


# -- lexer: text -> tokens; terms come out already built as AST nodes -----------------------------

_FIELD_NAME = re.compile(r"(?:@|[^\W\d])[\w@-]*(?:\.[\w@-]+)*")
_INT = re.compile(r"[+-]?[0-9]{1,19}", re.ASCII)
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
# A time value naming a whole day: field:<day> then means that day, not its first microsecond.
_DAY = re.compile(
    r"today|yesterday|[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{4}",
    re.ASCII | re.IGNORECASE,
)
_INT64 = 2**63

_Kind = Literal["(", ")", "AND", "OR", "NOT", "term", "end"]
_KEYWORDS: dict[str, _Kind] = {"AND": "AND", "OR": "OR", "NOT": "NOT"}
_SYMBOLS: tuple[tuple[str, _Kind], ...] = (
    ("(", "("),
    (")", ")"),
    ("&&", "AND"),
    ("||", "OR"),
    ("!", "NOT"),
)


@dataclass(frozen=True)
class _Token:
    kind: _Kind
    pos: int
    text: str
    node: Node | None = None


class _Lexer:
    """Hands out one token at a time so that errors surface in reading order."""

    def __init__(
        self, text: str, field_leading_wildcard: bool, now: dt.datetime, zone: ZoneInfo
    ) -> None:
        self.text = text
        self.i = 0
        self.field_leading_wildcard = field_leading_wildcard
        self.now = now
        self.zone = zone

    def _skip_space(self, i: int) -> int:
        while i < len(self.text) and self.text[i].isspace():
            i += 1
        return i

    def _bare_end(self, i: int, stops: str) -> int:
        t = self.text
        while i < len(t) and not t[i].isspace() and t[i] not in stops:
            if t.startswith(("&&", "||"), i):
                break
            i += 1
        return i

    def _glued(self, i: int) -> None:
        # ``foo(bar)`` or ``ab"c"`` is almost certainly a typo; two terms would hide it.
        if i < len(self.text) and self.text[i] in '("':
            raise QueryError(f'unexpected "{self.text[i]}"', i)

    def _quoted(self, i: int) -> tuple[str, int]:
        """Content of the quoted string opening at ``i`` and the offset after its closing quote."""
        t, out, j = self.text, [], i + 1
        while j < len(t):
            c = t[j]
            # Only \" and \\ escape, so Windows paths ("C:\Temp") stay as typed.
            if c == "\\" and j + 1 < len(t) and t[j + 1] in '"\\':
                out.append(t[j + 1])
                j += 2
            elif c == '"':
                return "".join(out), j + 1
            else:
                out.append(c)
                j += 1
        raise QueryError("unterminated quote", i)

    def next(self) -> _Token:
        t = self.text
        i = self.i = self._skip_space(self.i)
        if i >= len(t):
            return _Token("end", len(t), "")
        c = t[i]
        for sym, kind in _SYMBOLS:
            if t.startswith(sym, i):
                self.i = i + len(sym)
                return _Token(kind, i, sym)
        if c == "-":
            if i + 1 >= len(t) or t[i + 1].isspace() or t[i + 1] == ")":
                raise QueryError('"-" must be directly followed by the term it excludes', i)
            self.i = i + 1
            return _Token("NOT", i, "-")
        if c == '"':
            content, self.i = self._quoted(i)
            self._glued(self.i)
            if not content.strip():
                raise QueryError("empty phrase", i)
            return _Token("term", i, t[i : self.i], Phrase(content))
        j = self._bare_end(i, '()":')
        if j < len(t) and t[j] == ":":
            node = self._field(i, j)
            return _Token("term", i, t[i : self.i], node)
        word = t[i:j]
        self.i = j
        if word in _KEYWORDS:
            return _Token(_KEYWORDS[word], i, word)
        self._glued(j)
        prefix = word.endswith("*")
        core = word[:-1] if prefix else word
        if core.startswith("*") or not core:
            raise QueryError(
                'a word cannot start with "*": that would read every message; '
                "search a field instead, e.g. host:*gw*",
                i,
            )
        if "*" in core:
            raise QueryError('"*" is only allowed at the end of a word', i + core.index("*"))
        return _Token("term", i, word, Word(core, prefix))

    # -- field:value ------------------------------------------------------------------------------

    def _field(self, start: int, colon: int) -> Match:
        t = self.text
        name = t[start:colon]
        if not name:
            raise QueryError('missing field name before ":"', start)
        if not _FIELD_NAME.fullmatch(name):
            raise QueryError(
                f'"{name}" is not a field name; put text containing ":" in quotes', start
            )
        v = colon + 1
        if v >= len(t) or t[v].isspace() or t[v] == ")":
            raise QueryError(f'missing value after "{name}:"', v)
        field = _Field(name, self)
        c = t[v]
        if c == "(":
            raise QueryError(
                f"field groups are not supported; write {name}:a OR {name}:b instead", v
            )
        if c in "[{":
            return self._range(field, v)
        if c in "<>":
            return self._compare(field, v)
        if c == '"':
            value, self.i = self._quoted(v)
            self._glued(self.i)
            return field.equal(value, v)
        end = self._bare_end(v, '()"')
        if end == v:
            raise QueryError(f'missing value after "{name}:"', v)
        self.i = end
        self._glued(end)
        return field.bare(t[v:end], v)

    def _end(self, i: int) -> tuple[str | None, int]:
        """One end of a range: (value or None for ``*``, offset after it)."""
        t = self.text
        if i >= len(t):
            raise QueryError("unexpected end of query", len(t))
        if t[i] == '"':
            return self._quoted(i)
        j = self._bare_end(i, "]}")
        if j == i:
            raise QueryError("expected a range end (a value or *)", i)
        value = t[i:j]
        if value == "*":
            return None, j
        if "*" in value:
            raise QueryError("wildcards are not allowed in a range", i)
        return value, j

    def _range(self, field: _Field, start: int) -> Match:
        t = self.text
        low_pos = self._skip_space(start + 1)
        low, after = self._end(low_pos)
        to = self._skip_space(after)
        glued = t[to + 2 : to + 3]  # "TO" must stand alone: [1 TOP] is not a range
        if to == after or not t.startswith("TO", to) or (glued and not glued.isspace()):
            raise QueryError('expected "TO" between the ends of the range', to)
        high_pos = self._skip_space(to + 2)
        high, after = self._end(high_pos)
        close = self._skip_space(after)
        if close >= len(t) or t[close] not in "]}":
            raise QueryError('expected "]" or "}" to close the range', close)
        self.i = close + 1
        self._glued(self.i)
        return field.range((low, low_pos, t[start] == "["), (high, high_pos, t[close] == "]"))

    def _compare(self, field: _Field, start: int) -> Match:
        t = self.text
        op = t[start : start + 2] if t.startswith(("<=", ">="), start) else t[start]
        v = start + len(op)
        if v >= len(t) or t[v].isspace() or t[v] in "()":
            raise QueryError(f'missing value after "{op}"', v)
        if t[v] == '"':
            value, self.i = self._quoted(v)
        else:
            self.i = self._bare_end(v, '()"')
            value = t[v : self.i]
            if not value:
                raise QueryError(f'missing value after "{op}"', v)
            if "*" in value:
                raise QueryError(f'a comparison needs a value, not a wildcard: "{value}"', v)
        self._glued(self.i)
        bound = (value, v, "=" in op)
        if op.startswith("<"):
            return field.range((None, v, False), bound)
        return field.range(bound, (None, v, False))


class _Field:
    """A typed field name; turns the values written after it into a checked :class:`Match`."""

    def __init__(self, name: str, lexer: _Lexer) -> None:
        self.name = name
        self.fields = resolve_field(name)
        col = BY_FIELD.get(self.fields[0])
        self.column = col is not None
        self.kind: Kind = col.kind if col is not None else "text"
        self.lexer = lexer

    def _match(
        self,
        op: Op,
        value: str | None = None,
        low: str | None = None,
        high: str | None = None,
        low_inclusive: bool = False,
        high_inclusive: bool = False,
    ) -> Match:
        return Match(
            self.name, self.fields, self.kind, op, value, low, high, low_inclusive, high_inclusive
        )

    def _bad(self, value: str, what: str, pos: int) -> QueryError:
        return QueryError(f'{self.name}: "{value}" is not {what}', pos)

    def bare(self, value: str, pos: int) -> Match:
        """An unquoted value: ``*`` alone means exists, ``*`` or ``?`` inside a wildcard."""
        if value == "*":
            return self._match("exists")
        if "*" not in value and "?" not in value:
            return self.equal(value, pos)
        if value.startswith(("*", "?")) and not self.lexer.field_leading_wildcard:
            raise QueryError(f"{self.name}: a value cannot start with a wildcard here", pos)
        if self.kind == "text":
            return self._match("wildcard", value)
        if self.kind == "mac":
            pattern = value.lower().replace("-", ":")
            if not set(pattern) <= set("0123456789abcdef:*?"):
                raise self._bad(value, "a MAC address pattern", pos)
            return self._match("wildcard", pattern)
        if self.kind == "ip":
            raise QueryError(
                f"{self.name}: wildcards do not work on IP fields; "
                "use a network such as 10.0.0.0/24",
                pos,
            )
        raise QueryError(f"{self.name}: wildcards only work on text fields", pos)

    def equal(self, value: str, pos: int) -> Match:
        if self.kind == "ip":
            try:
                if "%" in value:  # a scope id (fe80::1%eth0) would never equal a stored address
                    raise ValueError(value)
                if "/" in value:
                    return self._match("cidr", str(ipaddress.ip_network(value, strict=False)))
                return self._match("eq", str(ipaddress.ip_address(value)))
            except ValueError:
                raise self._bad(value, "an IP address or network", pos) from None
        if self.kind == "time" and _DAY.fullmatch(value.strip()):
            # A day on its own means all of it, as in Kibana: [midnight, next midnight).
            first = self._time(value, pos)
            try:
                next_day = first.date() + dt.timedelta(days=1)
            except OverflowError:
                raise self._bad(value, "a day that can be searched", pos) from None
            after = dt.datetime.combine(next_day, dt.time(), tzinfo=self.lexer.zone)
            return self._match("range", None, first.isoformat(), after.isoformat(), True, False)
        return self._match("eq", self._value(value, pos))

    def _time(self, value: str, pos: int) -> dt.datetime:
        try:
            return parse_time(value, self.lexer.now, self.lexer.zone)
        except QueryError:
            raise self._bad(value, f"a time; {_TIME_HELP}", pos) from None

    def _value(self, value: str, pos: int) -> str:
        """``value`` checked and normalised for this field's kind."""
        if self.kind == "int":
            if not _INT.fullmatch(value) or not -_INT64 <= int(value) < _INT64:
                raise self._bad(value, "a whole number", pos)
            return str(int(value))
        if self.kind == "mac":
            mac = normal_mac(value)
            if mac is None:
                raise self._bad(value, "a MAC address", pos)
            return mac
        if self.kind == "time":
            return self._time(value, pos).isoformat()
        return value

    def range(self, low: tuple[str | None, int, bool], high: tuple[str | None, int, bool]) -> Match:
        """``low``/``high`` are (value or None for an open end, position, inclusive)."""
        if low[0] is None and high[0] is None:
            return self._match("exists")
        if self.kind in ("ip", "mac") or (self.kind == "text" and self.column):
            hint = " (use a network such as 10.0.0.0/24)" if self.kind == "ip" else ""
            pos = low[1] if low[0] is not None else high[1]
            raise QueryError(
                f"{self.name}: ranges work on numbers and times, not on {self.kind} fields{hint}",
                pos,
            )
        ends: list[str | None] = []
        for value, pos, _ in (low, high):
            if value is None:
                ends.append(None)
            elif self.kind == "text" and not _NUMBER.fullmatch(value):
                # Fields outside the columns are compared as numbers by every backend.
                raise self._bad(value, "a number", pos)
            else:
                ends.append(self._value(value, pos))
        lo, hi = ends
        if lo is not None and hi is not None and self.kind == "int" and int(lo) > int(hi):
            raise QueryError(f"{self.name}: the range starts after it ends", low[1])
        return self._match(
            "range",
            None,
            lo,
            hi,
            lo is not None and low[2],
            hi is not None and high[2],
        )


# -- parser: recursive descent over the tokens ----------------------------------------------------


def _join(cls: type[And] | type[Or], items: list[Node]) -> Node:
    if len(items) == 1:
        return items[0]
    flat: list[Node] = []
    for item in items:
        flat.extend(item.items if isinstance(item, cls) else (item,))
    return cls(tuple(flat))


class _Parser:
    def __init__(self, lexer: _Lexer) -> None:
        self.lexer = lexer
        self.tok = lexer.next()
        self.depth = 0

    def _advance(self) -> None:
        self.tok = self.lexer.next()

    def _unexpected(self) -> QueryError:
        if self.tok.kind == "end":
            return QueryError("unexpected end of query", self.tok.pos)
        return QueryError(f'unexpected "{self.tok.text}"', self.tok.pos)

    def parse(self) -> Node:
        node = self._or()
        if self.tok.kind != "end":
            raise self._unexpected()
        return node

    def _or(self) -> Node:
        items = [self._and()]
        while self.tok.kind == "OR":
            self._advance()
            items.append(self._and())
        return _join(Or, items)

    def _and(self) -> Node:
        items = [self._not()]
        while self.tok.kind in ("AND", "NOT", "(", "term"):
            if self.tok.kind == "AND":
                self._advance()
            items.append(self._not())
        return _join(And, items)

    def _not(self) -> Node:
        count = 0  # a loop, not recursion: "!!!!…x" must not exhaust the stack
        while self.tok.kind == "NOT":
            count += 1
            self._advance()
        node = self._primary()
        for _ in range(count):
            node = Not(node)
        return node

    def _primary(self) -> Node:
        tok = self.tok
        if tok.kind == "term" and tok.node is not None:
            self._advance()
            return tok.node
        if tok.kind != "(":
            raise self._unexpected()
        if self.depth >= MAX_DEPTH:
            raise QueryError(f"parentheses nested more than {MAX_DEPTH} deep", tok.pos)
        self.depth += 1
        self._advance()
        node = self._or()
        if self.tok.kind != ")":
            raise QueryError('missing ")" to close this "("', tok.pos)
        self.depth -= 1
        self._advance()
        return node


# -- times: --from/--to, the API, and time values inside queries -----------------------------------

_RELATIVE = re.compile(r"-([0-9]{1,9})([smhd])", re.ASCII)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_TR_TIME = re.compile(
    r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4})(?:[ T]([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?)?",
    re.ASCII,
)
_TIME_HELP = (
    "use -15m, -2h, -7d, now, today, yesterday, 2026-11-28T10:00[+03:00] or 28.11.2026 10:00"
)


def parse_time(text: str, now: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """An aware datetime (in ``zone``) for what an operator typed; times without offset are in
    ``zone``, ``today``/``yesterday`` are local midnights. Raises QueryError otherwise."""
    value = text.strip()
    if now.tzinfo is None:
        now = now.replace(tzinfo=zone)
    try:
        result = _parse_time(value, now, zone)
    except (ValueError, OverflowError):
        raise QueryError(f'"{value}" is not a valid date or time; {_TIME_HELP}') from None
    if result is None:
        raise QueryError(f'"{value}" is not a time; {_TIME_HELP}')
    return result


def _parse_time(value: str, now: dt.datetime, zone: ZoneInfo) -> dt.datetime | None:
    word = value.lower()
    if word == "now":
        return now.astimezone(zone)
    if word in ("today", "yesterday"):
        day = now.astimezone(zone).date()
        if word == "yesterday":
            day -= dt.timedelta(days=1)
        return dt.datetime.combine(day, dt.time(), tzinfo=zone)
    m = _RELATIVE.fullmatch(value)
    if m:
        delta = dt.timedelta(**{_UNITS[m[2]]: int(m[1])})
        return (now - delta).astimezone(zone)
    m = _TR_TIME.fullmatch(value)
    if m:
        d, mo, y, h, mi, sec = (int(g or 0) for g in m.groups())
        return dt.datetime(y, mo, d, h, mi, sec, tzinfo=zone)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None  # not ISO either: the caller explains the accepted forms
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=zone)
    return parsed.astimezone(zone)


def time_range(
    from_text: str | None, to_text: str | None, now: dt.datetime, zone: ZoneInfo
) -> tuple[dt.datetime, dt.datetime]:
    """(start, end) for --from/--to: end defaults to now, start to DEFAULT_SPAN before end."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=zone)
    if to_text is not None and to_text.strip():
        end = parse_time(to_text, now, zone)
    else:
        end = now.astimezone(zone)
    if from_text is not None and from_text.strip():
        start = parse_time(from_text, now, zone)
    else:
        try:
            start = end - DEFAULT_SPAN
        except OverflowError:  # --to 0001-01-01: nothing before it either
            start = end
    if start > end:
        raise QueryError(
            f"the start ({start.isoformat()}) is after the end ({end.isoformat()}), "
            "so nothing can match; swap the two times"
        )
    return start, end
