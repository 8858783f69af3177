"""The HTTP API fuzzed against its own OpenAPI document (schemathesis), on SQLite and PostgreSQL.

Every operation of ``/openapi.json`` gets a few generated requests, valid and invalid, sent
with the master key to the app in-process. Each response must not be a 5xx, must have a status
code the document lists for the operation, a content type it lists for that status, and a body
matching the schema it declares.

Generation is bounded (a few examples per operation) and derandomized, so a run is repeatable.
Before fuzzing, a little data is seeded (a sandbox credential, a surface, a profile, a message,
a campaign); about half the cases have their ids replaced by the seeded ones, so operations on
existing resources are exercised too, not only the 404 path.

No request leaves the machine: the services get an outbound transport that only connects to
loopback addresses (``allow_private_provider_urls`` lets fuzzed provider URLs through the SSRF
guard, and nothing in the product refuses public hosts), and ``public_url`` is on ``.test``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import httpx
import pytest
import requests
import schemathesis
from aiohttp.abc import ResolveResult
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from smsbridge.config import Settings
from smsbridge.delivery.http import HttpTransport
from smsbridge.wiring import Services, build_services
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


@pytest.fixture
async def api_schema(client: httpx.AsyncClient, seeded: dict[str, str]) -> schemathesis.BaseSchema:
    """The document the app serves, loaded for generation."""
    response = await client.get("/openapi.json")
    assert response.status_code == 200, response.text
    config = schemathesis.Config.from_dict(
        {
            # the valid admin key is sent with every request (see `_send`); a generated one
            # would only ever give 401
            "generation": {"with-security-parameters": False},
        }
    )
    return schemathesis.openapi.from_dict(response.json(), config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


def _use_seeded_ids(case: schemathesis.Case, seeded: dict[str, str]) -> None:
    for name in ID_FIELDS:
        if case.path_parameters and name in case.path_parameters:
            case.path_parameters[name] = seeded[name]
        if isinstance(case.body, dict) and name in case.body:
            case.body[name] = seeded[name]


async def _send(client: httpx.AsyncClient, case: schemathesis.Case) -> httpx.Response:
    """Send the case through the in-process client: requests serializes it exactly as
    schemathesis would (form, JSON, raw bytes, query), httpx carries the bytes."""
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


@schema.parametrize()
@schema.given(use_seeded=st.booleans())
@settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
async def test_every_operation_honours_the_openapi_document(
    case: schemathesis.Case,
    use_seeded: bool,
    client: httpx.AsyncClient,
    seeded: dict[str, str],
) -> None:
    if use_seeded:
        _use_seeded_ids(case, seeded)
    response = await _send(client, case)
    case.validate_response(response, checks=CHECKS)
