"""Request bodies, bounded and authenticated before they are read.

:class:`RequestLimits` sits in front of routing (FastAPI reads and parses a JSON body before it
runs any dependency, so a check in a dependency comes too late):

- a body is at most ``SMSBRIDGE_MAX_REQUEST_BYTES``; profile imports (streamed, never held
  whole) at most ``SMSBRIDGE_MAX_IMPORT_BYTES``; webhooks keep their own limit
  (``/hooks/``, checked where the body is read);
- a declared ``Content-Length`` over the limit is refused at once; a body without one is
  counted as it arrives and refused as soon as it passes the limit, never read further;
- on ``/api/`` a request with a body shows a valid API key first: a missing or wrong key is
  the usual 401 before one byte of the body is read. Role checks stay in the route's
  dependencies, which reuse the key checked here.

Each refusal is a problem+json answer naming the limit.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smsbridge.api.deps import authenticate
from smsbridge.api.problems import error_problem, problem
from smsbridge.errors import AuthenticationRequired

IMPORT_PATHS = frozenset({"/api/v1/profiles/import", "/admin/profiles/import"})
OWN_LIMIT_PREFIXES = ("/hooks/",)


class _BodyTooLarge(Exception):
    """Raised into the application from ``receive`` once the body passed its limit."""


def too_large(limit: int, setting: str) -> Response:
    return problem(
        413,
        f"the request body is larger than {limit} bytes, the limit set by {setting}",
        slug="too-large",
    )


def _declared_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    return int(value) if value is not None and value.isascii() and value.isdigit() else None


class RequestLimits:
    """Pure ASGI middleware: body size limits and authentication before the body is read."""

    def __init__(self, app: ASGIApp, *, max_request_bytes: int, max_import_bytes: int) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes
        self.max_import_bytes = max_import_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(OWN_LIMIT_PREFIXES):
            await self.app(scope, receive, send)
            return
        if path in IMPORT_PATHS:
            limit, setting = self.max_import_bytes, "SMSBRIDGE_MAX_IMPORT_BYTES"
        else:
            limit, setting = self.max_request_bytes, "SMSBRIDGE_MAX_REQUEST_BYTES"
        headers = Headers(scope=scope)
        declared = _declared_length(headers)
        has_body = bool(declared) or "transfer-encoding" in headers
        if has_body and path.startswith("/api/"):
            try:
                await authenticate(HTTPConnection(scope))
            except AuthenticationRequired as exc:
                await error_problem(exc)(scope, receive, send)
                return
        if declared is not None and declared > limit:
            await too_large(limit, setting)(scope, receive, send)
            return
        await self._counted(scope, receive, send, limit, setting)

    async def _counted(
        self, scope: Scope, receive: Receive, send: Send, limit: int, setting: str
    ) -> None:
        """Run the application, refusing the body once more than ``limit`` bytes arrived."""
        received = 0
        started = False  # the application began its answer
        refused = False  # we answered 413 in its place

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if not started:
                        refused = True
                        await too_large(limit, setting)(scope, receive, send)
                    raise _BodyTooLarge(setting)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:  # whatever the application makes of the aborted body goes nowhere
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused:
                raise
