"""Template limits over the API (issue 15, points 1 and 10): refusals are problem+json naming the
field and the limit, with the limits taken from the settings; never a 500, never a long wait."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from smsbridge.config import Settings
from tests.conftest import CredentialFactory

SENDER = "+15550001111"
LONG = "y" * 3_000


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Smaller limits than the defaults: the refusals must name these, read from settings."""
    return settings.model_copy(update={"max_template_chars": 2_000, "max_rendered_chars": 5_000})


@pytest.fixture
async def surface_id(client: httpx.AsyncClient, make_credential: CredentialFactory) -> str:
    credential = await make_credential()
    response = await client.post(
        "/api/v1/surfaces",
        json={"name": "news", "credential_id": credential["id"], "sender": SENDER},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _refused(response: httpx.Response, field: str, fragment: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422
    assert problem["errors"][0]["field"] == field
    assert fragment in problem["errors"][0]["message"], problem


CASES = [
    ("{{ ((((10**64)**64)**64)**64) > 1 }}", "the limit is 4,096"),
    ("{{ 'x'.ljust(10**9) }}", "'ljust' is not allowed"),
    ("{{ '%999999999s'|format(1) }}", "the limit is 5,000 (SMSBRIDGE_MAX_RENDERED_CHARS)"),
    ("{{ v }}{{ v }}", "renders more than 5,000 characters (SMSBRIDGE_MAX_RENDERED_CHARS)"),
    ("{{ [v, v]|join }}", "the limit is 5,000 (SMSBRIDGE_MAX_RENDERED_CHARS)"),
    ("{{ " + "(" * 900 + "1" + ")" * 900 + " }}", "nested more than 48 levels deep"),
    ("{{ x|nosuchfilter }}", "No filter named 'nosuchfilter'"),
    ("x" * 2_001, "is 2,001 characters; the limit is 2,000"),
]


@pytest.mark.parametrize(("body", "fragment"), CASES)
async def test_send_refuses_a_costly_template(
    client: httpx.AsyncClient, surface_id: str, body: str, fragment: str
) -> None:
    response = await client.post(
        "/api/v1/messages",
        json={
            "surface_id": surface_id,
            "to": "+33612345678",
            "body": body,
            "variables": {"v": LONG},
        },
    )
    _refused(response, "body", fragment)


@pytest.mark.parametrize(("body", "fragment"), CASES)
async def test_preview_refuses_a_costly_template(
    client: httpx.AsyncClient, surface_id: str, body: str, fragment: str
) -> None:
    """Going over a limit is a refusal (422), unlike the problems a preview reports."""
    response = await client.post(
        "/api/v1/messages/preview",
        json={"surface_id": surface_id, "body": body, "variables": {"v": LONG}},
    )
    if "nosuchfilter" in body or "ljust" in body:  # what is not allowed: a preview reports it
        assert response.status_code == 200, response.text
        assert fragment in response.json()["errors"][0]["message"]
    else:
        _refused(response, "body", fragment)


async def test_a_huge_template_is_refused_before_compiling(
    client: httpx.AsyncClient, surface_id: str
) -> None:
    body = "{{ profile.firstName|upper }}" * 45_000  # 1.3 MB
    for path in ("/api/v1/messages/preview", "/api/v1/messages"):
        response = await client.post(
            path, json={"surface_id": surface_id, "to": "+33612345678", "body": body}
        )
        _refused(
            response,
            "body",
            "is 1,305,000 characters; the limit is 2,000 (SMSBRIDGE_MAX_TEMPLATE_CHARS)",
        )


async def test_a_campaign_body_over_the_limit_is_refused(
    client: httpx.AsyncClient, surface_id: str
) -> None:
    response = await client.post(
        "/api/v1/campaigns",
        json={
            "name": "huge",
            "surface_id": surface_id,
            "body": "Hi {{ profile.firstName }}" + " " * 2_000,
            "audience": {"all": True},
        },
    )
    _refused(response, "body", "the limit is 2,000 (SMSBRIDGE_MAX_TEMPLATE_CHARS)")


async def test_what_messages_use_still_sends(client: httpx.AsyncClient, surface_id: str) -> None:
    response = await client.post(
        "/api/v1/messages",
        json={
            "surface_id": surface_id,
            "to": "+33612345678",
            "body": "{{ code|upper }}: {{ '%.2f'|format(price) }} {% if vip %}VIP{% endif %}",
            "variables": {"code": "ab12", "price": 9.5, "vip": True},
        },
    )
    assert response.status_code == 202, response.text
    assert response.json()["body"] == "AB12: 9.50 VIP"


def _deep(depth: int) -> dict[str, Any]:
    document: dict[str, Any] = {"to": "{{toNumber}}", "from": "{{fromNumber}}", "m": "{{message}}"}
    for _ in range(depth - 1):
        document = {"x": document}
    return document


@pytest.mark.parametrize(
    "payload",
    [_deep(300), "[" * 10_000 + "]" * 10_000, json.dumps(_deep(300))],
    ids=["object-300", "text-10000", "text-object-300"],
)
async def test_a_deeply_nested_payload_template_is_a_422(
    make_credential: CredentialFactory, client: httpx.AsyncClient, payload: object
) -> None:
    response = await client.post(
        "/api/v1/credentials",
        json={
            "name": "deep",
            "provider_name": "Mock",
            "provider_url": "https://provider.example/sms",
            "auth": {"type": "bearer", "token": "tok-live-abcdef123456"},
            "payload": payload,
        },
    )
    _refused(response, "payload", "32 levels")
