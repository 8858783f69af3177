"""Webhooks under attack (issue 15, points 8 and 10): Twilio signatures must cover the body
whatever its type, hostile header values are refusals and not 500s, and over-long ids or
numbers from a provider never reach a column they do not fit (PostgreSQL would refuse them).

Twilio's own ``RequestValidator`` (the official SDK) is the oracle for what a genuine
request looks like.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from twilio.request_validator import RequestValidator

from tests.mock_provider import MockProvider

SENDER = "+15550001111"
PHONE = "+33612345678"
TOKEN = "tw-auth-token-5566778899"


def _path(url: str) -> str:
    return url[url.index("/hooks/") :]


async def _consent(client: httpx.AsyncClient) -> list[str]:
    view = (await client.get(f"/api/v1/consent/{PHONE}")).json()
    return [s["sender"] for s in view["opted_out_of"]]


async def _surface(
    client: httpx.AsyncClient, mock_provider: MockProvider, name: str, **credential: Any
) -> dict[str, Any]:
    """A surface on a new credential (the sandbox's webhook shapes unless ``credential`` says
    otherwise), pointing at the mock provider."""
    document = {
        "name": name,
        "preset": "sandbox",
        "provider_url": f"{mock_provider.url}/send",
        "auth": {"type": "none"},
        **credential,
    }
    created = await client.post("/api/v1/credentials", json=document)
    assert created.status_code == 201, created.text
    surface = await client.post(
        "/api/v1/surfaces",
        json={"name": name, "credential_id": created.json()["id"], "sender": SENDER},
    )
    assert surface.status_code == 201, surface.text
    found: dict[str, Any] = surface.json()
    return found


@pytest.fixture
async def twilio_surface(client: httpx.AsyncClient, mock_provider: MockProvider) -> dict[str, Any]:
    return await _surface(
        client,
        mock_provider,
        "twilio",
        preset="twilio",
        provider_app_id="AC1",
        auth={"username": "AC1", "password": TOKEN},
    )


async def _opt_out(client: httpx.AsyncClient, surface: dict[str, Any]) -> None:
    """A genuine, SDK-signed form request: STOP."""
    url = surface["inbound_webhook_url"]
    params = {"MessageSid": "SM1", "From": PHONE, "To": SENDER, "Body": "STOP"}
    signature = RequestValidator(TOKEN).compute_signature(url, params)
    response = await client.post(_path(url), data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200, response.text
    assert await _consent(client) == [SENDER]


async def test_a_signature_over_the_bare_url_does_not_vouch_for_a_json_body(
    client: httpx.AsyncClient, twilio_surface: dict[str, Any]
) -> None:
    await _opt_out(client, twilio_surface)
    url = twilio_surface["inbound_webhook_url"]
    bare = RequestValidator(TOKEN).compute_signature(url, {})
    forged = {"MessageSid": "SM2", "From": PHONE, "To": SENDER, "Body": "START"}
    response = await client.post(_path(url), json=forged, headers={"X-Twilio-Signature": bare})
    assert response.status_code == 403, response.text
    assert await _consent(client) == [SENDER]  # the forged START did nothing


async def test_a_form_body_is_signed_whatever_the_case_of_its_content_type(
    client: httpx.AsyncClient, twilio_surface: dict[str, Any]
) -> None:
    await _opt_out(client, twilio_surface)
    url = twilio_surface["inbound_webhook_url"]
    validator = RequestValidator(TOKEN)
    forged = {"MessageSid": "SM3", "From": PHONE, "To": SENDER, "Body": "START"}
    for content_type in (
        "Application/X-WWW-Form-Urlencoded",
        "application/x-www-form-urlencoded ; charset=UTF-8",
    ):
        response = await client.post(
            _path(url),
            content=urlencode(forged),
            headers={
                "Content-Type": content_type,
                "X-Twilio-Signature": validator.compute_signature(url, {}),
            },
        )
        assert response.status_code == 403, (content_type, response.text)
    assert await _consent(client) == [SENDER]
    # The same request, signed over its parameters as Twilio does, is accepted.
    genuine = await client.post(
        _path(url),
        content=urlencode(forged),
        headers={
            "Content-Type": "Application/X-WWW-Form-Urlencoded",
            "X-Twilio-Signature": validator.compute_signature(url, forged),
        },
    )
    assert genuine.status_code == 200, genuine.text
    assert await _consent(client) == []


async def test_a_json_body_is_covered_by_body_sha256(
    client: httpx.AsyncClient, twilio_surface: dict[str, Any]
) -> None:
    await _opt_out(client, twilio_surface)
    validator = RequestValidator(TOKEN)
    body = json.dumps({"MessageSid": "SM4", "From": PHONE, "To": SENDER, "Body": "START"})
    url = (
        twilio_surface["inbound_webhook_url"]
        + "?bodySHA256="
        + (hashlib.sha256(body.encode()).hexdigest())
    )
    signature = validator.compute_signature(url, {})
    other = body.replace("SM4", "SM5")
    assert not validator.validate(url, other, signature)  # the SDK refuses it too
    tampered = await client.post(
        _path(url),
        content=other,
        headers={"Content-Type": "application/json", "X-Twilio-Signature": signature},
    )
    assert tampered.status_code == 403, tampered.text
    assert await _consent(client) == [SENDER]
    assert validator.validate(url, body, signature)
    genuine = await client.post(
        _path(url),
        content=body,
        headers={"Content-Type": "application/json", "X-Twilio-Signature": signature},
    )
    assert genuine.status_code == 200, genuine.text
    assert await _consent(client) == []


async def test_hostile_signature_headers_are_refusals_not_errors(
    client: httpx.AsyncClient, twilio_surface: dict[str, Any], mock_provider: MockProvider
) -> None:
    url = twilio_surface["inbound_webhook_url"]
    params = {"MessageSid": "SM6", "From": PHONE, "To": SENDER, "Body": "STOP"}
    for value in ("é" * 28, "\u00ff" * 3, "²"):
        response = await client.post(
            _path(url), data=params, headers={"X-Twilio-Signature": value.encode("latin-1")}
        )
        assert response.status_code == 403, (value, response.text)

    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    surface = await _surface(
        client,
        mock_provider,
        "signed",
        webhook_signing={"scheme": "standard_webhooks", "secret": secret},
    )
    hook = _path(surface["status_webhook_url"])
    body = b'{"id": "x", "status": "delivered"}'
    for headers in (
        {"webhook-id": "m1", "webhook-timestamp": "²", "webhook-signature": "v1,AAAA"},
        {"webhook-id": "m1", "webhook-timestamp": "1" * 400, "webhook-signature": "v1,AAAA"},
        {"webhook-id": "m1", "webhook-timestamp": "1700000000", "webhook-signature": "v1,é"},
    ):
        encoded = {k: v.encode("latin-1") for k, v in headers.items()}
        response = await client.post(
            hook, content=body, headers={"Content-Type": "application/json", **encoded}
        )
        assert response.status_code == 403, (headers, response.text)


async def test_over_long_provider_ids_and_numbers_are_not_stored(
    client: httpx.AsyncClient, mock_provider: MockProvider
) -> None:
    surface = await _surface(client, mock_provider, "plain")
    inbound = _path(surface["inbound_webhook_url"])
    # The STOP still acts; the over-long recipient and id are simply not kept.
    response = await client.post(
        inbound, json={"from": PHONE, "to": "9" * 40, "text": "STOP", "id": "i" * 300}
    )
    assert response.status_code == 200, response.text
    assert await _consent(client) == [SENDER]
    report = await client.post(
        _path(surface["status_webhook_url"]), json={"id": "r" * 300, "status": "delivered"}
    )
    assert report.status_code == 200, report.text
    assert report.json()["ignored"] == 1


async def test_a_deep_body_under_a_recursive_mapping_path_is_a_400(
    client: httpx.AsyncClient, mock_provider: MockProvider
) -> None:
    surface = await _surface(
        client,
        mock_provider,
        "recursive",
        delivery_reports={
            "items_path": "$..report",
            "message_id_path": "$.id",
            "status_path": "$.status",
            "status_map": {"DELIVRD": "delivered"},
        },
        inbound={"items_path": "$..mo", "from_path": "$.from", "text_path": "$.text"},
    )
    deep = b'{"a":' * 1000 + b"1" + b"}" * 1000  # as deep as the JSON reader accepts
    for url in (surface["status_webhook_url"], surface["inbound_webhook_url"]):
        answer = await client.post(
            _path(url), content=deep, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 400, answer.text
        assert "nested too deeply" in answer.text
