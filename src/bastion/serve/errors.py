"""Every error the API returns is ``{"error": {"code", "message", "field", "request_id"}}``.

Codes are stable strings clients may branch on; messages are for people. Bad input is always
a 4xx naming what is wrong; a 500 (code ``internal``) means a bug in Bastion, is logged with
its traceback on the server, and never shows one to the client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bastion.config.loader import format_location
from bastion.errors import (
    BastionError,
    ModelError,
    NotFoundError,
    RegistryError,
    RejectionError,
    ServeError,
)

__all__ = ["error_response", "install_handlers"]

RejectCallback = Callable[[RejectionError], None]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
    503: "not_ready",
}

#: Bastion errors that can surface while serving, as (status, code)
_BASTION_STATUS: list[tuple[type[BastionError], int, str]] = [
    (NotFoundError, 404, "not_found"),
    (RegistryError, 503, "registry_unavailable"),
    (ModelError, 500, "model_error"),
    (ServeError, 503, "not_ready"),
]


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    request_id = request.scope.get("state", {}).get("request_id")
    state = request.scope.setdefault("state", {})
    state["error_code"] = code
    return JSONResponse(
        {"error": {"code": code, "message": message, "field": field, "request_id": request_id}},
        status_code=status,
        headers=dict(headers or {}),
    )


def install_handlers(app: FastAPI, *, on_reject: RejectCallback | None = None) -> None:
    """Map rejections, FastAPI validation, HTTP and Bastion errors to JSON errors."""

    async def rejected(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, RejectionError):  # pragma: no cover - registered for it
            raise exc
        if on_reject is not None:
            on_reject(exc)
        return error_response(
            request, exc.status, exc.code, exc.message, field=exc.field, headers=exc.headers
        )

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, RequestValidationError):  # pragma: no cover
            raise exc
        first = exc.errors()[0] if exc.errors() else {}
        field = format_location(first.get("loc", ())) or None
        return error_response(
            request, 422, "invalid_input", str(first.get("msg", "invalid request")), field=field
        )

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, StarletteHTTPException):  # pragma: no cover
            raise exc
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(request, exc.status_code, code, str(exc.detail), headers=exc.headers)

    async def bastion_error(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, BastionError):  # pragma: no cover
            raise exc
        for kind, status, code in _BASTION_STATUS:
            if isinstance(exc, kind):
                return error_response(request, status, code, str(exc))
        return error_response(request, 500, "internal", "internal error")

    app.add_exception_handler(RejectionError, rejected)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(BastionError, bastion_error)
