"""deploy/nginx: Debian's nginx accepts the shipped configuration (``nginx -t``), then runs it
on free loopback ports in front of a real ``logmaster run``: HTTPS API calls, the WebSocket
tail, the console's files, and syslog over TCP, TLS and UDP arriving with the sender's address.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from deploy_support import ADMIN_PASSWORD, Running, logmaster_run
from websockets.sync.client import connect

from logmaster.api.console import SECURITY_HEADERS
from logmaster.archive.line import ArchiveLine, parse_line
from logmaster.tlscert import self_signed
from support import archived_lines, free_port, wait_for

NGINX_DIR = Path(__file__).resolve().parents[2] / "deploy" / "nginx"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
pytestmark = pytest.mark.skipif(
    NGINX is None or not STREAM_MODULE.exists(),
    reason="run scripts/system-deps.sh (Debian nginx, libnginx-mod-stream)",
)


@dataclass
class Site:
    dir: Path
    http: int
    https: int
    tcp: int
    tls: int
    udp: int


def _sub(text: str, old: str, new: str, count: int | None = None) -> str:
    """Replace ``old``; the shipped file must contain it (``count`` times when given)."""
    found = text.count(old)
    assert found and (count is None or found == count), f"{old!r} found {found} times"
    return text.replace(old, new)


def render(tmp: Path, api_port: int, collector_port: int) -> Site:
    """The shipped files, moved to ``tmp`` and to free loopback ports; returns the ports."""
    tmp.mkdir(parents=True, exist_ok=True)
    site = Site(tmp, free_port(), free_port(), free_port(), free_port(), free_port())
    self_signed(tmp / "fullchain.pem", tmp / "privkey.pem")
    assets = tmp / "dist" / "assets"
    assets.mkdir(parents=True)
    (assets / "app-1234.js").write_text("console.log('logmaster');\n")

    http = (NGINX_DIR / "logmaster.conf").read_text()
    http = re.sub(r"\n *listen \[::\]:\d+[^;]*;", "", http)
    http = _sub(http, "listen 80;", f"listen 127.0.0.1:{site.http};", 1)
    http = _sub(http, "listen 443 ssl http2;", f"listen 127.0.0.1:{site.https} ssl http2;", 1)
    http = _sub(http, "server 127.0.0.1:8080", f"server 127.0.0.1:{api_port}", 1)
    http = _sub(http, "/etc/nginx/snippets/", f"{tmp}/")
    http = _sub(http, "/opt/logmaster/web/dist/assets/", f"{assets}/", 1)
    for name in ("logmaster-headers.conf", "logmaster-proxy.conf"):
        shutil.copy(NGINX_DIR / name, tmp / name)

    stream = (NGINX_DIR / "stream.conf").read_text()
    stream = re.sub(r"\n *listen \[::\]:\d+[^;]*;", "", stream)
    stream = _sub(stream, "listen 514;", f"listen 127.0.0.1:{site.tcp};", 1)
    stream = _sub(stream, "listen 6514 ssl;", f"listen 127.0.0.1:{site.tls} ssl;", 1)
    stream = _sub(stream, "listen 514 udp", f"listen 127.0.0.1:{site.udp} udp", 1)
    stream = _sub(stream, "192.0.2.11:514", f"127.0.0.1:{collector_port}", 2)
    stream = re.sub(r"\n *server 192\.0\.2\.12:514[^;]*;", "", stream)
    stream = _sub(stream, "/var/log/nginx/", f"{tmp}/")

    assert "/etc/logmaster/tls/" in http and "/etc/logmaster/tls/" in stream
    http = http.replace("/etc/logmaster/tls/", f"{tmp}/")
    stream = stream.replace("/etc/logmaster/tls/", f"{tmp}/")
    (tmp / "logmaster.conf").write_text(http)
    (tmp / "stream.conf").write_text(stream)
    temp_paths = "\n".join(
        f"    {kind}_temp_path {tmp}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # Root workers for proxy_bind transparent (UDP), as stream.conf documents.
    user = "user root;\n" if os.geteuid() == 0 else ""
    (tmp / "nginx.conf").write_text(
        f"{user}worker_processes 1;\npid {tmp}/nginx.pid;\nerror_log {tmp}/error.log info;\n"
        f"load_module {STREAM_MODULE};\n"
        "events { worker_connections 512; }\n"
        "http {\n    include /etc/nginx/mime.types;\n"
        f"    access_log {tmp}/access.log;\n{temp_paths}\n"
        f"    include {tmp}/logmaster.conf;\n}}\n"
        f"stream {{\n    include {tmp}/stream.conf;\n}}\n"
    )
    return site


def nginx_test(site: Site) -> subprocess.CompletedProcess[str]:
    assert NGINX is not None
    return subprocess.run(
        [NGINX, "-t", "-p", str(site.dir), "-c", str(site.dir / "nginx.conf")],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_nginx_t_accepts_the_shipped_config(tmp_path: Path) -> None:
    site = render(tmp_path, free_port(), free_port())
    r = nginx_test(site)
    assert r.returncode == 0, r.stderr
    assert "test is successful" in r.stderr


def test_nginx_t_rejects_a_broken_config(tmp_path: Path) -> None:
    site = render(tmp_path, free_port(), free_port())
    conf = tmp_path / "logmaster.conf"
    conf.write_text(conf.read_text().replace("proxy_pass http://logmaster_api;", "proxy_pass;", 1))
    assert nginx_test(site).returncode != 0


def test_snippet_headers_match_the_api() -> None:
    snippet = (NGINX_DIR / "logmaster-headers.conf").read_text()
    headers = dict(re.findall(r'add_header (\S+) "([^"]*)" always;', snippet))
    assert headers == SECURITY_HEADERS


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Running, Site]]:
    env = {"LOGMASTER_COLLECTOR__PROXY_PROTOCOL": '["127.0.0.1/32"]'}
    with logmaster_run(tmp_path / "lm", extra_env=env) as running:
        site = render(tmp_path / "nginx", running.api_port, running.syslog_port)
        assert NGINX is not None
        proc = subprocess.Popen(
            [NGINX, "-p", str(site.dir), "-c", str(site.dir / "nginx.conf"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for(lambda: _open(site.https), timeout=20)
            yield running, site
        finally:
            os.killpg(proc.pid, signal.SIGQUIT)
            proc.wait(timeout=20)


def _open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _entries(data: Path) -> list[ArchiveLine]:
    return [parse_line(line) for line in archived_lines(data)]


def _send_tcp(port: int, source: str, line: bytes) -> None:
    with socket.socket() as s:
        s.bind((source, 0))  # the "device"
        s.connect(("127.0.0.1", port))
        s.sendall(line)


def _insecure() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the test's own self-signed certificate
    return ctx


@pytest.mark.slow
def test_nginx_in_front_of_logmaster(stack: tuple[Running, Site]) -> None:
    running, site = stack
    base = f"https://127.0.0.1:{site.https}"
    with httpx.Client(verify=_insecure(), timeout=30) as web:
        # Plain HTTP only redirects.
        r = web.get(f"http://127.0.0.1:{site.http}/api/v1/health")
        assert r.status_code == 301
        assert r.headers["location"] == "https://127.0.0.1/api/v1/health"
        # An API call over HTTPS, with the headers only nginx adds.
        r = web.get(f"{base}/api/v1/health")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "ok"
        assert r.headers["strict-transport-security"] == "max-age=63072000"
        assert r.headers.get_list("x-content-type-options") == ["nosniff"]
        # The API's /metrics stays private.
        assert web.get(f"{base}/metrics").status_code == 404
        # Console files from disk, with the console's headers.
        r = web.get(f"{base}/assets/app-1234.js")
        assert r.status_code == 200
        assert "immutable" in r.headers["cache-control"]
        assert r.headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]
        # Sign in through nginx.
        r = web.post(
            f"{base}/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        assert r.status_code == 200, r.text
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        token = r.json()["access_token"]

        # Syslog over TCP through the stream proxy: filed under the device's address.
        _send_tcp(site.tcp, "127.0.0.9", b"<134>Nov 28 10:00:00 gw9 kernel: viastream tcp\n")
        data = running.data_dir
        got = wait_for(lambda: [e for e in _entries(data) if b"viastream tcp" in e.raw])
        assert got[0].sender == "127.0.0.9"  # not nginx's 127.0.0.1
        # The new device is pending; approve it through nginx so the tail may show it.
        # (The collector records pending devices in the database every few seconds.)
        approve = f"{base}/api/v1/devices/ip-127.0.0.9/approve"
        wait_for(lambda: web.post(approve, headers=auth).status_code == 200, 30, 0.5)

    # Live tail through nginx's WebSocket upgrade, fed by a line through the stream proxy.
    url = f"wss://127.0.0.1:{site.https}/api/v1/tail"
    with connect(
        url,
        ssl=_insecure(),
        subprotocols=["logmaster.tail.v1", f"bearer.{token}"],  # type: ignore[list-item]
        open_timeout=10,
    ) as ws:
        ws.send(json.dumps({"query": "viastream"}))
        first = json.loads(ws.recv(timeout=10))
        assert first["type"] == "started" and first["devices"] == 1, first
        _send_tcp(site.tcp, "127.0.0.9", b"<134>Nov 28 10:00:01 gw9 kernel: viastream tail\n")
        deadline = time.monotonic() + 20
        seen: list[str] = []
        while not any("viastream tail" in x for x in seen):
            message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message["type"] == "lines":
                seen += [json.dumps(line) for line in message["lines"]]
        assert "127.0.0.9" in next(x for x in seen if "viastream tail" in x)

    # TLS terminated by nginx, forwarded with the PROXY header.
    with socket.socket() as raw:
        raw.bind(("127.0.0.10", 0))
        raw.connect(("127.0.0.1", site.tls))
        with _insecure().wrap_socket(raw) as s:
            s.sendall(b"<134>Nov 28 10:00:00 gw10 kernel: viastream tls\n")
    got = wait_for(lambda: [e for e in _entries(data) if b"viastream tls" in e.raw])
    assert got[0].sender == "127.0.0.10"

    # UDP, transparent: the datagram reaches the collector with the device's address.
    if os.geteuid() == 0:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.11", 0))
            u.sendto(b"<134>Nov 28 10:00:00 gw11 kernel: viastream udp", ("127.0.0.1", site.udp))
        got = wait_for(lambda: [e for e in _entries(data) if b"viastream udp" in e.raw])
        assert got[0].sender == "127.0.0.11"
