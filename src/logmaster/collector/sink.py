"""What receivers hand messages to: the archive thread's queue, or a pipe to it."""

from __future__ import annotations

import threading
from typing import Protocol

# (receive time in ns since the epoch, sender ip, raw message bytes, marker or b"")
Message = tuple[int, str, bytes, bytes]


class Sink(Protocol):
    def put(self, batch: list[Message], nbytes: int) -> None:
        """Take a batch of messages (never blocks for long, never drops)."""

    def full(self) -> bool:
        """True while receivers should hold back (back-pressure)."""

    def wait_room(self, stop: threading.Event | None = None) -> None:
        """Block the calling thread until :meth:`full` is false (or ``stop`` is set)."""
