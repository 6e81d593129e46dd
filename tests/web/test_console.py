"""The console served by the API: assets cached forever, the page revalidated, SPA fallback,
a strict Content-Security-Policy, API paths never answered with the page, and a clear message
when the console is not built. Over a real socket (uvicorn on a free port)."""

from __future__ import annotations

import gzip
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from logmaster.api.app import create_app
from logmaster.api.console import CSP, NOT_BUILT
from logmaster.config import load_settings
from support import free_port

INDEX = (
    b'<!doctype html><html><body><div id="root"></div>'
    b'<script type="module" src="/assets/index-abc123.js"></script></body></html>'
)
SCRIPT = b"console.log('logmaster');\n" * 200


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    d = tmp_path / "dist"
    (d / "assets").mkdir(parents=True)
    (d / "index.html").write_bytes(INDEX)
    (d / "assets" / "index-abc123.js").write_bytes(SCRIPT)
    (d / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "secret.txt").write_text("outside the console")
    return d


@pytest.fixture
def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], str]]:
    """Start the API with the console at ``dist``; the base URL."""
    monkeypatch.setenv("LOGMASTER_ADMIN_PASSWORD", "Console-test-pw-9")
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(dist_dir: Path) -> str:
        settings = load_settings(None, data_dir=tmp_path / "data", console={"dist_dir": dist_dir})
        app = create_app(settings)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "API did not start"
            time.sleep(0.05)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


def test_page_and_spa_fallback_revalidate(dist: Path, serve: Callable[[Path], str]) -> None:
    """'/' and any client-side route answer index.html, never cached without revalidation."""
    base = serve(dist)
    for path in ("/", "/logs", "/devices/gw1", "/admin/users?x=1"):
        r = httpx.get(base + path)
        assert r.status_code == 200, path
        assert r.content == INDEX
        assert r.headers["content-type"].startswith("text/html")
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["content-security-policy"] == CSP
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"


def test_csp_is_strict() -> None:
    """Scripts only from this origin: no inline script, no eval, no plugins, no framing."""
    directives = dict(d.split(" ", 1) for d in CSP.split("; "))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert "unsafe-eval" not in CSP
    assert "'unsafe-inline'" not in directives["script-src"]


def test_assets_cached_forever_and_compressed(dist: Path, serve: Callable[[Path], str]) -> None:
    """Hashed assets are immutable for a year; text is gzipped; ETag gives 304; HEAD works."""
    base = serve(dist)
    url = base + "/assets/index-abc123.js"
    r = httpx.get(url, headers={"accept-encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["content-encoding"] == "gzip"
    assert r.content == SCRIPT  # httpx decodes
    assert int(r.headers["content-length"]) < len(SCRIPT) / 5
    assert r.headers["content-type"].startswith("text/javascript") or r.headers[
        "content-type"
    ].startswith("application/javascript")
    raw = httpx.get(url, headers={"accept-encoding": "identity"})
    assert "content-encoding" not in raw.headers and raw.content == SCRIPT
    again = httpx.get(url, headers={"if-none-match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    head = httpx.head(url, headers={"accept-encoding": "gzip"})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == r.headers["content-length"]
    assert gzip.decompress(gzip.compress(SCRIPT)) == SCRIPT
    fav = httpx.get(base + "/favicon.svg")
    assert fav.status_code == 200 and fav.headers["cache-control"] == "public, max-age=3600"


def test_missing_asset_is_404_not_the_page(dist: Path, serve: Callable[[Path], str]) -> None:
    """A stale page asking for an old chunk gets 404, not index.html served as JavaScript."""
    base = serve(dist)
    r = httpx.get(base + "/assets/index-old999.js")
    assert r.status_code == 404
    assert r.content != INDEX


def test_api_paths_are_not_the_console(dist: Path, serve: Callable[[Path], str]) -> None:
    """/api/... never falls back to the page: unknown routes are problem details."""
    base = serve(dist)
    r = httpx.get(base + "/api/v1/no-such-route")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert httpx.get(base + "/api").status_code == 404
    assert httpx.get(base + "/api/v1/health").status_code in (200, 503)
    spec = httpx.get(base + "/api/v1/openapi.json")
    assert spec.status_code == 200 and "paths" in spec.json()


def test_no_escape_from_dist(dist: Path, serve: Callable[[Path], str]) -> None:
    """Paths that climb out of dist never read a file outside it."""
    base = serve(dist)
    for path in (
        "/../secret.txt",
        "/assets/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/assets/%2e%2e/%2e%2e/secret.txt",
    ):
        r = httpx.get(base + path)
        assert b"outside the console" not in r.content, path


def test_not_built_says_how_to_build(tmp_path: Path, serve: Callable[[Path], str]) -> None:
    """Without web/dist the API works and '/' says how to build the console."""
    base = serve(tmp_path / "no-dist")
    r = httpx.get(base + "/")
    assert r.status_code == 503
    assert r.text == NOT_BUILT
    assert "npm ci && npm run build" in r.text and "make run" in r.text
    assert r.headers["cache-control"] == "no-store"
    assert httpx.get(base + "/logs").status_code == 503
    assert httpx.get(base + "/api/v1/openapi.json").status_code == 200


def test_build_while_running_is_served(tmp_path: Path, serve: Callable[[Path], str]) -> None:
    """A build made after the server started is served without a restart."""
    later = tmp_path / "later"
    base = serve(later)
    assert httpx.get(base + "/").status_code == 503
    later.mkdir()
    (later / "index.html").write_bytes(INDEX)
    assert httpx.get(base + "/").content == INDEX


def test_first_load_under_1_mb_of_compressed_javascript() -> None:
    """The JavaScript the built index.html loads (its module script and modulepreloads, not the
    lazy screens) gzips, as the API serves it, to less than 1 MB."""
    from logmaster.api.console import default_dist_dir

    dist = default_dist_dir()
    index = dist / "index.html"
    assert index.exists(), "the console is not built: run `make console`"
    html = index.read_text()
    first = re.findall(r'<script[^>]* src="/([^"]+\.js)"', html)
    first += re.findall(r'<link rel="modulepreload"[^>]* href="/([^"]+\.js)"', html)
    assert first, "index.html loads no script"
    every = list((dist / "assets").glob("*.js"))
    sizes = {p.name: len(gzip.compress(p.read_bytes(), 6, mtime=0)) for p in every}
    total = sum(sizes[Path(name).name] for name in first)
    print(
        f"\nconsole JavaScript at first load: {len(first)} files, {total / 1024:.0f} KiB gzipped"
        f" (all {len(every)} files: {sum(sizes.values()) / 1024:.0f} KiB)"
    )
    assert total < 1_000_000
