"""Turning a parsed query (``index/query.py``) into a SQL condition, shared by the backends.

:class:`Compiler` walks the AST and asks its subclass for the few things that differ between
SQL dialects: how an IP value is bound, how a field outside the columns is read from ``extra``,
how full-text search is written, the parameter placeholder. Values are always bound as
parameters, never pasted into the SQL.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from logmaster.index import query as q
from logmaster.index.fields import BY_FIELD, Column, micros
from logmaster.parsers.base import mac as normal_mac

WORD = re.compile(r"\w+", re.UNICODE)


class Compiler:
    placeholder = "?"
    like = "LIKE"

    def __init__(self) -> None:
        self.params: list[Any] = []

    # -- dialect hooks ------------------------------------------------------------------------

    def ip_param(self, text: str) -> Any:
        raise NotImplementedError

    def extra_text(self, field: str) -> str:
        raise NotImplementedError

    def extra_number(self, field: str) -> str:
        raise NotImplementedError

    def fulltext(self, tokens: list[str], prefix: bool) -> str:
        """Condition: the message contains ``tokens`` in sequence (last one as prefix)."""
        raise NotImplementedError

    # -- walking ------------------------------------------------------------------------------

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return self.placeholder

    def compile(self, node: q.Node | None) -> str:
        if node is None:
            return "1=1"
        if isinstance(node, q.And):
            return "(" + " AND ".join(self.compile(i) for i in node.items) + ")"
        if isinstance(node, q.Or):
            return "(" + " OR ".join(self.compile(i) for i in node.items) + ")"
        if isinstance(node, q.Not):
            # NULL (field absent) must count as "not matching", so NOT keeps those events.
            return f"NOT COALESCE({self.compile(node.item)}, FALSE)"
        if isinstance(node, q.Word):
            return self._text(node.text, node.prefix)
        if isinstance(node, q.Phrase):
            return self._text(node.text, False)
        if isinstance(node, q.Match):
            parts = [self._match(node, f) for f in node.fields]
            return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"
        raise TypeError(f"unknown query node {node!r}")

    def _text(self, text: str, prefix: bool) -> str:
        tokens = WORD.findall(text)
        if not tokens:
            # Only punctuation ("--", "->"): no word to look up, compare the text itself.
            return f"message {self.like} {self.bind('%' + _escape_like(text) + '%')} ESCAPE '\\'"
        return self.fulltext(tokens, prefix)

    def _match(self, node: q.Match, field: str) -> str:
        if field == "message":
            return self._text(node.value or "", node.op == "wildcard")
        col = BY_FIELD.get(field)
        if col is None:
            return self._extra(node, field)
        return self._column(node, col)

    def _column(self, node: q.Match, col: Column) -> str:
        name = col.name
        if node.op == "exists":
            return f"{name} IS NOT NULL"
        if col.kind == "ip":
            if node.op == "cidr":
                low, high = self.ip_range(node.value or "")
                return f"{name} BETWEEN {low} AND {high}"
            if node.op == "eq":
                return f"{name} = {self.bind(self.ip_param(node.value or ''))}"
        if node.op == "range":
            return self._range(lambda: name, node, col.kind)
        if node.op == "wildcard":
            pattern = _escape_like(node.value or "").replace("*", "%").replace("?", "_")
            return f"{name} {self.like} {self.bind(pattern)} ESCAPE '\\'"
        value: Any = node.value
        if col.kind == "int":
            value = int(value or 0)
        elif col.kind == "mac":
            value = normal_mac(value) or value
        elif col.kind == "time":
            value = micros(_time(value or ""))
        elif col.kind == "text":
            return f"lower({name}) = {self.bind((value or '').lower())}"
        return f"{name} = {self.bind(value)}"

    def ip_range(self, cidr: str) -> tuple[str, str]:
        raise NotImplementedError

    def _range(self, expr: Callable[[], str], node: q.Match, kind: str) -> str:
        """``expr`` is called once per use: it may bind a parameter of its own."""
        conds = []
        for bound, inclusive, op in (
            (node.low, node.low_inclusive, ">"),
            (node.high, node.high_inclusive, "<"),
        ):
            if bound is None or bound == "*":
                continue
            value: Any = micros(_time(bound)) if kind == "time" else _number(bound)
            left = expr()
            conds.append(f"{left} {op}{'=' if inclusive else ''} {self.bind(value)}")
        return "(" + " AND ".join(conds) + ")" if conds else f"{expr()} IS NOT NULL"

    def _extra(self, node: q.Match, field: str) -> str:
        # extra_text/extra_number bind the JSON path: call exactly the one the SQL uses.
        if node.op == "range":
            return self._range(lambda: self.extra_number(field), node, "int")
        text = self.extra_text(field)
        if node.op == "exists":
            return f"{text} IS NOT NULL"
        if node.op == "wildcard":
            pattern = _escape_like(node.value or "").replace("*", "%").replace("?", "_")
            return f"{text} {self.like} {self.bind(pattern)} ESCAPE '\\'"
        return f"lower({text}) = {self.bind((node.value or '').lower())}"


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
