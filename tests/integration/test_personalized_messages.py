"""Personalized single sends and the message preview, over the API on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select

from smsbridge.container import Services
from smsbridge.storage.tables import outbox, suppressions
from tests.conftest import CredentialFactory

SENDER = "+15550001111"


@pytest.fixture
async def surface_id(client: httpx.AsyncClient, make_credential: CredentialFactory) -> str:
    credential = await make_credential()
    response = await client.post(
        "/api/v1/surfaces",
        json={"name": "news", "credential_id": credential["id"], "sender": SENDER},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
async def ana(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.put(
        "/api/v1/profiles/ana",
        json={"phone": "+33612345678", "attributes": {"firstName": "ana", "tier": "gold"}},
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def _send(client: httpx.AsyncClient, surface_id: str, **fields: Any) -> httpx.Response:
    return await client.post("/api/v1/messages", json={"surface_id": surface_id, **fields})


async def test_send_to_a_profile_renders_its_attributes(
    client: httpx.AsyncClient, surface_id: str, ana: dict[str, Any]
) -> None:
    response = await _send(
        client,
        surface_id,
        profile_id="ana",
        body="Hi {{ profile.firstName | title }}{% if profile.tier == 'gold' %} (gold){% endif %}"
        ", code {{ code }}, {{ profile.missing | default('n/a') }}",
        variables={"code": "X7"},
    )
    assert response.status_code == 202, response.text
    view = response.json()
    assert view["to"] == "+33612345678"
    assert view["body"] == "Hi Ana (gold), code X7, n/a"
    assert view["profile_id"] == "ana"


async def test_profile_values_are_data_never_templates(
    client: httpx.AsyncClient, surface_id: str
) -> None:
    await client.put(
        "/api/v1/profiles/evil",
        json={
            "phone": "+33612345670",
            "attributes": {"firstName": "{{ 7*7 }}{% if 1 %}x{% endif %}"},
        },
    )
    response = await _send(client, surface_id, profile_id="evil", body="Hi {{ profile.firstName }}")
    assert response.json()["body"] == "Hi {{ 7*7 }}{% if 1 %}x{% endif %}"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("{{ ''.__class__.__mro__ }}", "not allowed"),
        ("{{ profile.__class__.__init__.__globals__ }}", "not allowed"),
        ("{{ 'x' * 100000000 }}", "the limit is 10,000"),
        ("{% for i in range(3) %}x{% endfor %}", "not supported"),
        ("Hello\n{{ profile.firstName ", "line 2, column 1"),
        ("ok {{ a }} then {{ b + }} end", "line 1, column 17"),
    ],
)
async def test_unsafe_or_broken_templates_are_refused(
    client: httpx.AsyncClient, surface_id: str, ana: dict[str, Any], body: str, fragment: str
) -> None:
    response = await _send(client, surface_id, profile_id="ana", body=body)
    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    assert error["field"] == "body"
    assert fragment in error["message"]


async def test_recipient_must_be_one_of_to_or_profile(
    client: httpx.AsyncClient, surface_id: str, ana: dict[str, Any]
) -> None:
    both = await _send(client, surface_id, profile_id="ana", to="+33612345678", body="x")
    neither = await _send(client, surface_id, body="x")
    unknown = await _send(client, surface_id, profile_id="nobody", body="x")
    assert [r.status_code for r in (both, neither, unknown)] == [422, 422, 422]
    assert unknown.json()["errors"][0]["field"] == "profile_id"


async def test_rendered_body_over_the_limit_is_refused(
    client: httpx.AsyncClient, surface_id: str
) -> None:
    await client.put(
        "/api/v1/profiles/long", json={"phone": "+33612345671", "attributes": {"bio": "y" * 1600}}
    )
    response = await _send(client, surface_id, profile_id="long", body="Bio: {{ profile.bio }}...")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body"


async def test_opted_out_number_is_accepted_as_suppressed_and_never_queued(
    client: httpx.AsyncClient, services: Services, surface_id: str
) -> None:
    async with services.db.transaction() as conn:
        await conn.execute(
            insert(suppressions).values(
                sender=SENDER,
                phone="+33612345699",
                source="keyword",
                keyword="STOP",
                created_at=services.clock(),
            )
        )
    response = await _send(client, surface_id, to="+33612345699", body="Sale!")
    assert response.status_code == 202
    assert response.json()["status"] == "suppressed"
    async with services.db.read() as conn:
        count = (await conn.execute(select(func.count()).select_from(outbox))).scalar_one()
    assert count == 0


async def test_preview_shows_text_segments_encoding_and_problems(
    client: httpx.AsyncClient, surface_id: str, ana: dict[str, Any]
) -> None:
    response = await client.post(
        "/api/v1/messages/preview",
        json={
            "surface_id": surface_id,
            "profile_id": "ana",
            "body": "Salut {{ profile.firstName }} 😀 {{ profile.nickname }}{{ promo }}",
        },
    )
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["text"] == "Salut ana 😀 "
    assert preview["encoding"] == "UCS-2"
    assert preview["segments"] == 1
    assert preview["ucs2_characters"] == ["😀"]
    assert preview["undefined"] == ["profile.nickname", "promo"]
    assert preview["errors"] == []

    broken = await client.post(
        "/api/v1/messages/preview",
        json={"surface_id": surface_id, "body": "Hi {{ profile.firstName"},
    )
    assert broken.status_code == 200
    assert broken.json()["errors"][0]["field"] == "body"
    assert "line 1" in broken.json()["errors"][0]["message"]

    plain = await client.post(
        "/api/v1/messages/preview",
        json={"surface_id": surface_id, "body": "€" * 81, "variables": {}},
    )
    assert plain.json()["encoding"] == "GSM-7"
    assert plain.json()["units"] == 162
    assert plain.json()["segments"] == 2
