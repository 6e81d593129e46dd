"""Live tail over WebSocket: ``/api/v1/tail`` (see ``api/tail.py`` for the fan-out).

Protocol (JSON text messages):

1. Connect offering the subprotocol ``logmaster.tail.v1``; the access token goes either in a
   second offered subprotocol ``bearer.<access token>`` (browsers cannot set headers on a
   WebSocket) or in the first message. Never in the URL: URLs end up in proxy logs.
2. First client message: ``{"query": "src:10.0.0.0/8 AND denied", "token": "<optional>"}``.
3. Server: ``{"type": "started", "session": N, "devices": <count of permitted devices>}``, then
   ``{"type": "lines", "lines": [<event>, ...]}`` as lines arrive (events as search returns
   them), ``{"type": "gap"}`` when the feed lost lines on the way (the server fell behind),
   ``{"type": "status", "state": "degraded", "detail", "detail_tr"}`` while the feed (Redis)
   cannot be reached (nothing is lost: lines are archived and indexed, search finds them) and
   ``{"type": "status", "state": "live", ...}`` when it is back.
4. Every error is ``{"type": "error", "status", "kind", "detail", "detail_tr"}`` followed by a
   close: 4400 bad query (the detail names the position), 4401 not signed in / token expired /
   session ended, 4403 no tail permission, 4408 too slow (the client did not read fast enough;
   the server never waits), 4429 too many tail sessions, 1001 server stopping.

The sign-in is checked again every :data:`RECHECK_S` seconds (revoked session, disabled
account, source network, time window, changed grants), and the session ends when the access
token expires (reconnect with a fresh one). Each session is audited at its start and its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import orjson
from fastapi import APIRouter, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.security import HTTPAuthorizationCredentials

from logmaster.api.audit import DENIED, OK, record
from logmaster.api.deps import Principal, current_principal, scope_for
from logmaster.api.logdata import LogData, logdata_of, zone_of
from logmaster.api.problems import ProblemError
from logmaster.api.routes.search import query_problem
from logmaster.api.tail import (
    CLOSE_TOO_MANY,
    CLOSE_TOO_SLOW,
    DEGRADED,
    LIVE,
    TailSession,
    TooManyTailsError,
)
from logmaster.index.match import compile_predicate
from logmaster.index.query import QueryError, parse_query


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    data: LogData | None = getattr(app.state, "logdata", None)
    if data is not None:
        await data.close()


router = APIRouter(tags=["tail"], lifespan=_lifespan)

FEED_STATUS = {
    DEGRADED: {
        "detail": "Live tail is paused: the message bus (Redis) cannot be reached. New lines "
        "are still archived and indexed (search finds them); the tail resumes by itself.",
        "detail_tr": "Canlı izleme duraklatıldı: mesaj veri yoluna (Redis) ulaşılamıyor. Yeni "
        "satırlar arşivlenmeye ve dizinlenmeye devam ediyor (arama bulur); izleme kendiliğinden "
        "devam edecek.",
    },
    LIVE: {
        "detail": "Live tail resumed: lines sent while it was paused are found by search.",
        "detail_tr": "Canlı izleme devam ediyor: duraklatıldığı sırada gelen satırları arama "
        "bulur.",
    },
}
SUBPROTOCOL = "logmaster.tail.v1"
TOKEN_PREFIX = "bearer."  # noqa: S105 - a protocol prefix, not a secret
FIRST_MESSAGE_S = 10.0
RECHECK_S = 30.0


class TailClosedError(Exception):
    def __init__(self, code: int, status: int, kind: str, detail: str, detail_tr: str) -> None:
        super().__init__(detail)
        self.code, self.status, self.kind = code, status, kind
        self.detail, self.detail_tr = detail, detail_tr


def _from_problem(exc: ProblemError) -> TailClosedError:
    code = {400: 4400, 401: 4401, 403: 4403, 429: 4429}.get(exc.status, 4400)
    return TailClosedError(code, exc.status, exc.kind, exc.detail, exc.detail_tr)


def _authenticate(ws: WebSocket, token: str) -> tuple[Principal, frozenset[str], dt.datetime]:
    """The principal, the slugs it may tail and the token's expiry (blocking: DB)."""
    claims = ws.app.state.signer.check(token) if token else None
    with ws.app.state.sessions() as session:
        principal = current_principal(
            cast(Request, ws),
            session,
            HTTPAuthorizationCredentials(scheme="Bearer", credentials=token) if token else None,
        )
        if "tail" not in principal.actions:
            raise TailClosedError(
                4403,
                403,
                "forbidden",
                "Live tail needs the tail permission, which none of your roles has.",
                "Canlı izleme için tail izni gerekir; rollerinizin hiçbirinde yok.",
            )
        scope = scope_for(session, principal.user_id, "tail")
        session.commit()
    expires = claims.expires_at if claims is not None else dt.datetime.now(dt.UTC)
    return principal, scope.slugs, expires


async def _send(ws: WebSocket, payload: dict[str, Any]) -> None:
    await ws.send_text(orjson.dumps(payload).decode())


async def _fail(ws: WebSocket, exc: TailClosedError) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(
            _send(
                ws,
                {
                    "type": "error",
                    "status": exc.status,
                    "kind": exc.kind,
                    "detail": exc.detail,
                    "detail_tr": exc.detail_tr,
                },
            ),
            2.0,
        )
        # A close reason may hold 123 bytes; the full text went in the error message.
        reason = exc.detail.encode()[:120].decode("utf-8", "ignore")
        await asyncio.wait_for(ws.close(exc.code, reason), 2.0)


@router.websocket("/tail")
async def tail(ws: WebSocket) -> None:
    """Live tail of new matching lines of the permitted devices (see the module docstring)."""
    offered = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",")]
    token = next((p[len(TOKEN_PREFIX) :] for p in offered if p.startswith(TOKEN_PREFIX)), "")
    await ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    data = logdata_of(ws.app)
    ip = ws.client.host if ws.client else ""
    session: TailSession | None = None
    principal: Principal | None = None
    end_reason = "client closed"
    try:
        try:
            first = orjson.loads(await asyncio.wait_for(ws.receive_text(), FIRST_MESSAGE_S))
        except (TimeoutError, orjson.JSONDecodeError, KeyError):
            raise TailClosedError(
                4400,
                400,
                "bad-request",
                'Send {"query": "..."} as the first message (within 10 s).',
                'İlk mesaj olarak {"query": "..."} gönderin (10 sn içinde).',
            ) from None
        if not isinstance(first, dict):
            first = {}
        token = str(first.get("token") or token)
        query = str(first.get("query") or "")[:4000]
        tz = str(first.get("tz") or "Europe/Istanbul")[:64]
        try:
            who, devices, expires = await asyncio.to_thread(_authenticate, ws, token)
        except ProblemError as exc:
            raise _from_problem(exc) from None
        except Exception as exc:  # jwt errors surface through current_principal as 401
            if isinstance(exc, TailClosedError):
                raise
            raise TailClosedError(
                4401, 401, "invalid-token", "Sign in again.", "Yeniden oturum açın."
            ) from None
        principal = who
        zone = zone_of(tz, "UTC")
        try:
            predicate = compile_predicate(parse_query(query, now=dt.datetime.now(zone), zone=zone))
        except QueryError as exc:
            raise _from_problem(query_problem(exc)) from None
        try:
            session = data.hub.open(who.user_id, who.username, devices, predicate, query)
        except TooManyTailsError:
            limit = data.settings.tail.max_sessions_per_user
            await asyncio.to_thread(
                record,
                data.engine,
                actor=who.username,
                source_ip=ip,
                action="tail.start",
                target=query[:300],
                result=DENIED,
                details={"reason": "too many sessions"},
            )
            raise TailClosedError(
                CLOSE_TOO_MANY,
                429,
                "too-many-tails",
                f"You already have {limit} live tails open; close one first.",
                f"Zaten {limit} canlı izleme oturumunuz açık; önce birini kapatın.",
            ) from None
        await asyncio.to_thread(
            record,
            data.engine,
            actor=who.username,
            source_ip=ip,
            action="tail.start",
            target=query[:300],
            result=OK,
            details={"session": session.id, "devices": len(devices)},
        )
        await _send(ws, {"type": "started", "session": session.id, "devices": len(devices)})
        end_reason = await _serve(ws, data, session, token, expires)
        if end_reason == "too slow":
            raise TailClosedError(
                CLOSE_TOO_SLOW,
                408,
                "too-slow",
                f"Closed: more than {data.settings.tail.queue_lines} lines waited for this "
                "client. Narrow the query or read faster.",
                f"Kapatıldı: bu istemci için {data.settings.tail.queue_lines} satırdan fazlası "
                "bekledi. Sorguyu daraltın.",
            )
        if end_reason == "server stopping":
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(1001, "server stopping"), 2.0)
        elif end_reason != "client closed":
            raise TailClosedError(4401, 401, "session-ended", end_reason, end_reason)
    except TailClosedError as exc:
        end_reason = exc.kind
        await _fail(ws, exc)
    except WebSocketDisconnect:
        end_reason = "client closed"
    finally:
        if session is not None:
            data.hub.close(session)
            if principal is not None:
                await asyncio.to_thread(
                    record,
                    data.engine,
                    actor=principal.username,
                    source_ip=ip,
                    action="tail.end",
                    target=session.query[:300],
                    result=OK,
                    details={
                        "session": session.id,
                        "reason": end_reason,
                        "lines": session.sent,
                        "seconds": round(time.monotonic() - session.started, 1),
                    },
                )


async def _serve(
    ws: WebSocket, data: LogData, session: TailSession, token: str, expires: dt.datetime
) -> str:
    """Send lines until the client leaves, is too slow, or its sign-in ends; return why."""

    async def receive() -> str:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return "client closed"

    async def recheck() -> str:
        nonlocal expires
        while True:
            wait = min(RECHECK_S, max(0.0, (expires - dt.datetime.now(dt.UTC)).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.refresh.wait(), wait)
            session.refresh.clear()
            if dt.datetime.now(dt.UTC) >= expires:
                return "The access token expired; reconnect with a fresh one."
            try:
                _p, devices, expires = await asyncio.to_thread(_authenticate, ws, token)
            except ProblemError as exc:
                return exc.detail
            except TailClosedError as exc:
                return exc.detail
            await data.hub.regrant(session, devices)  # grants changed: the tail follows

    async def send() -> str:
        while True:
            item = await session.queue.get()
            if isinstance(item, str):
                if item == "gap":
                    await _send(ws, {"type": "gap"})
                    continue
                if item in FEED_STATUS:
                    await _send(ws, {"type": "status", "state": item, **FEED_STATUS[item]})
                    continue
                return item
            await _send(ws, {"type": "lines", "lines": [e.model_dump() for e in item]})
            session.taken(len(item))

    async def cut() -> str:
        await session.cut.wait()  # set by the hub, even while send() waits on a full socket
        return session.closed_reason or "server stopping"

    tasks = [asyncio.ensure_future(c) for c in (receive(), recheck(), send(), cut())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if session.closed_reason is not None:
            return session.closed_reason
        return str(next(iter(done)).result())
    except (WebSocketDisconnect, RuntimeError, OSError):
        return "client closed"
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
