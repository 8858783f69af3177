"""An admin cannot read back a credential's "never returned" secrets (issue 15, point 7).

Two ways were open: point ``provider_url`` (or the OAuth ``token_url``) at a server that
echoes requests and read the secrets there, or have the message-id JSONPath pick the echoed
``Authorization`` header so that ``/test`` and every real send store it where a viewer reads
it. Secrets now have to be typed again when where they go changes, and whatever the request
carried is masked in values taken from the answer.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from smsbridge.container import Services
from smsbridge.errors import InvalidInput
from tests.mock_provider import MockProvider, Recorded, Reply

TOKEN = "tok-exfil-0123456789abcdef"
HEADER_SECRET = "hdr-exfil-abcdef0123456789"


def _echo(request: Recorded) -> Reply:
    return Reply(200, {"echo": {"headers": dict(request.headers)}, "id": "ok-1"})


async def _bearer_credential(client: httpx.AsyncClient, mock: MockProvider) -> dict[str, Any]:
    created = await client.post(
        "/api/v1/credentials",
        json={
            "name": "exfil",
            "provider_url": f"{mock.url}/send",
            "auth": {"type": "bearer", "token": TOKEN},
            "headers": [{"label": "X-Key", "type": "secret", "value": HEADER_SECRET}],
            "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
            "response": {"message_id_path": "$.id"},
        },
    )
    assert created.status_code == 201, created.text
    found: dict[str, Any] = created.json()
    return found


async def test_secrets_must_be_typed_again_when_their_destination_host_changes(
    client: httpx.AsyncClient, mock_provider: MockProvider
) -> None:
    credential = await _bearer_credential(client, mock_provider)
    path = f"/api/v1/credentials/{credential['id']}"
    elsewhere = f"http://localhost:{mock_provider.port}/echo"  # another host name
    moved = await client.patch(path, json={"provider_url": elsewhere})
    assert moved.status_code == 422, moved.text
    fields = {e["field"] for e in moved.json()["errors"]}
    assert fields == {"auth.token", "headers[0].value"}
    assert TOKEN not in moved.text and HEADER_SECRET not in moved.text
    # Sending back what GET showed (the hints) is not typing them again.
    shown = (await client.get(path)).json()
    echoed = await client.patch(
        path, json={"provider_url": elsewhere, "auth": shown["auth"], "headers": shown["headers"]}
    )
    assert echoed.status_code == 422, echoed.text
    # The same host (another path, port written out or not) needs nothing new.
    same_host = await client.patch(path, json={"provider_url": f"{mock_provider.url}/v2/send"})
    assert same_host.status_code == 200, same_host.text
    retyped = await client.patch(
        path,
        json={
            "provider_url": elsewhere,
            "auth": {"token": "tok-new-for-the-new-host-42"},
            "headers": [{"label": "X-Key", "type": "secret", "value": "hdr-new-for-the-new-host"}],
        },
    )
    assert retyped.status_code == 200, retyped.text


async def test_the_app_id_in_a_url_host_and_the_token_url_count_as_destinations(
    client: httpx.AsyncClient, services: Services, mock_provider: MockProvider
) -> None:
    created = await client.post(
        "/api/v1/credentials",
        json={
            "name": "tenant",
            "provider_app_id": "acme",
            "provider_url": "https://{{appId}}.sms.example/send",
            "auth": {"type": "bearer", "token": TOKEN},
            "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
        },
    )
    assert created.status_code == 201, created.text
    tenant = await client.patch(
        f"/api/v1/credentials/{created.json()['id']}", json={"provider_app_id": "attacker"}
    )
    assert tenant.status_code == 422, tenant.text
    assert [e["field"] for e in tenant.json()["errors"]] == ["auth.token"]

    # OAuth 2 (created through the service: the API schema does not offer it yet).
    oauth = await services.credentials.create(
        {
            "name": "oauth",
            "provider_url": f"{mock_provider.url}/send",
            "auth": {
                "type": "oauth2_client_credentials",
                "token_url": f"{mock_provider.url}/token",
                "client_id": "client-1",
                "client_secret": "client-secret-0123456789",
            },
            "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
        }
    )
    elsewhere = f"http://localhost:{mock_provider.port}"
    for patch in (
        {"auth": {"token_url": f"{elsewhere}/token"}},
        # The access token goes to provider_url: moving it needs the client secret again too.
        {"provider_url": f"{elsewhere}/send"},
    ):
        with pytest.raises(InvalidInput) as refused:
            await services.credentials.update(oauth.id, patch)
        assert [e.field for e in refused.value.errors] == ["auth.client_secret"]
        assert "client-secret-0123456789" not in str(refused.value)
    retyped = await services.credentials.update(
        oauth.id,
        {"auth": {"token_url": f"{elsewhere}/token", "client_secret": "a-new-secret-9876543"}},
    )
    assert retyped.document["auth"]["token_url"] == f"{elsewhere}/token"


async def test_echoed_secrets_never_become_message_ids(
    client: httpx.AsyncClient, services: Services, mock_provider: MockProvider
) -> None:
    mock_provider.responder = _echo
    credential = await _bearer_credential(client, mock_provider)
    path = f"/api/v1/credentials/{credential['id']}"
    for id_path, secret in (
        ("$.echo.headers.authorization", TOKEN),
        ("$.echo.headers['x-key']", HEADER_SECRET),
    ):
        changed = await client.patch(path, json={"response": {"message_id_path": id_path}})
        assert changed.status_code == 200, changed.text
        tested = await client.post(f"{path}/test", json={"to": "+33612345678", "message": "t"})
        assert tested.status_code == 200, tested.text
        assert tested.json()["ok"] is True
        assert secret not in tested.text
        assert "****" in tested.json()["provider_message_id"]

    # Basic auth: the echo carries base64(user:password), not the password itself.
    basic = await client.patch(
        path,
        json={
            "auth": {"type": "basic", "username": "AC1", "password": "pw-exfil-0123456789"},
            "response": {"message_id_path": "$.echo.headers.authorization"},
        },
    )
    assert basic.status_code == 200, basic.text
    tested = await client.post(f"{path}/test", json={"to": "+33612345678", "message": "t"})
    encoded = base64.b64encode(b"AC1:pw-exfil-0123456789").decode()
    assert encoded not in tested.text
    assert tested.json()["provider_message_id"] == "****"

    # A real send through the worker stores the masked value, which viewers can read.
    surface = await client.post(
        "/api/v1/surfaces",
        json={"name": "exfil", "credential_id": credential["id"], "sender": "+15550001111"},
    )
    accepted = await client.post(
        "/api/v1/messages",
        json={"surface_id": surface.json()["id"], "to": "+33612345678", "body": "hello"},
    )
    assert accepted.status_code == 202, accepted.text
    await services.new_worker().drain()
    message = (await client.get(f"/api/v1/messages/{accepted.json()['id']}")).json()
    assert message["status"] == "sent", message
    assert message["provider_message_id"] == "****"
    assert encoded not in str(message)
