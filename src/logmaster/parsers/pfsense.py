"""pfsense: not written yet (placeholder so the registry imports)."""

from __future__ import annotations

from logmaster.parsers.base import Fields, Parser, Syslog


class PfSenseParser(Parser):
    name = "pfsense"

    def parse(self, syslog: Syslog) -> Fields | None:
        return None
