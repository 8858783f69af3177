"""OAuth2 client credentials and HMAC signing against loopback servers: the token endpoint
and the provider are the mock provider (two paths); every request is checked as received."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from smsbridge.config import Settings
from smsbridge.container import Services, build_services
from smsbridge.services.messages import SendRequest
from tests.clock import FakeClock
from tests.mock_provider import MockProvider, Recorded, Reply

PAYLOAD = {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"}
CLIENT_SECRET = "cs-oauth-7f6e5d4c3b"
HMAC_SECRET = "hm-secret-a1b2c3d4e5"


class OAuthProvider:
    """/token issues tok-1, tok-2…; /sms accepts only live tokens."""

    def __init__(self, provider: MockProvider, lifetime: int = 3600) -> None:
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        self.lifetime = lifetime
        provider.responder = self.answer

    def answer(self, request: Recorded) -> Reply:
        if request.path == "/token":
            form = parse_qs(request.body.decode())
            basic = base64.b64encode(f"client-1:{CLIENT_SECRET}".encode()).decode()
            if request.header("authorization") != f"Basic {basic}":
                return Reply(401, {"error": "invalid_client"})
            assert form == {"grant_type": ["client_credentials"], "scope": ["sms.send"]}
            self.issued.append(f"tok-{len(self.issued) + 1}")
            return Reply(
                200,
                {
                    "access_token": self.issued[-1],
                    "token_type": "Bearer",
                    "expires_in": self.lifetime,
                },
            )
        token = (request.header("authorization") or "").removeprefix("Bearer ")
        if token not in self.issued or token in self.revoked:
            return Reply(401, {"error": "invalid_token"})
        # Which token sent it, without echoing it (an echoed secret is masked in the id).
        return Reply(200, {"id": f"sent-with-token#{self.issued.index(token) + 1}"})


async def _surface(services: Services, credential: dict[str, Any]) -> str:
    created = await services.credentials.create(credential)
    surface = await services.surfaces.create(
        {"name": credential["name"], "credential_id": created.id, "sender": "Acme"}
    )
    return surface.id


async def _send(services: Services, surface_id: str, count: int) -> list[dict[str, Any]]:
    ids = [
        (await services.messages.send(SendRequest(surface_id, f"+3361234{n:04d}", f"Hello {n}")))[
            1
        ]["id"]
        for n in range(count)
    ]
    await services.new_worker().drain()
    return [await services.messages.get(message_id) for message_id in ids]


def _oauth_credential(mock: MockProvider, name: str = "oauth") -> dict[str, Any]:
    return {
        "name": name,
        "provider_url": f"{mock.url}/sms",
        "auth": {
            "type": "oauth2_client_credentials",
            "token_url": f"{mock.url}/token",
            "client_id": "client-1",
            "client_secret": CLIENT_SECRET,
            "scope": "sms.send",
        },
        "payload": PAYLOAD,
        "response": {"message_id_path": "$.id"},
    }


async def test_oauth2_token_is_fetched_once_cached_and_refreshed_once_on_401(
    services: Services, mock_provider: MockProvider
) -> None:
    oauth = OAuthProvider(mock_provider)
    surface_id = await _surface(services, _oauth_credential(mock_provider))
    first = await _send(services, surface_id, 5)
    assert [m["status"] for m in first] == ["sent"] * 5
    assert {m["provider_message_id"] for m in first} == {"sent-with-token#1"}
    assert oauth.issued == ["tok-1"]  # one fetch for five messages (and concurrent senders)

    oauth.revoked.add("tok-1")  # the provider revokes it before it expires
    second = await _send(services, surface_id, 2)
    assert [m["provider_message_id"] for m in second] == ["sent-with-token#2"] * 2
    assert oauth.issued == ["tok-1", "tok-2"]
    sms = [r for r in mock_provider.requests if r.path == "/sms"]
    assert [r.header("authorization") for r in sms[-3:]] == [
        "Bearer tok-1",  # refused with 401, then the same message again with a new token
        "Bearer tok-2",
        "Bearer tok-2",
    ]
    attempts = [e for e in second[0]["events"] if e["type"] == "attempt"]
    assert len(attempts) == 1  # the refresh is part of one attempt

    oauth.revoked.add("tok-2")
    oauth.revoked.add("tok-3")  # even the fresh token is refused: no loop, the 401 stands
    stuck = await _send(services, surface_id, 1)
    assert stuck[0]["status"] == "failed" and "401" in stuck[0]["last_error"]
    assert oauth.issued == ["tok-1", "tok-2", "tok-3"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def clocked(settings: Settings, clock: FakeClock) -> AsyncIterator[Services]:
    """The services on the test's clock (the API client's, on the same database, read only)."""
    built = await build_services(settings, clock=clock)
    try:
        yield built
    finally:
        await built.close()


async def test_oauth2_token_expiry_and_refused_client(
    clocked: Services, clock: FakeClock, mock_provider: MockProvider, client: httpx.AsyncClient
) -> None:
    services = clocked
    oauth = OAuthProvider(mock_provider, lifetime=31)  # usable for 1 s (30 s safety margin)
    surface_id = await _surface(services, _oauth_credential(mock_provider, "short"))
    await _send(services, surface_id, 1)
    clock.advance(1.2)
    later = await _send(services, surface_id, 1)
    assert later[0]["provider_message_id"] == "sent-with-token#2"
    assert oauth.issued == ["tok-1", "tok-2"]  # the first one expired: fetched again

    wrong = _oauth_credential(mock_provider, "wrong")
    wrong["auth"]["client_secret"] = "not-the-secret"  # the token endpoint refuses the client
    other = await _surface(services, wrong)
    refused = await _send(services, other, 1)
    assert refused[0]["status"] == "failed"
    assert "401" in refused[0]["last_error"]

    listed = (await client.get("/api/v1/credentials")).text
    assert CLIENT_SECRET not in listed and "tok-" not in listed


async def test_hmac_signed_requests_verify_at_the_provider(
    services: Services, mock_provider: MockProvider
) -> None:
    mock_provider.reply(Reply(200, {"id": "signed-ok"}))
    surface_id = await _surface(
        services,
        {
            "name": "hmac",
            "provider_url": f"{mock_provider.url}/v2/sms?account=77",
            "auth": {
                "type": "hmac",
                "secret": HMAC_SECRET,
                "algorithm": "sha256",
                "encoding": "base64",
                "signature_header": "X-Acme-Signature",
                "timestamp_header": "X-Acme-Timestamp",
                "string_to_sign": "{timestamp}.{method}.{path}.{body}",
            },
            "payload": PAYLOAD,
            "response": {"message_id_path": "$.id"},
        },
    )
    sent = await _send(services, surface_id, 3)
    assert [m["status"] for m in sent] == ["sent"] * 3
    for request in mock_provider.requests:
        timestamp = request.header("x-acme-timestamp")
        assert timestamp is not None and timestamp.isdigit()
        signed = f"{timestamp}.POST.{request.raw_path}.".encode() + request.body
        expected = base64.b64encode(
            hmac.new(HMAC_SECRET.encode(), signed, hashlib.sha256).digest()
        ).decode()
        assert request.header("x-acme-signature") == expected
        assert json.loads(request.body)["to"].startswith("+3361234")
        assert HMAC_SECRET not in str(request.headers)
