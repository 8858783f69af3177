"""The fast path (``api/fast_path.py``): well-formed sends and webhooks are answered without
FastAPI's routing; anything else reaches the application with its body intact and is answered
exactly as before. Checked on SQLite and PostgreSQL through the real ASGI stack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from smsbridge.api.fast_path import FastPaths
from smsbridge.app import create_app
from smsbridge.config import Settings
from smsbridge.container import Services
from tests.conftest import ADMIN_KEY

SENDER = "+15550001111"


class Served:
    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def paths(self) -> FastPaths:
        layer: Any = self._app.middleware_stack
        while not isinstance(layer, FastPaths):
            layer = layer.app
        return layer

    def counts(self) -> tuple[int, int]:
        found = self.paths()
        return found.served, found.passed


@pytest.fixture
async def app(settings: Settings, services: Services) -> AsyncIterator[FastAPI]:
    built = create_app(settings, prebuilt=services)
    async with built.router.lifespan_context(built):
        yield built


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    ) as client:
        yield client


@pytest.fixture
async def surface(http: httpx.AsyncClient) -> dict[str, Any]:
    created = await http.post("/api/v1/credentials", json={"name": "sbx", "preset": "sandbox"})
    assert created.status_code == 201, created.text
    response = await http.post(
        "/api/v1/surfaces",
        json={"name": "alerts", "sender": SENDER, "credential_id": created.json()["id"]},
    )
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    return found


async def test_a_well_formed_send_is_answered_on_the_fast_path(
    app: FastAPI, http: httpx.AsyncClient, surface: dict[str, Any]
) -> None:
    served = Served(app)
    before = served.counts()
    body = {"surface_id": surface["id"], "to": "+33612345678", "body": "Code 1234"}
    sent = await http.post("/api/v1/messages", json=body, headers={"Idempotency-Key": "k-1"})
    assert sent.status_code == 202, sent.text
    assert sent.headers["content-type"] == "application/json"
    again = await http.post("/api/v1/messages", json=body, headers={"Idempotency-Key": "k-1"})
    assert again.json() == sent.json()
    assert served.counts() == (before[0] + 2, before[1])
    stored = (await http.get(f"/api/v1/messages/{sent.json()['id']}")).json()
    assert {k: v for k, v in stored.items() if k != "events"} == {
        k: v for k, v in sent.json().items() if k != "events"
    }


@pytest.mark.parametrize(
    ("headers", "body", "status", "fields"),
    [
        ({"Authorization": "Bearer wrong"}, {}, 401, []),
        ({}, {"surface_id": 1, "body": "x"}, 422, ["surface_id"]),
        ({}, {"surface_id": "s", "to": "+33612345678", "body": "x", "colour": 1}, 422, ["colour"]),
        ({"Idempotency-Key": ""}, None, 422, ["Idempotency-Key"]),
        ({}, {"surface_id": "srf_missing", "to": "+33612345678", "body": "x"}, 422, ["surface_id"]),
    ],
)
async def test_anything_unusual_is_answered_as_the_application_answers_it(
    app: FastAPI,
    http: httpx.AsyncClient,
    surface: dict[str, Any],
    headers: dict[str, str],
    body: dict[str, Any] | None,
    status: int,
    fields: list[str],
) -> None:
    document = (
        body if body is not None else {"surface_id": surface["id"], "to": "+3361", "body": "x"}
    )
    response = await http.post("/api/v1/messages", json=document, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == fields


async def test_a_body_that_is_not_json_reaches_the_application_whole(
    app: FastAPI, http: httpx.AsyncClient, surface: dict[str, Any]
) -> None:
    served = Served(app)
    before = served.counts()
    broken = b'{"surface_id": "' + surface["id"].encode() + b'", "to": '
    response = await http.post(
        "/api/v1/messages", content=broken, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert "JSON" in response.text
    assert served.counts() == (before[0], before[1] + 1)


async def test_webhooks_are_answered_on_the_fast_path(
    app: FastAPI, http: httpx.AsyncClient, surface: dict[str, Any]
) -> None:
    served = Served(app)
    before = served.counts()
    status_hook = surface["status_webhook_url"][surface["status_webhook_url"].index("/hooks/") :]
    report = await http.post(status_hook, json={"id": "sbx_unknown", "status": "delivered"})
    assert report.status_code == 200, report.text
    assert report.json()["unknown"] == 1
    inbound = surface["inbound_webhook_url"][surface["inbound_webhook_url"].index("/hooks/") :]
    stop = await http.post(
        inbound + "?ignored=1", json={"from": "+33612345678", "to": SENDER, "text": "STOP"}
    )
    assert stop.status_code == 200, stop.text
    assert stop.json()["opt_outs"] == 1
    unknown = await http.post("/hooks/status/not-a-token", json={})
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert served.counts() == (before[0] + 3, before[1])


@pytest.mark.parametrize("path", ["/hooks/status/abcdef", "/api/v1/messages"])
async def test_a_client_that_hangs_up_mid_body_is_not_a_server_error(
    app: FastAPI, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A provider giving up on a webhook (or a client on a send) while its body is on its
    way: answered 400 for nobody, logged as information, never as an unexpected error."""
    arriving: list[dict[str, Any]] = [
        {"type": "http.request", "body": b'{"id": "x", ', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, Any]:
        return arriving.pop(0) if arriving else {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {ADMIN_KEY}".encode()),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 400
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
