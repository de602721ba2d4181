# Template-owned (sage-obs): `make update` brings the template's changes here; keep local edits small.
"""Error responses: one JSON shape for every 4xx and 5xx, always naming the trace to open.

    {"detail": "<one line>", "trace_id": "<32 hex>", "code": "<machine-readable, when there is one>"}

`traceresponse` carries the same trace id as a header; the body has it too because that is what a
user pastes into a bug report. Validation errors become one line, not FastAPI's list of dicts.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry import trace
from opentelemetry.trace import StatusCode, format_trace_id
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from .telemetry.traces import traceresponse

logger = logging.getLogger(__name__)


def current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format_trace_id(context.trace_id) if context.is_valid else None


def error_body(detail: object) -> dict[str, object]:
    """`detail` may be a string or a dict with "detail" and "code" (e.g. from the replay limits)."""
    body = dict(detail) if isinstance(detail, dict) else {"detail": detail}
    body["trace_id"] = current_trace_id()
    return body


def one_line(exc: RequestValidationError) -> str:
    """`body.message: String should have at most 8000 characters (and 1 more problem)`."""
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    body = error_body(exc.detail)
    if code := getattr(exc, "code", None):  # limits.Refused: the reason a client can act on
        body["code"] = code
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse(error_body(one_line(exc)), status_code=422)


class UnhandledErrorMiddleware:
    """Turns an exception nobody caught into a 500 with the trace id, inside the server span (the
    outermost handler runs after the span has ended, where no trace id is left to give)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:  # too late for another response: let the server close the connection
                raise
            span = trace.get_current_span()
            span.record_exception(exc)
            span.set_status(StatusCode.ERROR, type(exc).__name__)
            logger.exception("unhandled error")
            context = span.get_span_context()
            # This response starts outside TraceResponseMiddleware, so it names its trace itself.
            headers = {"traceresponse": traceresponse(context)} if context.is_valid else None
            response = JSONResponse(error_body("internal error"), status_code=500, headers=headers)
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Call after init_telemetry, so the 500 middleware sits inside the server span."""
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(UnhandledErrorMiddleware)
