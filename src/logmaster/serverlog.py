"""Structured logging of the server itself.

One line per record: ``time=... level=... logger=... msg="Sentence." key=value ...`` (or a JSON
object). Fields come from ``extra={...}``; values with spaces or quotes are quoted. Secrets are
never passed as fields, so the formatter does not filter them.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

# Attributes every LogRecord has; anything else was passed through ``extra``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    out = {k: v for k, v in vars(record).items() if k not in _STANDARD}
    if record.exc_info and record.exc_info[1] is not None:
        out["error"] = f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
    return out


def _quote(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\\\n'):
        return json.dumps(text, ensure_ascii=False)
    return text


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        head = (
            f"time={stamp}.{int(record.msecs):03d}Z level={record.levelname.lower()} "
            f"logger={record.name} msg={_quote(record.getMessage())}"
        )
        tail = " ".join(f"{k}={_quote(v)}" for k, v in _fields(record).items())
        return f"{head} {tail}" if tail else head


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body = {
            "time": record.created,
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_fields(record),
        }
        return json.dumps(body, ensure_ascii=False, default=str)


def setup(level: str = "info", fmt: str = "kv") -> None:
    """Send the server's log to standard error in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Alembic and SQLAlchemy announce every migration step at INFO; keep our log readable.
    logging.getLogger("alembic").setLevel(logging.WARNING)


class RateLimited:
    """Let one message through per ``interval`` seconds; count the ones held back.

    Used for errors that repeat on every flush (a full disk) so the log stays readable while the
    counters carry the exact numbers.
    """

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self._last = 0.0
        self.suppressed = 0

    def ready(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            return True
        self.suppressed += 1
        return False
