"""A private ``redis-server`` that a test can stop (the shared one on 6379 is never touched).

``start_redis(tmp_path)`` starts one on a free port with its files under ``tmp_path``; ``stop()``
kills it (SIGKILL: a crashed Redis, not a polite shutdown), ``start()`` brings it back on the same
port. ``shared_redis_url()`` names a database of the machine's Redis picked at random, for tests
that only need their keys apart from other tests' (pub/sub channels are not per database).
"""

from __future__ import annotations

import random
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from support import free_port

SHARED = "redis://127.0.0.1:6379"


def shared_redis_url() -> str:
    return f"{SHARED}/{random.randint(1, 15)}"


@dataclass
class PrivateRedis:
    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = field(default=None)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed (Debian package redis-server)"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise AssertionError(f"redis-server did not start on {self.port}") from None
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def start_redis(tmp_path: Path) -> PrivateRedis:
    folder = tmp_path / "redis"
    folder.mkdir(exist_ok=True)
    server = PrivateRedis(free_port(), folder)
    server.start()
    return server
