"""The hottest requests served without FastAPI's per-request machinery.

``POST /api/v1/messages`` and the provider webhooks (``POST /hooks/status/{token}``,
``POST /hooks/inbound/{token}``) arrive by the thousand per second. Through FastAPI each pays
routing over every route, the resolution of four dependencies, and the middleware stack:
profiled, about twice the CPU of the work itself. :class:`FastPaths` (pure ASGI, outermost)
serves them directly when they are well-formed: the same key check, limits, body model,
services and problem answers as the routes in ``api/messages.py`` and ``api/hooks.py``, which
stay the documented operations.

Anything unusual goes to the application as if this were not here, with the body read so far
replayed: no key or a wrong one, a role that does not allow it, a body over its limit, not
JSON, or failing the body model. The application then answers exactly as it always has (the
401, 403, 413 or 422 with the fields at fault), so no error is answered by two pieces of code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smsbridge.api.hooks import webhook_request
from smsbridge.api.messages import answer, idempotency_of, send_request
from smsbridge.api.problems import error_problem, problem
from smsbridge.api.schemas.messages import MessageIn
from smsbridge.errors import AuthenticationRequired, PermissionDenied, SmsbridgeError
from smsbridge.services.api_keys import Role
from smsbridge.services.catalog import ServiceCatalog

log = logging.getLogger("smsbridge.api")

MESSAGES = "/api/v1/messages"
HOOKS = ("/hooks/status/", "/hooks/inbound/")


class _Passthrough(Exception):
    """The request is not for the fast path: the application answers it."""


class _Read:
    """The body as read so far, to hand over to the application on a passthrough."""

    __slots__ = ("chunks", "complete")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.complete = False


class FastPaths:
    def __init__(
        self, app: ASGIApp, *, catalog: Callable[[], ServiceCatalog], max_request_bytes: int
    ) -> None:
        self.app = app
        self._catalog = catalog
        self._max_request_bytes = max_request_bytes  # as RequestLimits has it
        self.served = 0
        """Requests answered here."""
        self.passed = 0
        """Requests that looked like ours but went to the application."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path == MESSAGES:
            serve = self._message
        elif path.startswith(HOOKS) and path.count("/") == 3 and "\x00" not in path:
            serve = self._hook
        else:
            await self.app(scope, receive, send)
            return
        read = _Read()
        try:
            response = await serve(scope, receive, read)
        except _Passthrough:
            self.passed += 1
            await self.app(scope, _replaying(read, receive), send)
            return
        self.served += 1
        await response(scope, receive, send)

    async def _message(self, scope: Scope, receive: Receive, read: _Read) -> Response:
        headers = _headers(scope)
        authorization = headers.get(b"authorization", b"")
        if not authorization[:7].lower() == b"bearer " or b"json" not in headers.get(
            b"content-type", b""
        ):
            raise _Passthrough
        svc = self._catalog()
        try:
            who = await svc.api_keys.authenticate(authorization[7:].strip().decode("latin-1"))
            who.require(Role.SENDER)
        except (AuthenticationRequired, PermissionDenied):
            raise _Passthrough from None
        body = await _body(scope, headers, receive, read, self._max_request_bytes)
        try:
            message = MessageIn.model_validate_json(body)
        except ValidationError:
            raise _Passthrough from None
        key = headers.get(b"idempotency-key")
        try:
            idempotency = idempotency_of(
                key.decode("latin-1") if key is not None else None, who, MESSAGES_OP, message
            )
            status, view = await svc.messages.send(send_request(message), idempotency=idempotency)
        except SmsbridgeError as exc:
            return error_problem(exc)
        except Exception:
            log.exception("unexpected error on POST %s", MESSAGES)
            return problem(500, "internal error; see the server log", slug="internal")
        return answer(status, view)

    async def _hook(self, scope: Scope, receive: Receive, read: _Read) -> Response:
        headers = _headers(scope)
        svc = self._catalog()
        body = await _body(scope, headers, receive, read, svc.settings.max_webhook_bytes)
        kind, token = scope["path"][len("/hooks/") :].split("/")
        request = webhook_request(
            svc.settings.public_url,
            scope["path"],
            scope.get("query_string", b"").decode("latin-1"),
            {k.decode("latin-1"): v.decode("latin-1") for k, v in headers.items()},
            body,
        )
        try:
            if kind == "status":
                result = await svc.webhooks.delivery_reports(token, request)
            else:
                result = await svc.inbound.receive(token, request)
        except SmsbridgeError as exc:
            return error_problem(exc)
        except Exception:
            log.exception("unexpected error on a %s webhook", kind)
            return problem(500, "internal error; see the server log", slug="internal")
        return answer(200, result)


MESSAGES_OP = "POST /api/v1/messages"


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The request's headers, names lower-case (as ASGI gives them); the last of repeats."""
    return dict(scope["headers"])


async def _body(
    scope: Scope, headers: dict[bytes, bytes], receive: Receive, read: _Read, limit: int
) -> bytes:
    """The whole body, kept in ``read`` as it arrives; :class:`_Passthrough` when it is (or
    declares to be) over ``limit``: the application refuses it."""
    declared = headers.get(b"content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise _Passthrough
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _Passthrough  # the client went away: let the application see it
        chunk: bytes = message.get("body", b"")
        read.chunks.append(chunk)
        read.complete = not message.get("more_body", False)
        size += len(chunk)
        if size > limit:
            raise _Passthrough
        if read.complete:
            return b"".join(read.chunks)


def _replaying(read: _Read, receive: Receive) -> Receive:
    """``receive`` giving back what was read first (as one message), then the rest."""
    pending: list[Message] = []
    if read.chunks:
        body = b"".join(read.chunks)
        pending.append({"type": "http.request", "body": body, "more_body": not read.complete})

    async def replay() -> Any:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
