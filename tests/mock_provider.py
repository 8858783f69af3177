"""A real loopback HTTP server standing in for an SMS provider; it records every request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    raw_path: str
    query: str
    headers: dict[str, str]
    body: bytes
    at: float = 0.0
    """time.time() when the request arrived."""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Reply:
    status: int = 200
    json: object | None = field(default_factory=lambda: {"id": "prov-1"})
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    close: bool = False
    """Drop the connection instead of answering (after ``delay``)."""


Responder = Callable[[Recorded], Reply | Awaitable[Reply]]


class MockProvider:
    """Serve on 127.0.0.1 (random port); ``requests`` lists what arrived, in order."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.responder: Responder = lambda _r: Reply()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reply(self, reply: Reply) -> None:
        self.responder = lambda _r: reply

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        recorded = Recorded(
            method=request.method,
            path=request.path,
            raw_path=request.raw_path,
            query=request.query_string,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.read(),
            at=time.time(),
        )
        self.requests.append(recorded)
        reply = self.responder(recorded)
        if asyncio.iscoroutine(reply):
            reply = await reply
        assert isinstance(reply, Reply)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.close:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if reply.json is None:
            return web.Response(status=reply.status, headers=reply.headers)
        return web.json_response(reply.json, status=reply.status, headers=reply.headers)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def scripted(*replies: Reply) -> Responder:
    """Answer with ``replies`` in order, then repeat the last one."""
    remaining = list(replies)

    def respond(_request: Recorded) -> Reply:
        return remaining.pop(0) if len(remaining) > 1 else remaining[0]

    return respond


def credential_document(name: str, url: str, *, token: str, **extra: object) -> dict[str, object]:
    """A bearer credential posting JSON ``to``/``from``/``text``/``ref`` (the message id) to
    ``url`` and reading the provider id at ``$.id`` — what the mock answers. ``extra`` adds or
    replaces fields."""
    return {
        "name": name,
        "provider_url": url,
        "auth": {"type": "bearer", "token": token},
        "payload": {
            "to": "{{toNumber}}",
            "from": "{{fromNumber}}",
            "text": "{{message}}",
            "ref": "{{messageId}}",
        },
        "response": {"message_id_path": "$.id"},
        **extra,
    }
