"""The HTTP API fuzzed against its own OpenAPI document (schemathesis), on SQLite and PostgreSQL.

Every operation of ``/openapi.json`` gets a few generated requests, valid and invalid, sent
with the master key to the app in-process. Each response must not be a 5xx, must have a status
code the document lists for the operation, a content type it lists for that status, and a body
matching the schema it declares.

Generation is bounded (20 examples per operation, plus schemathesis' coverage phase: the
boundary values of every field) and derandomized, so a run is repeatable.
Before fuzzing, a little data is seeded (a sandbox credential, a surface, a profile, a message,
a campaign); a case naming resources is sent a second time with the seeded ids, so operations
on existing resources are exercised too, not only the 404 path.

No request leaves the machine: the services get an outbound transport that only connects to
loopback addresses (``allow_private_provider_urls`` lets fuzzed provider URLs through the SSRF
guard, and nothing in the product refuses public hosts), and ``public_url`` is on ``.test``.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import aiohttp
import httpx
import pytest
import requests
import schemathesis
from aiohttp.abc import ResolveResult
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from smsbridge.app import create_app
from smsbridge.config import Settings
from smsbridge.container import Services, build_services
from smsbridge.delivery.http import HttpTransport
from tests.conftest import ADMIN_KEY

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# Path parameters and JSON body fields that name a resource, and the seeded id they may take.
ID_FIELDS = (
    "credential_id",
    "surface_id",
    "message_id",
    "campaign_id",
    "external_id",
    "profile_id",
)


class LoopbackOnlyConnector(aiohttp.TCPConnector):
    """Connects to loopback only, without a DNS query for any other name."""

    async def _resolve_host(
        self, host: str, port: int, traces: Sequence[Any] | None = None
    ) -> list[ResolveResult]:
        try:
            loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise OSError(f"the API fuzz test connects to loopback only, not to {host}")
        return await super()._resolve_host(host, port, traces)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    """The wired services, with outbound provider calls confined to loopback."""
    transport = HttpTransport(
        aiohttp.ClientSession(connector=LoopbackOnlyConnector(), trust_env=False)
    )
    built = await build_services(settings, transport=transport)
    try:
        yield built
    finally:
        await built.close()


@pytest.fixture
async def seeded(client: httpx.AsyncClient) -> dict[str, str]:
    """One resource of each kind, created through the API; their ids by field name."""

    async def create(method: str, url: str, document: dict[str, Any]) -> dict[str, Any]:
        response = await client.request(method, url, json=document)
        assert response.status_code < 300, response.text
        created: dict[str, Any] = response.json()
        return created

    credential = await create(
        "POST", "/api/v1/credentials", {"name": "fuzz-sandbox", "preset": "sandbox"}
    )
    surface = await create(
        "POST",
        "/api/v1/surfaces",
        {"name": "fuzz", "credential_id": credential["id"], "sender": "+15550001111"},
    )
    await create(
        "PUT",
        "/api/v1/profiles/fuzz-1",
        {"phone": "+33612345678", "attributes": {"firstName": "Ana", "country": "FR"}},
    )
    message = await create(
        "POST",
        "/api/v1/messages",
        {"surface_id": surface["id"], "to": "+33612345679", "body": "Hi https://acme.example/x"},
    )
    campaign = await create(
        "POST",
        "/api/v1/campaigns",
        {"name": "fuzz", "surface_id": surface["id"], "body": "Hi", "audience": {"all": True}},
    )
    return {
        "credential_id": credential["id"],
        "surface_id": surface["id"],
        "message_id": message["id"],
        "campaign_id": campaign["id"],
        "external_id": "fuzz-1",
        "profile_id": "fuzz-1",
    }


def _load_schema() -> schemathesis.BaseSchema:
    """The document the app serves at ``/openapi.json``, loaded at collection time so that each
    operation is its own test. (Building it touches no database; the lazy
    ``schemathesis.pytest.from_fixture`` loader fails on pytest 9: it sets ``Node._nodeid``.)"""
    app = create_app(
        Settings(
            database_url="sqlite+aiosqlite://",
            admin_key=SecretStr(ADMIN_KEY),
            secret_keys=SecretStr(Fernet.generate_key().decode()),
        )
    )
    config = schemathesis.Config.from_dict(
        {
            # the valid admin key goes with every request (see `_send`); a generated one only
            # ever gets a 401
            "generation": {"with-security-parameters": False},
            # the coverage phase (every boundary value of every field, not bounded by
            # max_examples) runs too: about 15 to 20 s more per database on the 2-vCPU machine
            "phases": {"coverage": {"enabled": True}},
        }
    )
    return schemathesis.openapi.from_dict(app.openapi(), config=config)


schema = _load_schema()
# The import body is declared as a string (NDJSON lines); it goes on the wire as text.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")


def _use_seeded_ids(case: schemathesis.Case, seeded: dict[str, str]) -> bool:
    """Point the case's path parameters and body fields naming a resource at the seeded ones;
    whether it had any."""
    replaced = False
    for name in ID_FIELDS:
        if case.path_parameters and name in case.path_parameters:
            case.path_parameters[name] = seeded[name]
            replaced = True
        if isinstance(case.body, dict) and name in case.body:
            case.body[name] = seeded[name]
            replaced = True
    return replaced


async def _send(client: httpx.AsyncClient, case: schemathesis.Case) -> httpx.Response:
    """Send ``case`` through the in-process client: requests serializes it exactly as
    schemathesis would (JSON, raw bytes, query), httpx carries the bytes."""
    kwargs = case.as_transport_kwargs(
        base_url=str(client.base_url), headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    )
    prepared = requests.Request(
        method=kwargs["method"],
        url=kwargs["url"],
        headers=kwargs.get("headers"),
        params=kwargs.get("params"),
        cookies=kwargs.get("cookies"),
        json=kwargs.get("json"),
        data=kwargs.get("data"),
        files=kwargs.get("files"),
    ).prepare()
    assert prepared.url is not None
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    return await client.request(
        prepared.method or case.method,
        prepared.url,
        headers=dict(prepared.headers),
        content=body,
    )


Send = Callable[[schemathesis.Case], httpx.Response]


@pytest.fixture
async def send(client: httpx.AsyncClient) -> Send:
    """Send a case and wait for the answer, from a synchronous test.

    The test runs under Hypothesis, which calls it synchronously for each example; its
    requests run on the (idle) event loop that the app, its services and the client were
    set up on.
    """
    loop = asyncio.get_running_loop()

    def run(case: schemathesis.Case) -> httpx.Response:
        return loop.run_until_complete(_send(client, case))

    return run


@schema.parametrize()
@settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    database=None,
    # one app and database per operation, kept across its examples as a live server would be
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_every_operation_honours_the_openapi_document(
    case: schemathesis.Case, send: Send, seeded: dict[str, str]
) -> None:
    case.validate_response(send(case), checks=CHECKS)
    # the same case again on existing resources, so more than the 404 path is exercised
    if _use_seeded_ids(case, seeded):
        case.validate_response(send(case), checks=CHECKS)


async def test_the_fuzzed_document_is_the_one_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == schema.raw_schema


async def test_provider_calls_stay_on_loopback(client: httpx.AsyncClient) -> None:
    """What keeps the fuzzing off the network: a credential on a public host, tested."""
    created = await client.post(
        "/api/v1/credentials",
        json={
            "name": "public",
            "provider_url": "https://93.184.215.14/sms",
            "auth": {"type": "none"},
            "payload": {"t": "{{toNumber}}", "f": "{{fromNumber}}", "m": "{{message}}"},
        },
    )
    assert created.status_code == 201, created.text
    tested = await client.post(
        f"/api/v1/credentials/{created.json()['id']}/test",
        json={"to": "+33612345678", "from": "+15550001111", "message": "hi"},
    )
    assert tested.status_code == 200, tested.text
    assert tested.json()["ok"] is False
    # an IP literal needs no DNS: only the loopback-only resolver can have refused it
    assert "DNS lookup failed" in tested.json()["error"]
