"""Errors as RFC 9457 problem details (``application/problem+json``), for every error path.

Routes raise :class:`ProblemError` (or one of the helpers below); FastAPI's own errors (404 for an
unknown path, 405, request validation 422, ``HTTPException``) and unexpected exceptions (500,
without internals) pass through the handlers installed by :func:`install`, so a client only ever
parses one error shape. Texts are English in ``title``/``detail`` and Turkish in ``detail_tr``
(the operators are Turkish; the console shows whichever matches its language).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("logmaster.api")

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://logmaster.invalid/problems/"


class Problem(BaseModel):
    """An RFC 9457 problem detail, with a Turkish detail and optional field errors."""

    type: str = Field(description="URI naming the kind of problem.")
    title: str = Field(description="Short English summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(default="", description="What happened here and what to do (English).")
    detail_tr: str = Field(default="", description="The same in Turkish.")
    instance: str = Field(default="", description="The request path.")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Validation errors: location, message, type."
    )
    retry_after_s: int | None = Field(
        default=None, description="For throttling: seconds until another try is accepted."
    )


class ProblemError(Exception):
    """Raise to answer with a problem detail."""

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str = "",
        detail_tr: str = "",
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(detail or kind)
        self.status = status
        self.kind = kind
        self.title = title or HTTPStatus(status).phrase
        self.detail = detail
        self.detail_tr = detail_tr
        self.headers = headers or {}
        self.retry_after_s = retry_after_s


def not_found(what: str, what_tr: str | None = None) -> ProblemError:
    """404 for a missing resource and for one outside the caller's permissions alike."""
    return ProblemError(
        404, "not-found", f"{what} was not found.", f"{what_tr or what} bulunamadı."
    )


def forbidden(detail: str, detail_tr: str) -> ProblemError:
    return ProblemError(403, "forbidden", detail, detail_tr)


def unauthorized(kind: str, detail: str, detail_tr: str) -> ProblemError:
    return ProblemError(
        401, kind, detail, detail_tr, headers={"WWW-Authenticate": 'Bearer realm="logmaster"'}
    )


def conflict(detail: str, detail_tr: str) -> ProblemError:
    return ProblemError(409, "conflict", detail, detail_tr)


def bad_request(detail: str, detail_tr: str, kind: str = "bad-request") -> ProblemError:
    return ProblemError(400, kind, detail, detail_tr)


def problem_response(
    request: Request,
    status: int,
    kind: str,
    title: str,
    detail: str = "",
    detail_tr: str = "",
    *,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
    retry_after_s: int | None = None,
) -> JSONResponse:
    body = Problem(
        type=TYPE_BASE + kind,
        title=title,
        status=status,
        detail=detail,
        detail_tr=detail_tr,
        instance=request.url.path,
        errors=errors,
        retry_after_s=retry_after_s,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


# Shown in the OpenAPI schema of every route (schemathesis checks responses against it).
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {MEDIA_TYPE: {}}, "description": HTTPStatus(code).phrase}
    for code in (400, 401, 403, 404, 409, 422, 429)
}

_STATUS_TR = {
    404: ("The path does not exist.", "Böyle bir adres yok."),
    405: ("This method is not allowed on this path.", "Bu adreste bu yöntem kullanılamaz."),
}


def install(app: FastAPI) -> None:
    """Route every error of ``app`` through a problem detail."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(
            request,
            exc.status,
            exc.kind,
            exc.title,
            exc.detail,
            exc.detail_tr,
            headers=exc.headers,
            retry_after_s=exc.retry_after_s,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        en, tr = _STATUS_TR.get(exc.status_code, (str(exc.detail), str(exc.detail)))
        if exc.status_code not in _STATUS_TR and isinstance(exc.detail, str):
            en = tr = exc.detail
        kind = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "-")
        return problem_response(
            request,
            exc.status_code,
            kind,
            HTTPStatus(exc.status_code).phrase,
            en,
            tr,
            headers=dict(exc.headers or {}),
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"])
        return problem_response(
            request,
            422,
            "validation",
            "Request is not valid",
            f"{where}: {first['msg']}",
            f"İstek geçersiz: {where}: {first['msg']}",
            errors=errors,
        )

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "Unhandled error in the API.",
            exc_info=exc,
            extra={"path": request.url.path, "method": request.method},
        )
        return problem_response(
            request,
            500,
            "internal",
            "Internal Server Error",
            "The server failed to answer; the error is in the server log.",
            "Sunucu yanıt veremedi; hata sunucu günlüğünde.",
            # Starlette answers this one outside every middleware (app.SecurityHeaders too).
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
        )
