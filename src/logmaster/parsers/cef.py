"""cef: not written yet (placeholder so the registry imports)."""

from __future__ import annotations

from logmaster.parsers.base import Fields, Parser, Syslog


class CefParser(Parser):
    name = "cef"

    def parse(self, syslog: Syslog) -> Fields | None:
        return None
