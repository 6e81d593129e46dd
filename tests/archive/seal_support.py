"""Helpers of the seal tests: a data directory with a signing key, day files, a sealing run.

Keys and the built-in TSA are the real ones (``keys.py``, ``tsa_server.py``); only a *failing*
remote TSA is stood in for (``DownTsa``), since a paid TSA cannot exist here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archive_helpers import DAY, age, lines_for, write_batches

from logmaster.archive import chain
from logmaster.archive.keys import KeyStore, Signer
from logmaster.archive.manifest import Part
from logmaster.archive.seal import SealResult, SealRun
from logmaster.archive.tsa import Stamp, TsaError
from logmaster.config import Settings, load_settings

# A moment when every test day is over in every zone.
LATER = dt.datetime(2026, 12, 20, tzinfo=dt.UTC)


@dataclass
class Data:
    settings: Settings
    signer: Signer

    @property
    def root(self) -> Path:
        return self.settings.archive_dir

    @property
    def keys(self) -> KeyStore:
        return KeyStore(self.settings.data_dir / "keys")

    def part(self, device: str, day: dt.date = DAY, index: int = 0) -> Part:
        return Part(self.root, device, day, index)

    def write(
        self, device: str, day: dt.date = DAY, n: int = 30, batches: int = 3, start: int = 0
    ) -> Path:
        lines = lines_for(device, day, n, start=start)
        step = max(1, n // batches)
        path = write_batches(
            self.root, device, [lines[i : i + step] for i in range(0, n, step)], day
        )
        age(path)
        age(chain.sidecar_path(path))
        return path

    def seal(self, day: dt.date = DAY, device: str | None = None, **kw: Any) -> list[SealResult]:
        run = SealRun(self.settings, signer=self.signer, now=kw.pop("now", LATER), **kw)
        return run.seal_day(day, device)


def make_data(tmp_path: Path, **settings: Any) -> Data:
    s = load_settings(None, data_dir=tmp_path / "data", **settings)
    signer = KeyStore(s.data_dir / "keys").init("ecdsa-p256")
    return Data(s, signer)


class DownTsa:
    """A remote TSA that does not answer (the one thing that cannot exist here)."""

    def __init__(self) -> None:
        self.calls = 0

    def stamp(self, data: bytes) -> Stamp:
        self.calls += 1
        raise TsaError("remote", "timeout", "no answer from http://tsa.invalid within 15 s")
