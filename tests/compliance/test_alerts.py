"""Alerts: a real HTTP server, a real SMTP server (STARTTLS, AUTH) and real syslog sockets."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from compliance_support import make_data
from sqlalchemy.orm import Session

from logmaster.compliance import alerts
from logmaster.compliance.alerts import Dispatcher, syslog_message
from logmaster.compliance.evaluator import Evaluator
from logmaster.compliance.violations import AlertDelivery
from logmaster.config import Settings
from logmaster.db import migrate
from logmaster.tlscert import self_signed
from support import free_port

NOW = dt.datetime(2026, 11, 29, 4, 0, tzinfo=dt.UTC)


class Hook:
    """A webhook receiver: records each POST, answers with the next queued status."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                code = hook.statuses.pop(0) if hook.statuses else 204
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def _secret(tmp_path: Path, name: str, value: str, mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_text(value + "\n")
    path.chmod(mode)
    return path


def _setup(tmp_path: Path, **alert_settings: Any) -> tuple[Settings, Evaluator, Dispatcher]:
    data = make_data(
        tmp_path,
        alerts={"retry_initial_s": 60, **alert_settings},
        compliance={"verify_budget_s": 0, "disk_warn_percent": 0.001},
    )
    migrate(data.settings.db_url)
    ev = Evaluator(data.settings)
    dispatcher = Dispatcher(data.settings, ev.engine)
    ev.dispatcher = dispatcher
    return data.settings, ev, dispatcher


def _deliveries(ev: Evaluator) -> list[AlertDelivery]:
    with Session(ev.engine) as s:
        return list(s.scalars(sa.select(AlertDelivery).order_by(AlertDelivery.id)))


def test_webhook_opened_and_resolved_signed(tmp_path: Path, hook: Hook) -> None:
    """Each change is one signed POST of JSON; the receiver can check the HMAC."""
    secret = _secret(tmp_path, "hook.secret", "s3cret-shared")
    settings, ev, dispatcher = _setup(
        tmp_path, webhook_url=hook.url, webhook_secret_file=str(secret)
    )
    try:
        [opened] = ev.run_once(NOW).opened
        assert dispatcher.deliver_due() == (1, 0)
        headers, body = hook.posts[0]
        expected = hmac.new(b"s3cret-shared", body, hashlib.sha256).hexdigest()
        assert headers["x-logmaster-signature"] == f"sha256={expected}"
        payload = json.loads(body)
        assert payload["event"] == "opened" and payload["source"] == "logmaster"
        assert payload["violation"]["kind"] == "archive_disk"
        assert payload["violation"]["id"] == opened["id"]
        assert payload["violation"]["title_tr"] == "Arşiv diski doluyor"
        settings.compliance.disk_warn_percent = 100
        ev.run_once(NOW)
        assert dispatcher.deliver_due() == (1, 0)
        resolved = json.loads(hook.posts[1][1])
        assert resolved["event"] == "resolved" and resolved["violation"]["resolved_at"]
        assert [d.state for d in _deliveries(ev)] == ["sent", "sent"]
        assert dispatcher.deliver_due() == (0, 0)  # nothing sent twice
    finally:
        ev.close()


def test_webhook_failure_is_counted_and_retried(tmp_path: Path, hook: Hook) -> None:
    """HTTP 500: the attempt is counted, the error kept, the retry waits retry_initial_s."""
    _settings, ev, dispatcher = _setup(tmp_path, webhook_url=hook.url, max_attempts=3)
    try:
        before = alerts.FAILURES.labels("webhook")._value.get()
        hook.statuses = [500, 503]
        ev.run_once(NOW)
        assert dispatcher.deliver_due() == (0, 1)
        [d] = _deliveries(ev)
        assert d.state == "pending" and d.attempts == 1 and "HTTP 500" in (d.last_error or "")
        assert alerts.FAILURES.labels("webhook")._value.get() == before + 1
        assert dispatcher.deliver_due() == (0, 0)  # not due yet
        later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=61)
        assert dispatcher.deliver_due(later) == (0, 1)
        later += dt.timedelta(seconds=121)
        assert dispatcher.deliver_due(later) == (1, 0)
        [d] = _deliveries(ev)
        assert d.state == "sent" and d.attempts == 3 and len(hook.posts) == 3
    finally:
        ev.close()


def test_give_up_after_max_attempts(tmp_path: Path) -> None:
    """A webhook nobody listens on: refused, retried, then marked failed and counted."""
    port = free_port()
    _settings, ev, dispatcher = _setup(
        tmp_path, webhook_url=f"http://127.0.0.1:{port}/x", max_attempts=2, retry_initial_s=1
    )
    try:
        given_up = alerts.GIVEN_UP.labels("webhook")._value.get()
        ev.run_once(NOW)
        far = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        assert dispatcher.deliver_due(far) == (0, 1)
        assert dispatcher.deliver_due(far + dt.timedelta(hours=1)) == (0, 1)
        [d] = _deliveries(ev)
        assert d.state == "failed" and "unreachable" in (d.last_error or "")
        assert alerts.GIVEN_UP.labels("webhook")._value.get() == given_up + 1
        assert dispatcher.deliver_due(far + dt.timedelta(days=1)) == (0, 0)
    finally:
        ev.close()


def test_dispatcher_thread_never_blocks_the_evaluator(tmp_path: Path) -> None:
    """A black-hole webhook (accepts, never answers): passes stay fast; the thread retries."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", free_port()))
    hole.listen(8)
    _settings, ev, dispatcher = _setup(
        tmp_path,
        webhook_url=f"http://127.0.0.1:{hole.getsockname()[1]}/x",
        timeout_s=2,
    )
    dispatcher.start()
    try:
        start = time.monotonic()
        ev.run_once(NOW)
        assert time.monotonic() - start < 1.5
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _deliveries(ev)[0].attempts:
            time.sleep(0.1)
        [d] = _deliveries(ev)
        assert d.attempts == 1 and "timed out" in (d.last_error or "")
    finally:
        dispatcher.stop()
        hole.close()
        ev.close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"mail-pass-1")


def test_email_starttls_auth(tmp_path: Path) -> None:
    """A real SMTP server demanding STARTTLS and AUTH receives a bilingual message."""
    self_signed(tmp_path / "smtp.pem", tmp_path / "smtp.key")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp_path / "smtp.pem", tmp_path / "smtp.key")
    box = Mailbox()
    port = free_port()
    controller = Controller(
        box, hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True,
        authenticator=box.authenticate, auth_require_tls=True,
    )  # fmt: skip
    controller.start()
    password = _secret(tmp_path, "smtp.pass", "mail-pass-1")
    _settings, ev, dispatcher = _setup(
        tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_tls_ca_file=str(tmp_path / "smtp.pem"),
        smtp_username="alerts",
        smtp_password_file=str(password),
        mail_from="logmaster@example.org",
        mail_to=["noc@example.org", "uyum@example.org"],
    )
    try:
        ev.run_once(NOW)
        assert dispatcher.deliver_due() == (1, 0)
        assert box.logins == [(b"alerts", b"mail-pass-1")]
        [raw] = box.messages
        msg = message_from_bytes(raw)
        subject = str(make_header(decode_header(msg["Subject"])))
        assert subject.startswith("[LogMaster] OPENED/AÇILDI: Archive disk filling")
        assert msg["To"] == "noc@example.org, uyum@example.org"
        text = msg.get_payload(decode=True).decode()
        assert "Arşiv dosya sistemi" in text and "The archive file system" in text
    finally:
        controller.stop()
        ev.close()


def test_email_wrong_password_is_a_failure(tmp_path: Path) -> None:
    """An SMTP refusal is a counted, retried failure that names the server."""
    self_signed(tmp_path / "smtp.pem", tmp_path / "smtp.key")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp_path / "smtp.pem", tmp_path / "smtp.key")
    box = Mailbox()
    port = free_port()
    controller = Controller(
        box, hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True,
        authenticator=box.authenticate, auth_require_tls=True,
    )  # fmt: skip
    controller.start()
    _settings, ev, dispatcher = _setup(
        tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_tls_ca_file=str(tmp_path / "smtp.pem"),
        smtp_username="alerts",
        smtp_password_file=str(_secret(tmp_path, "smtp.pass", "wrong")),
        mail_to=["noc@example.org"],
    )
    try:
        ev.run_once(NOW)
        assert dispatcher.deliver_due() == (0, 1)
        [d] = _deliveries(ev)
        assert d.state == "pending" and f"SMTP 127.0.0.1:{port}" in (d.last_error or "")
        assert box.messages == []
    finally:
        controller.stop()
        ev.close()


def test_secret_file_readable_by_others_is_refused(tmp_path: Path, hook: Hook) -> None:
    """A webhook secret with mode 0644 is not used; the delivery fails and says why."""
    secret = _secret(tmp_path, "hook.secret", "x", mode=0o644)
    _settings, ev, dispatcher = _setup(
        tmp_path, webhook_url=hook.url, webhook_secret_file=str(secret)
    )
    try:
        ev.run_once(NOW)
        assert dispatcher.deliver_due() == (0, 1)
        assert "chmod 600" in (_deliveries(ev)[0].last_error or "") and hook.posts == []
    finally:
        ev.close()


def test_syslog_udp_rfc5424(tmp_path: Path) -> None:
    """One datagram per alert: RFC 5424 header, structured data, BOM, both languages."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", free_port(socket.SOCK_DGRAM)))
    sock.settimeout(5)
    port = sock.getsockname()[1]
    settings, ev, dispatcher = _setup(tmp_path, syslog_target=f"127.0.0.1:{port}")
    try:
        ev.run_once(NOW)
        assert dispatcher.deliver_due() == (1, 0)
        data, _ = sock.recvfrom(65535)
        # local0 (16) * 8 + warning (4) = 132
        assert data.startswith(b"<132>1 ")
        head, _, msg = data.partition(b"\xef\xbb\xbf")
        fields = head.decode().split(" ", 6)
        assert fields[3:6] == ["logmaster", "-", "compliance"]
        dt.datetime.fromisoformat(fields[1].replace("Z", "+00:00"))
        assert fields[6].startswith('[logmaster@32473 event="opened" kind="archive_disk"')
        assert "Arşiv dosya sistemi" in msg.decode() and "The archive file system" in msg.decode()
        settings.compliance.disk_warn_percent = 100
        ev.run_once(NOW)
        dispatcher.deliver_due()
        resolved, _ = sock.recvfrom(65535)
        assert resolved.startswith(b"<133>1 ") and b'event="resolved"' in resolved
    finally:
        sock.close()
        ev.close()


def test_syslog_tcp_octet_counting(tmp_path: Path) -> None:
    """Over TCP each alert is one RFC 6587 octet-counted frame."""
    server = socket.socket()
    server.bind(("127.0.0.1", free_port()))
    server.listen(1)
    server.settimeout(5)
    port = server.getsockname()[1]
    _settings, ev, dispatcher = _setup(
        tmp_path, syslog_target=f"127.0.0.1:{port}", syslog_transport="tcp"
    )
    try:
        ev.run_once(NOW)
        result: list[tuple[int, int]] = []
        t = threading.Thread(target=lambda: result.append(dispatcher.deliver_due()))
        t.start()
        conn, _ = server.accept()
        with conn:
            conn.settimeout(5)
            data = b""
            while chunk := conn.recv(65535):
                data += chunk
        t.join(5)
        assert result == [(1, 0)]
        count, _, frame = data.partition(b" ")
        assert int(count) == len(frame) and frame.startswith(b"<132>1 ")
    finally:
        server.close()
        ev.close()


def test_sd_values_escaped() -> None:
    """Quotes, backslashes and ] in a subject cannot break the structured data."""
    payload = {
        "event": "opened",
        "node": "n1",
        "violation": {
            "kind": "seal_overdue", "subject": 'a"b]c\\d', "severity": "critical", "id": 7,
            "title": "t", "title_tr": "t", "message": "m", "message_tr": "m",
        },
    }  # fmt: skip
    msg = syslog_message(payload, NOW)
    assert msg.startswith(b"<130>1 2026-11-29T04:00:00.000000Z n1 logmaster - compliance ")
    assert b'subject="a\\"b\\]c\\\\d"' in msg
