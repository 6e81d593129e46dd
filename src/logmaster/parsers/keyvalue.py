"""keyvalue: not written yet (placeholder so the registry imports)."""

from __future__ import annotations

from logmaster.parsers.base import Fields, Parser, Syslog


class KeyValueParser(Parser):
    name = "keyvalue"

    def parse(self, syslog: Syslog) -> Fields | None:
        return None
