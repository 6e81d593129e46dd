"""The web console: the built React app (``web/dist``) served by the API at ``/``.

``mount_console(app, settings)`` adds one catch-all GET route, registered after the API's own
routes so it never shadows them:

- ``/assets/*`` — Vite's content-hashed files: cached for a year (``immutable``); a new build
  has new names.
- any other existing file of ``dist`` (favicon) — cached for an hour.
- any other path outside ``/api/`` — ``index.html`` (the single-page app routes it), never cached
  without revalidation, so a new build is picked up at the next page load.
- ``/api/...`` — not the console's: a plain 404 that the API's error handler renders.

Every console response carries a strict Content-Security-Policy: scripts only from this origin
(no inline script, no ``eval``), no plugins, no framing, no foreign connections. Styles allow
``'unsafe-inline'`` because the component library (Mantine) sets ``style`` attributes and injects
its CSS variables at run time; scripts are what an injected syslog line would need, and those stay
locked down. Text files are gzip-compressed once per build and kept in memory.

Without a build (``web/dist/index.html`` missing) the API works as usual and ``/`` answers 503
with the commands that build the console. The directory is looked up on every request, so a
build made while the server runs is served without a restart.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import mimetypes
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import PlainTextResponse, Response

from logmaster.config import Settings

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
CACHE_IMMUTABLE = "public, max-age=31536000, immutable"
CACHE_SHORT = "public, max-age=3600"
CACHE_REVALIDATE = "no-cache"
COMPRESSIBLE = (".js", ".css", ".html", ".svg", ".json", ".txt", ".map")
NOT_BUILT = (
    "The LogMaster web console is not built.\n"
    "Build it with `make run` (it builds before starting), or by hand:\n"
    "    cd web && npm ci && npm run build\n"
    "The API itself works: /api/v1/health, /api/v1/openapi.json.\n"
    "\n"
    "LogMaster web konsolu derlenmemiş. `make run` ile ya da\n"
    "    cd web && npm ci && npm run build\n"
    "komutlarıyla derleyin.\n"
)


def default_dist_dir() -> Path:
    """``web/dist`` of the source checkout this package runs from."""
    return Path(__file__).resolve().parents[3] / "web" / "dist"


@dataclass(frozen=True)
class _Body:
    data: bytes
    gzipped: bytes | None
    etag: str


class ConsoleFiles:
    """Reads files of one ``dist`` directory, refusing anything outside it; caches bodies."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[Path, tuple[float, int, _Body]] = {}

    def built(self) -> bool:
        return (self.root / "index.html").is_file()

    def find(self, rel: str) -> Path | None:
        """The file ``rel`` names inside the root, or None (missing, a folder, or outside)."""
        if not rel or "\x00" in rel:
            return None
        try:
            root = self.root.resolve()
            path = (root / rel).resolve()
        except (OSError, RuntimeError):
            return None
        if not path.is_relative_to(root) or not path.is_file():
            return None
        return path

    def body(self, path: Path) -> _Body:
        st = path.stat()
        hit = self._cache.get(path)
        if hit is not None and hit[0] == st.st_mtime and hit[1] == st.st_size:
            return hit[2]
        data = path.read_bytes()
        gz = gzip.compress(data, 6, mtime=0) if path.suffix in COMPRESSIBLE else None
        body = _Body(data, gz, '"' + hashlib.sha256(data).hexdigest()[:32] + '"')
        self._cache[path] = (st.st_mtime, st.st_size, body)
        return body

    def respond(self, request: Request, path: Path, cache: str) -> Response:
        body = self.body(path)
        headers = {**SECURITY_HEADERS, "Cache-Control": cache, "ETag": body.etag}
        headers["Vary"] = "Accept-Encoding"
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if media.startswith("text/") or media in ("application/javascript", "image/svg+xml"):
            media += "; charset=utf-8"
        if body.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        data = body.data
        if body.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
            data = body.gzipped
            headers["Content-Encoding"] = "gzip"
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(data))
            return Response(status_code=200, headers=headers, media_type=media)
        return Response(data, headers=headers, media_type=media)


def mount_console(app: FastAPI, settings: Settings) -> None:
    """Serve the built console at ``/`` (call after every API route is registered)."""
    files = ConsoleFiles(settings.console.dist_dir or default_dist_dir())

    async def console(request: Request, path: str = "") -> Response:
        if path == "api" or path.startswith("api/"):
            raise HTTPException(status_code=404, detail="No such API route.")
        if not files.built():
            return PlainTextResponse(
                NOT_BUILT,
                status_code=503,
                headers={**SECURITY_HEADERS, "Cache-Control": "no-store"},
            )
        found = files.find(path)
        if found is not None and found.name != "index.html":
            cache = CACHE_IMMUTABLE if path.startswith("assets/") else CACHE_SHORT
            return files.respond(request, found, cache)
        if path.startswith("assets/"):
            # A stale page asking for an old build's chunk: a 404, not index.html as JavaScript.
            raise HTTPException(status_code=404, detail="No such console asset.")
        return files.respond(request, files.root / "index.html", CACHE_REVALIDATE)

    for route_path in ("/", "/{path:path}"):
        app.add_api_route(
            route_path,
            console,
            methods=["GET", "HEAD"],
            include_in_schema=False,
            name="console" if route_path == "/" else "console_path",
        )


def openapi_json() -> str:
    """The API's OpenAPI schema as stable JSON (sorted keys), built in process without a server.

    ``scripts/gen-api-client.sh`` writes it to ``web/openapi.json``; the console's client types
    are generated from that file.
    """
    from logmaster.api.app import create_app
    from logmaster.config import load_settings

    # A throw-away data dir: create_app migrates it and creates (and prints) a first admin.
    with (
        tempfile.TemporaryDirectory(prefix="logmaster-openapi-") as tmp,
        contextlib.redirect_stdout(io.StringIO()),
    ):
        schema = create_app(load_settings(None, data_dir=Path(tmp))).openapi()
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(openapi_json(), end="")
