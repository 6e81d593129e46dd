"""Alerts: every violation opened or resolved goes out by webhook, e-mail and syslog.

The evaluator never sends anything itself: in the same transaction that opens or resolves a
violation it writes one ``alert_deliveries`` row per configured channel
(:meth:`Dispatcher.enqueue`), so an alert is never lost between a change and a crash.
:class:`Dispatcher` delivers due rows in its own thread. A failure (timeout, refused, HTTP
status, SMTP error) is counted, kept in the row (``last_error``) and retried after a doubling
wait (``[alerts] retry_initial_s`` .. ``retry_max_s``); after ``max_attempts`` the row is marked
``failed`` (counted, still listed).

Channels:

- ``webhook``: HTTP POST of the JSON body below; any 2xx is delivered. With
  ``webhook_secret_file`` the header ``X-LogMaster-Signature: sha256=<hex HMAC-SHA256 of the
  body>`` lets the receiver check the sender.
- ``email``: smtplib, STARTTLS when ``smtp_starttls`` (the server's certificate is checked),
  AUTH when ``smtp_username``; subject and text in Turkish and English.
- ``syslog``: RFC 5424 over UDP (one datagram) or TCP (RFC 6587 octet counting), facility
  local0, severity crit/warning (opened) or notice (resolved), structured data
  ``[logmaster@32473 event= kind= subject= severity= id=]`` (32473 is the documentation
  enterprise number of RFC 5612: LogMaster has no number of its own).

Body (webhook; the other channels carry the same facts)::

    {"source": "logmaster", "node": "...", "event": "opened" | "resolved",
     "violation": {"id", "kind", "title", "title_tr", "subject", "device", "day", "severity",
                   "message", "message_tr", "details", "opened_at", "resolved_at"}}

Counters (registry :data:`ALERT_REGISTRY`): ``logmaster_alerts_sent_total{channel}``,
``logmaster_alerts_failures_total{channel}``, ``logmaster_alerts_given_up_total{channel}``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import smtplib
import socket
import ssl
import threading
import urllib.error
import urllib.request
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from logmaster.compliance.violations import TEXTS, AlertDelivery, Violation
from logmaster.endpoints import parse_endpoint

if TYPE_CHECKING:
    from logmaster.config import AlertSettings, Settings

log = logging.getLogger(__name__)

CHANNELS = ("webhook", "email", "syslog")
WAKE_S = 5.0  # the dispatcher also looks for due retries this often
BATCH = 100

ALERT_REGISTRY = CollectorRegistry()
SENT = Counter("logmaster_alerts_sent", "Alerts delivered.", ["channel"], registry=ALERT_REGISTRY)
FAILURES = Counter(
    "logmaster_alerts_failures",
    "Alert delivery attempts that failed (retried).",
    ["channel"],
    registry=ALERT_REGISTRY,
)
GIVEN_UP = Counter(
    "logmaster_alerts_given_up",
    "Alerts given up after max_attempts.",
    ["channel"],
    registry=ALERT_REGISTRY,
)


class AlertError(Exception):
    """A delivery attempt failed; the message says why."""


def read_secret(path: Path) -> str:
    """A secret from a file that only its owner may read (refused otherwise)."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise AlertError(f"{path} is readable by others (mode {mode:04o}): chmod 600 it")
    return path.read_text().strip()


def channels(config: AlertSettings) -> list[str]:
    """The channels that are configured."""
    out = []
    if config.webhook_url:
        out.append("webhook")
    if config.smtp_host and config.mail_to:
        out.append("email")
    if config.syslog_target:
        out.append("syslog")
    return out


def body(violation: dict[str, Any], event: str) -> dict[str, Any]:
    return {
        "source": "logmaster",
        "node": socket.gethostname(),
        "event": event,
        "violation": violation,
    }


# -- the channels ---------------------------------------------------------------------------


def send_webhook(config: AlertSettings, payload: dict[str, Any]) -> None:
    assert config.webhook_url is not None
    data = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "logmaster-alerts"}
    if config.webhook_secret_file is not None:
        secret = read_secret(config.webhook_secret_file).encode()
        digest = hmac.new(secret, data, hashlib.sha256).hexdigest()
        headers["X-LogMaster-Signature"] = f"sha256={digest}"
    request = urllib.request.Request(config.webhook_url, data, headers, method="POST")  # noqa: S310 - http(s) only (settings pattern)
    try:
        with urllib.request.urlopen(request, timeout=config.timeout_s) as resp:  # noqa: S310
            resp.read(4096)
    except urllib.error.HTTPError as exc:
        raise AlertError(f"webhook answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AlertError(f"webhook {config.webhook_url} unreachable: {reason}") from exc


def _subject(payload: dict[str, Any]) -> str:
    v = payload["violation"]
    word = {"opened": "OPENED/AÇILDI", "resolved": "RESOLVED/GİDERİLDİ"}[payload["event"]]
    return f"[LogMaster] {word}: {v['title']} / {v['title_tr']} - {v['subject']}"


def email_text(payload: dict[str, Any]) -> str:
    v = payload["violation"]
    tr = "açıldı" if payload["event"] == "opened" else "giderildi"
    en = payload["event"]
    return (
        f"{v['title_tr']} ({tr})\n{v['message_tr']}\n"
        f"Açılış: {v['opened_at']}  Giderilme: {v['resolved_at'] or '-'}\n\n"
        f"{v['title']} ({en})\n{v['message']}\n"
        f"Opened: {v['opened_at']}  Resolved: {v['resolved_at'] or '-'}\n\n"
        f"kind={v['kind']} subject={v['subject']} severity={v['severity']} id={v['id']} "
        f"node={payload['node']}\n"
    )


def send_email(config: AlertSettings, payload: dict[str, Any]) -> None:
    assert config.smtp_host is not None
    msg = EmailMessage()
    msg["Subject"] = _subject(payload)
    msg["From"] = config.mail_from
    msg["To"] = ", ".join(config.mail_to)
    msg.set_content(email_text(payload))
    try:
        with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.timeout_s) as smtp:
            if config.smtp_starttls:
                ctx = ssl.create_default_context(
                    cafile=str(config.smtp_tls_ca_file) if config.smtp_tls_ca_file else None
                )
                smtp.starttls(context=ctx)
            if config.smtp_username:
                password = (
                    read_secret(config.smtp_password_file) if config.smtp_password_file else ""
                )
                smtp.login(config.smtp_username, password)
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        raise AlertError(f"SMTP {config.smtp_host}:{config.smtp_port}: {exc}") from exc


def _sd_value(text: str) -> str:
    # RFC 5424 section 6.3.3: '"', '\' and ']' are escaped inside PARAM-VALUE.
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def syslog_message(payload: dict[str, Any], now: dt.datetime | None = None) -> bytes:
    """The alert as one RFC 5424 message (no framing)."""
    v = payload["violation"]
    opened_severity = 2 if v["severity"] == "critical" else 4
    severity = 5 if payload["event"] == "resolved" else opened_severity
    pri = 16 * 8 + severity  # local0
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    host = (payload.get("node") or "-").replace(" ", "_")[:255]
    params = " ".join(
        f'{k}="{_sd_value(str(val))}"'
        for k, val in (
            ("event", payload["event"]),
            ("kind", v["kind"]),
            ("subject", v["subject"]),
            ("severity", v["severity"]),
            ("id", v["id"]),
        )
    )
    text = f"{v['title']}: {v['message']} | {v['title_tr']}: {v['message_tr']}"
    head = (
        f"<{pri}>1 {stamp.strftime('%Y-%m-%dT%H:%M:%S.%fZ')} {host} logmaster - compliance "
        f"[logmaster@32473 {params}] "
    )
    return head.encode() + b"\xef\xbb\xbf" + text.encode()


def send_syslog(config: AlertSettings, payload: dict[str, Any]) -> None:
    assert config.syslog_target is not None
    host, port = parse_endpoint(config.syslog_target)
    message = syslog_message(payload)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        family, _, _, _, addr = infos[0]
        if config.syslog_transport == "udp":
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.sendto(message, addr)
        else:
            with socket.create_connection((host, port), timeout=config.timeout_s) as s:
                s.sendall(b"%d " % len(message) + message)
    except OSError as exc:
        raise AlertError(
            f"syslog {config.syslog_target} ({config.syslog_transport}): {exc}"
        ) from exc


SENDERS = {"webhook": send_webhook, "email": send_email, "syslog": send_syslog}


# -- the dispatcher -------------------------------------------------------------------------


class Dispatcher:
    """Queues alerts in the database and delivers them from its own thread."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.config = settings.alerts
        self.engine = engine
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def enqueue(self, session: Session, violation: Violation, event: str, now: dt.datetime) -> int:
        """Add one delivery per configured channel (in the caller's transaction).

        ``now`` is the evaluation's time; the first attempt is due at once by the wall clock.
        """
        names = channels(self.config)
        due = dt.datetime.now(dt.UTC)
        for name in names:
            session.add(
                AlertDelivery(
                    violation_id=violation.id,
                    event=event,
                    channel=name,
                    state="pending",
                    attempts=0,
                    next_attempt_at=due,
                    created_at=due,
                )
            )
        return len(names)

    def wake(self) -> None:
        self._wake.set()

    def deliver_due(self, now: dt.datetime | None = None) -> tuple[int, int]:
        """Try every due delivery once; return (sent, failed attempts)."""
        now = now or dt.datetime.now(dt.UTC)
        sent = failed = 0
        with Session(self.engine) as s:
            rows = [
                (r.id, r.violation_id, r.event, r.channel)
                for r in s.scalars(
                    sa.select(AlertDelivery)
                    .where(AlertDelivery.state == "pending", AlertDelivery.next_attempt_at <= now)
                    .order_by(AlertDelivery.id)
                    .limit(BATCH)
                )
            ]
            payloads: dict[tuple[int, str], dict[str, Any]] = {}
            for _, violation_id, event, _ in rows:
                if (violation_id, event) not in payloads:
                    v = s.get(Violation, violation_id)
                    if v is not None:
                        payloads[violation_id, event] = body(v.to_json(), event)
        for delivery_id, violation_id, event, channel in rows:
            payload = payloads.get((violation_id, event))
            if payload is None:
                continue
            error = None
            try:
                SENDERS[channel](self.config, payload)
            except AlertError as exc:
                error = str(exc)
            except Exception as exc:  # a bug in one channel must not stop the others
                error = f"{type(exc).__name__}: {exc}"
            self._record(delivery_id, error)
            if error is None:
                sent += 1
            else:
                failed += 1
        return sent, failed

    def _record(self, delivery_id: int, error: str | None) -> None:
        c = self.config
        now = dt.datetime.now(dt.UTC)
        with Session(self.engine) as s:
            row = s.get(AlertDelivery, delivery_id)
            if row is None:
                return
            row.attempts += 1
            if error is None:
                row.state, row.sent_at, row.last_error = "sent", now, None
                SENT.labels(row.channel).inc()
            else:
                FAILURES.labels(row.channel).inc()
                row.last_error = error[:2000]
                wait = min(c.retry_max_s, c.retry_initial_s * 2 ** (row.attempts - 1))
                row.next_attempt_at = now + dt.timedelta(seconds=wait)
                if row.attempts >= c.max_attempts:
                    row.state = "failed"
                    GIVEN_UP.labels(row.channel).inc()
                log.warning(
                    "Alert delivery failed; retrying later.",
                    extra={
                        "channel": row.channel,
                        "attempts": row.attempts,
                        "error": error,
                        "state": row.state,
                    },
                )
            s.commit()

    # -- the thread ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="alert-dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver_due()
            except Exception as exc:  # the database may be away for a moment: next round
                log.error("Alert dispatch failed; next round.", extra={"error": str(exc)})
            self._wake.wait(WAKE_S)
            self._wake.clear()


def deliveries(session: Session, violation_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        sa.select(AlertDelivery)
        .where(AlertDelivery.violation_id == violation_id)
        .order_by(AlertDelivery.id)
    )
    return [
        {
            "event": r.event,
            "channel": r.channel,
            "state": r.state,
            "attempts": r.attempts,
            "last_error": r.last_error,
        }
        for r in rows
    ]


__all__ = ["CHANNELS", "TEXTS", "Dispatcher", "channels", "syslog_message"]
