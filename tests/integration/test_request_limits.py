"""Request bodies are bounded and the API key is checked before a body is read (issue 15.3);
profile imports have their own limit (15.2); deep JSON and NUL in imports are refused, never
a 500 (15.10)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from smsbridge.app import create_app
from smsbridge.config import Settings
from smsbridge.container import Services
from tests.conftest import ADMIN_KEY

REQUEST_LIMIT = 2048
IMPORT_LIMIT = 8192
MESSAGE = {"surface_id": "srf_x", "to": "+33612345678", "body": "hi"}


class Body:
    """A request body sent in chunks, recording how much of it the server pulled."""

    def __init__(self, size: int, chunk: int = 512, fill: bytes = b" ") -> None:
        self.size, self.chunk, self.fill = size, chunk, fill
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.size:
            piece = self.fill * min(self.chunk, self.size - self.pulled)
            self.pulled += len(piece)
            yield piece


@pytest.fixture
async def limited(settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """A client (no key by default) of an app with small body limits."""
    small = settings.model_copy(
        update={"max_request_bytes": REQUEST_LIMIT, "max_import_bytes": IMPORT_LIMIT}
    )
    app = create_app(small, prebuilt=services)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http,
    ):
        yield http


ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"}


def _assert_too_large(response: httpx.Response, limit: int, setting: str) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 413 and problem["type"] == "urn:smsbridge:problem:too-large"
    assert str(limit) in problem["detail"] and setting in problem["detail"]


async def test_a_declared_length_over_the_limit_is_refused_unread(
    limited: httpx.AsyncClient,
) -> None:
    body = Body(REQUEST_LIMIT + 1)
    headers = {**ADMIN, "Content-Length": str(REQUEST_LIMIT + 1)}
    response = await limited.post("/api/v1/messages", content=body, headers=headers)
    _assert_too_large(response, REQUEST_LIMIT, "SMSBRIDGE_MAX_REQUEST_BYTES")
    assert body.pulled == 0


async def test_a_streamed_body_is_cut_at_the_limit(limited: httpx.AsyncClient) -> None:
    body = Body(1_000_000)  # chunked: no Content-Length
    response = await limited.post("/api/v1/messages", content=body, headers=ADMIN)
    _assert_too_large(response, REQUEST_LIMIT, "SMSBRIDGE_MAX_REQUEST_BYTES")
    assert body.pulled <= REQUEST_LIMIT + body.chunk


async def test_bodies_under_the_limit_go_through(limited: httpx.AsyncClient) -> None:
    response = await limited.post("/api/v1/messages", json=MESSAGE, headers=ADMIN)
    assert response.status_code == 422, response.text  # read and parsed: no such surface
    assert response.json()["errors"][0]["field"] == "surface_id"


@pytest.mark.parametrize("path", ["/api/v1/messages", "/api/v1/profiles/import"])
@pytest.mark.parametrize("key", [None, "Bearer sbk_sender_wrong", "Basic abc"])
async def test_the_key_is_checked_before_the_body_is_read(
    limited: httpx.AsyncClient, path: str, key: str | None
) -> None:
    body = Body(10_000_000)  # never sent: the answer comes first
    headers = {"Content-Type": "application/x-ndjson"} | ({"Authorization": key} if key else {})
    refused = await limited.post(path, content=body, headers=headers)
    assert body.pulled == 0
    # the same answer as the key check in the route's dependencies gives
    usual = await limited.get("/api/v1/profiles", headers={"Authorization": key} if key else {})
    assert refused.status_code == usual.status_code == 401
    assert refused.json() == usual.json()
    assert refused.headers["www-authenticate"] == usual.headers["www-authenticate"] == "Bearer"
    assert refused.headers["content-type"] == "application/problem+json"


async def test_roles_are_still_checked_by_the_routes(
    limited: httpx.AsyncClient, services: Services
) -> None:
    viewer = await services.api_keys.create("viewer", "viewer")
    headers = {"Authorization": f"Bearer {viewer.key}"}
    response = await limited.post("/api/v1/messages", json=MESSAGE, headers=headers)
    assert response.status_code == 403


async def test_imports_have_their_own_limit(limited: httpx.AsyncClient) -> None:
    ndjson = {**ADMIN, "Content-Type": "application/x-ndjson"}
    lines = b"".join(b'{"external_id": "u%d", "phone": "+3361%07d"}\n' % (n, n) for n in range(100))
    assert REQUEST_LIMIT < len(lines) < IMPORT_LIMIT
    accepted = await limited.post("/api/v1/profiles/import", content=lines, headers=ndjson)
    assert accepted.status_code == 200 and accepted.json()["imported"] == 100

    declared = Body(IMPORT_LIMIT + 1, fill=b"\n")
    response = await limited.post(
        "/api/v1/profiles/import",
        content=declared,
        headers={**ndjson, "Content-Length": str(IMPORT_LIMIT + 1)},
    )
    _assert_too_large(response, IMPORT_LIMIT, "SMSBRIDGE_MAX_IMPORT_BYTES")
    assert declared.pulled == 0

    streamed = Body(1_000_000, fill=b"\n")
    response = await limited.post("/api/v1/profiles/import", content=streamed, headers=ndjson)
    _assert_too_large(response, IMPORT_LIMIT, "SMSBRIDGE_MAX_IMPORT_BYTES")
    assert streamed.pulled <= IMPORT_LIMIT + streamed.chunk


MULTIPART = {"Content-Type": "multipart/form-data; boundary=x"}
FILE_PART = (
    b'--x\r\nContent-Disposition: form-data; name="file"; filename="p.csv"\r\n'
    b"Content-Type: text/csv\r\n\r\nexternal_id,phone\n"
)


@pytest.mark.parametrize(
    ("path", "limit", "setting"),
    [
        ("/admin/profiles/import", IMPORT_LIMIT, "SMSBRIDGE_MAX_IMPORT_BYTES"),
        ("/admin/login", REQUEST_LIMIT, "SMSBRIDGE_MAX_REQUEST_BYTES"),
    ],
)
async def test_admin_posts_over_their_limit_are_refused_unread(
    limited: httpx.AsyncClient, path: str, limit: int, setting: str
) -> None:
    declared = Body(limit + 1)
    headers = {**MULTIPART, "Content-Length": str(limit + 1)}
    response = await limited.post(path, content=declared, headers=headers)
    _assert_too_large(response, limit, setting)
    assert declared.pulled == 0


async def test_admin_forms_are_cut_at_the_limit(limited: httpx.AsyncClient) -> None:
    # the sign-in form is read before anything is checked: a big "file" streams into it
    streamed = Body(1_000_000, fill=b"a")

    async def form() -> AsyncIterator[bytes]:
        yield FILE_PART
        async for chunk in streamed:
            yield chunk

    response = await limited.post("/admin/login", content=form(), headers=MULTIPART)
    _assert_too_large(response, REQUEST_LIMIT, "SMSBRIDGE_MAX_REQUEST_BYTES")
    assert streamed.pulled <= REQUEST_LIMIT + streamed.chunk


async def test_webhooks_keep_their_own_limit(limited: httpx.AsyncClient) -> None:
    response = await limited.post("/hooks/inbound/unknown-token", content=b"x" * 4 * REQUEST_LIMIT)
    assert response.status_code != 413


# --- a real server: it answers while the client is still sending -----------------------------


async def _first_answer_while_sending(port: int, head: bytes, total: int) -> tuple[bytes, int]:
    """Send ``head`` then up to ``total`` body bytes; the status line of the answer and how
    many body bytes were sent when it arrived."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0

    async def send_body() -> None:
        nonlocal sent
        chunk = b" " * 65_536
        while sent < total:
            writer.write(chunk[: total - sent])
            await writer.drain()
            sent += min(len(chunk), total - sent)

    writer.write(head)
    sender = asyncio.create_task(send_body())
    try:
        # a generous "answered at all" bound: reading 200 MB first would also answer, later
        status = await asyncio.wait_for(reader.readline(), timeout=60)
        answered_after = sent
    finally:
        sender.cancel()
        writer.close()
    return status, answered_after


async def test_a_real_server_answers_before_a_200_mb_body_is_sent(
    settings: Settings, services: Services
) -> None:
    app = create_app(settings, prebuilt=services)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        total = 200 * 1024 * 1024
        no_key = (
            f"POST /api/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {total}\r\n\r\n"
        ).encode()
        status, sent = await _first_answer_while_sending(port, no_key, total)
        assert status.startswith(b"HTTP/1.1 401"), status
        assert sent < total
        chunked = (
            f"POST /api/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {ADMIN_KEY}\r\nTransfer-Encoding: chunked\r\n\r\n"
            "8000000\r\n"  # one chunk of 128 MiB, never finished
        ).encode()
        status, sent = await _first_answer_while_sending(port, chunked, 128 * 1024 * 1024)
        assert status.startswith(b"HTTP/1.1 413"), status
        assert sent < 128 * 1024 * 1024
    finally:
        server.should_exit = True
        await serving


# --- bad input is a 422 naming the field, never a 500 ----------------------------------------


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("depth", [400, 900])
@pytest.mark.parametrize(
    ("path", "document", "field"),
    [
        ("/api/v1/messages", MESSAGE, "variables"),
        ("/api/v1/campaigns", {"name": "c", "surface_id": "s", "body": "hi"}, "audience"),
        ("/api/v1/credentials", {"name": "c", "provider_url": "https://p.test/"}, "payload"),
    ],
)
async def test_deeply_nested_json_is_a_422_naming_the_field(
    client: httpx.AsyncClient, path: str, document: dict[str, Any], field: str, depth: int
) -> None:
    body = json.dumps({**document, field: _nested(depth)})
    response = await client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert any(e["field"] == field and "nested deeper than" in e["message"] for e in errors)


async def test_profile_attributes_nested_deeply_are_a_422(client: httpx.AsyncClient) -> None:
    body = json.dumps({"phone": "+33612345678", "attributes": _nested(600)})
    response = await client.put(
        "/api/v1/profiles/deep", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "attributes"


async def test_nul_in_imported_attributes_is_a_line_error(client: httpx.AsyncClient) -> None:
    lines = [
        {"external_id": "n1", "phone": "+33612345678", "attributes": {"note": "a\u0000b"}},
        {"external_id": "n2", "phone": "+33612345679", "attributes": {"list": ["ok", "\u0000"]}},
        {"external_id": "n3", "phone": "+33612345670", "attributes": {"note": "fine"}},
    ]
    content = "".join(json.dumps(line) + "\n" for line in lines).encode()
    response = await client.post(
        "/api/v1/profiles/import",
        content=content,
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["imported"] == 1
    assert [(e["line"], e["field"]) for e in result["errors"]] == [
        (1, "attributes.note"),
        (2, "attributes.list"),
    ]
    assert all("U+0000" in e["message"] for e in result["errors"])
