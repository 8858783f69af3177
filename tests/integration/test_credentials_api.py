"""Credentials over the HTTP API, on SQLite and PostgreSQL, against a loopback mock provider."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from smsbridge.container import Services
from tests.conftest import CredentialFactory
from tests.mock_provider import MockProvider, Reply

FORM = "application/x-www-form-urlencoded"
TRICKY = 'Hi "Ana" \\ {{message}} }} \n😀 & é=1'


async def _test_send(client: httpx.AsyncClient, cred_id: str, **body: Any) -> dict[str, Any]:
    payload = {"to": "+33612345678", "from": "+15550001111", "message": TRICKY, **body}
    response = await client.post(f"/api/v1/credentials/{cred_id}/test", json=payload)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


# --- each auth type and both encodings reach the provider exactly as configured ------------


async def test_bearer_json_request_is_exact(
    client: httpx.AsyncClient, make_credential: CredentialFactory, mock_provider: MockProvider
) -> None:
    mock_provider.reply(Reply(200, {"messages": [{"messageId": "ib-42"}]}))
    cred = await make_credential(
        auth={"type": "bearer", "scheme": "App", "token": "tok-bearer-9f8e7d"},
        headers=[
            {"label": "X-Api-Version", "type": "static", "value": "2"},
            {"label": "X-Signature-Key", "type": "secret", "value": "sig-secret-5566"},
        ],
        payload={
            "messages": [
                {
                    "from": "{{fromNumber}}",
                    "destinations": [{"to": "{{toNumber}}"}],
                    "text": "{{message}}",
                    "ref": "{{messageId}}",
                }
            ]
        },
        response={"message_id_path": "$.messages[0].messageId"},
    )
    result = await _test_send(client, cred["id"])
    assert result["ok"] is True
    assert result["status_code"] == 200
    assert result["provider_message_id"] == "ib-42"
    assert isinstance(result["latency_ms"], int)

    [request] = mock_provider.requests
    assert request.method == "POST"
    assert request.path == "/sms/send"
    assert request.header("Authorization") == "App tok-bearer-9f8e7d"
    assert request.header("Content-Type") == "application/json"
    assert request.header("X-Api-Version") == "2"
    assert request.header("X-Signature-Key") == "sig-secret-5566"
    body = json.loads(request.body)
    message = body["messages"][0]
    assert message["text"] == TRICKY
    assert message["from"] == "+15550001111"
    assert message["destinations"] == [{"to": "+33612345678"}]
    assert message["ref"].startswith("msg_")
    assert set(message) == {"from", "destinations", "text", "ref"}


async def test_basic_form_request_is_exact(
    client: httpx.AsyncClient, make_credential: CredentialFactory, mock_provider: MockProvider
) -> None:
    mock_provider.reply(Reply(201, {"sid": "SM123"}))
    cred = await make_credential(
        provider_url=f"{mock_provider.url}/2010-04-01/Accounts/{{{{appId}}}}/Messages.json",
        provider_app_id="AC 1/2",
        auth={"type": "basic", "username": "AC12", "password": "pw-basic-7788"},
        content_type=FORM,
        payload={"To": "{{toNumber}}", "From": "{{fromNumber}}", "Body": "{{message}}", "N": 1},
        response={"message_id_path": "$.sid"},
    )
    result = await _test_send(client, cred["id"])
    assert result == {
        "ok": True,
        "status_code": 201,
        "provider_message_id": "SM123",
        "latency_ms": result["latency_ms"],
        "error": None,
        "provider_answer": '{"sid": "SM123"}',
    }
    [request] = mock_provider.requests
    # {{appId}} is percent-encoded into one path segment
    assert request.raw_path == "/2010-04-01/Accounts/AC%201%2F2/Messages.json"
    expected = "Basic " + base64.b64encode(b"AC12:pw-basic-7788").decode()
    assert request.header("Authorization") == expected
    assert request.header("Content-Type") == FORM
    fields = parse_qs(request.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    assert fields == {
        "To": ["+33612345678"],
        "From": ["+15550001111"],
        "Body": [TRICKY],
        "N": ["1"],
    }


async def test_api_key_json_request_is_exact(
    client: httpx.AsyncClient, make_credential: CredentialFactory, mock_provider: MockProvider
) -> None:
    cred = await make_credential(
        method="PUT",
        auth={"type": "api_key", "header": "X-Api-Key", "key": "key-apikey-3344"},
    )
    result = await _test_send(client, cred["id"])
    assert result["ok"] is True
    assert result["provider_message_id"] == "prov-1"
    [request] = mock_provider.requests
    assert request.method == "PUT"
    assert request.header("X-Api-Key") == "key-apikey-3344"
    assert request.header("Authorization") is None
    assert json.loads(request.body) == {
        "to": "+33612345678",
        "from": "+15550001111",
        "text": TRICKY,
    }


async def test_no_auth_form_request_is_exact(
    client: httpx.AsyncClient, make_credential: CredentialFactory, mock_provider: MockProvider
) -> None:
    cred = await make_credential(
        auth={"type": "none"},
        content_type=FORM,
        payload='{"dst": "{{toNumber}}", "src": "{{fromNumber}}", "text": "{{message}}"}',
    )
    result = await _test_send(client, cred["id"])
    assert result["ok"] is True
    [request] = mock_provider.requests
    assert request.header("Authorization") is None
    assert request.header("Content-Type") == FORM
    assert parse_qs(request.body.decode(), keep_blank_values=True) == {
        "dst": ["+33612345678"],
        "src": ["+15550001111"],
        "text": [TRICKY],
    }


# --- test verdicts ---------------------------------------------------------------------------


async def test_rejected_credentials_give_a_short_verdict_without_the_body(
    client: httpx.AsyncClient, make_credential: CredentialFactory, mock_provider: MockProvider
) -> None:
    # A provider that echoes the token back in its error body: it must not reach the caller.
    mock_provider.reply(Reply(401, {"error": "bad token tok-live-abcdef123456"}))
    cred = await make_credential()
    result = await _test_send(client, cred["id"])
    assert result["ok"] is False
    assert result["status_code"] == 401
    assert result["error"] == "provider rejected the credentials (401)"
    assert result["provider_message_id"] is None


async def test_unreachable_provider_is_reported(
    client: httpx.AsyncClient, make_credential: CredentialFactory
) -> None:
    cred = await make_credential(provider_url="http://127.0.0.1:9/nothing-listens-here")
    result = await _test_send(client, cred["id"])
    assert result["ok"] is False
    assert result["status_code"] is None
    assert "could not connect" in result["error"]


async def test_slow_provider_times_out(
    client: httpx.AsyncClient, make_credential: CredentialFactory, mock_provider: MockProvider
) -> None:
    mock_provider.reply(Reply(200, {"id": "late"}, delay=2.0))
    cred = await make_credential(timeout_seconds=0.3)
    result = await _test_send(client, cred["id"])
    assert result["ok"] is False
    assert "within 0.3s" in result["error"]


async def test_sandbox_accepts_and_rejects_0000(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/v1/credentials", json={"name": "sbx", "preset": "sandbox"})
    assert created.status_code == 201, created.text
    cred_id = created.json()["id"]
    ok = await _test_send(client, cred_id)
    assert ok["ok"] is True
    assert ok["provider_message_id"].startswith("sbx_")
    refused = await _test_send(client, cred_id, to="+33612340000")
    assert refused["ok"] is False
    assert refused["status_code"] == 400


# --- CRUD ----------------------------------------------------------------------------------


async def test_create_shows_secrets_only_as_hints(make_credential: CredentialFactory) -> None:
    cred = await make_credential(
        headers=[{"label": "X-Secret", "type": "secret", "value": "hdr-secret-01-abcd"}]
    )
    assert cred["id"].startswith("cred_")
    assert cred["auth"]["token"] == {"set": True, "last4": "3456"}
    assert cred["headers"] == [
        {"label": "X-Secret", "type": "secret", "value": {"set": True, "last4": "abcd"}}
    ]
    assert "tok-live-abcdef123456" not in json.dumps(cred)
    assert cred["created_at"] == cred["updated_at"]


async def test_get_and_list_with_cursor_pages(
    client: httpx.AsyncClient, make_credential: CredentialFactory
) -> None:
    made = [await make_credential() for _ in range(5)]
    got = await client.get(f"/api/v1/credentials/{made[2]['id']}")
    assert got.status_code == 200
    assert got.json() == made[2]

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/v1/credentials", params=params)).json()
        pages += 1
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [m["id"] for m in made]
    assert pages == 3


async def test_patch_keeps_an_omitted_secret(
    client: httpx.AsyncClient, make_credential: CredentialFactory, mock_provider: MockProvider
) -> None:
    cred = await make_credential(
        headers=[{"label": "X-Secret", "type": "secret", "value": "hdr-secret-01-abcd"}]
    )
    patched = await client.patch(
        f"/api/v1/credentials/{cred['id']}",
        json={
            "provider_name": "Renamed",
            "auth": {"scheme": "App"},
            "headers": [
                {"label": "X-Secret", "type": "secret"},
                {"label": "X-New", "type": "static", "value": "1"},
            ],
        },
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["provider_name"] == "Renamed"
    assert body["auth"]["token"] == {"set": True, "last4": "3456"}
    assert body["updated_at"] >= cred["updated_at"]

    await _test_send(client, cred["id"])
    request = mock_provider.requests[-1]
    assert request.header("Authorization") == "App tok-live-abcdef123456"
    assert request.header("X-Secret") == "hdr-secret-01-abcd"
    assert request.header("X-New") == "1"


async def test_patch_can_send_back_what_get_returned(
    client: httpx.AsyncClient, make_credential: CredentialFactory, mock_provider: MockProvider
) -> None:
    cred = await make_credential()
    document = {k: v for k, v in cred.items() if k not in ("id", "created_at", "updated_at")}
    document["name"] = "round-tripped"
    patched = await client.patch(f"/api/v1/credentials/{cred['id']}", json=document)
    assert patched.status_code == 200, patched.text
    await _test_send(client, cred["id"])
    assert mock_provider.requests[-1].header("Authorization") == "Bearer tok-live-abcdef123456"


async def test_patch_replaces_a_retyped_secret(
    client: httpx.AsyncClient, make_credential: CredentialFactory, mock_provider: MockProvider
) -> None:
    cred = await make_credential()
    patched = await client.patch(
        f"/api/v1/credentials/{cred['id']}", json={"auth": {"token": "tok-new-0000wxyz"}}
    )
    assert patched.json()["auth"]["token"] == {"set": True, "last4": "wxyz"}
    await _test_send(client, cred["id"])
    assert mock_provider.requests[-1].header("Authorization") == "Bearer tok-new-0000wxyz"


async def test_patch_to_another_auth_type_needs_its_secrets(
    client: httpx.AsyncClient, make_credential: CredentialFactory
) -> None:
    cred = await make_credential()
    response = await client.patch(
        f"/api/v1/credentials/{cred['id']}", json={"auth": {"type": "basic", "username": "u"}}
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["auth.password"]


async def test_delete_then_gone(
    client: httpx.AsyncClient, make_credential: CredentialFactory
) -> None:
    cred = await make_credential()
    deleted = await client.delete(f"/api/v1/credentials/{cred['id']}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert (await client.get(f"/api/v1/credentials/{cred['id']}")).status_code == 404
    assert (await client.delete(f"/api/v1/credentials/{cred['id']}")).status_code == 404


async def test_delete_refused_while_a_surface_uses_it(
    client: httpx.AsyncClient, make_credential: CredentialFactory
) -> None:
    primary = await make_credential()
    fallback = await make_credential()
    surface = await client.post(
        "/api/v1/surfaces",
        json={
            "name": "uses-both",
            "credential_id": primary["id"],
            "fallback_credential_ids": [fallback["id"]],
            "sender": "Acme",
        },
    )
    assert surface.status_code == 201, surface.text
    for cred in (primary, fallback):
        response = await client.delete(f"/api/v1/credentials/{cred['id']}")
        assert response.status_code == 409
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        assert "used by 1 surface(s): 'uses-both'" in problem["detail"]  # named
    assert (await client.get(f"/api/v1/credentials/{primary['id']}")).status_code == 200


async def test_preview_masks_secrets_and_shows_exact_body(
    client: httpx.AsyncClient, make_credential: CredentialFactory, mock_provider: MockProvider
) -> None:
    cred = await make_credential(
        headers=[{"label": "X-Secret", "type": "secret", "value": "hdr-secret-01-abcd"}]
    )
    response = await client.post(
        f"/api/v1/credentials/{cred['id']}/preview",
        json={"to": "+33 6 12 34 56 78", "from": "+15550001111", "message": TRICKY},
    )
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["method"] == "POST"
    assert preview["url"] == f"{mock_provider.url}/sms/send"
    assert preview["headers"]["Authorization"] == "Bearer ****3456"
    assert preview["headers"]["X-Secret"] == "****abcd"
    assert json.loads(preview["body"]) == {
        "to": "+33612345678",
        "from": "+15550001111",
        "text": TRICKY,
    }
    assert mock_provider.requests == []


# --- bad input -------------------------------------------------------------------------------


def _fields(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert set(problem) == {"type", "title", "status", "detail", "errors"}
    assert problem["status"] == response.status_code
    return [e["field"] for e in problem["errors"]]


VALID: dict[str, Any] = {
    "name": "valid",
    "provider_url": "https://api.example.com/sms",
    "auth": {"type": "bearer", "token": "t0ken"},
    "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "  "}, "name"),
        ({"name": None}, "name"),
        ({"provider_url": "ftp://example.com/x"}, "provider_url"),
        ({"provider_url": "/relative"}, "provider_url"),
        ({"provider_url": "sandbox://other"}, "provider_url"),
        ({"payload": "not json"}, "payload"),
        ({"payload": "[1, 2]"}, "payload"),
        ({"payload": {"to": "{{toNumber}}", "text": "{{message}}"}}, "payload"),
        ({"payload": {**VALID["payload"], "x": "{{firstName}}"}}, "payload.x"),
        ({"headers": [{"label": "Authorization", "value": "x"}]}, "headers[0].label"),
        ({"headers": [{"label": "bad header", "value": "x"}]}, "headers[0].label"),
        (
            {"headers": [{"label": "X-A", "value": "1"}, {"label": "x-a", "value": "2"}]},
            "headers[1].label",
        ),
        ({"headers": [{"label": "X-A", "value": "a\r\nInjected: 1"}]}, "headers[0].value"),
        ({"auth": {"type": "bearer"}}, "auth.token"),
        ({"auth": {"type": "basic", "username": "u"}}, "auth.password"),
        ({"auth": {"type": "api_key", "key": "k"}}, "auth.header"),
        ({"auth": {"type": "oauth"}}, "auth.type"),
        ({"response": {"message_id_path": "$.[["}}, "response.message_id_path"),
        ({"delivery_reports": {"status_path": "$..["}}, "delivery_reports.status_path"),
        ({"content_type": "text/plain"}, "content_type"),
        (
            {
                "content_type": "application/x-www-form-urlencoded",
                "payload": {**VALID["payload"], "nested": {"a": 1}},
            },
            "payload.nested",
        ),
        ({"rate_limit_per_second": -1}, "rate_limit_per_second"),
        ({"unknown_field": 1}, "unknown_field"),
        ({"preset": "nope"}, "preset"),
    ],
)
async def test_bad_input_names_the_field(
    client: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    document = {**VALID, **change}
    document = {k: v for k, v in document.items() if v is not None}
    response = await client.post("/api/v1/credentials", json=document)
    assert response.status_code == 422, response.text
    assert field in _fields(response)


async def test_http_provider_url_refused_unless_private_urls_allowed(
    services: Services, client: httpx.AsyncClient
) -> None:
    from smsbridge.domain.credential_parser import parse_credential
    from smsbridge.errors import InvalidInput

    document = {**VALID, "provider_url": "http://api.example.com/sms"}
    with pytest.raises(InvalidInput) as caught:
        parse_credential(document, allow_private_urls=False)
    assert caught.value.errors[0].field == "provider_url"
    assert "SMSBRIDGE_ALLOW_PRIVATE_PROVIDER_URLS" in caught.value.errors[0].message
    # the test app allows private URLs, so the same document is accepted there
    assert (await client.post("/api/v1/credentials", json=document)).status_code == 201


async def test_duplicate_name_is_a_conflict_naming_the_field(
    client: httpx.AsyncClient, make_credential: CredentialFactory
) -> None:
    await make_credential(name="taken")
    response = await client.post("/api/v1/credentials", json={**VALID, "name": "taken"})
    assert response.status_code == 409
    assert _fields(response) == ["name"]


async def test_not_json_body_is_a_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/credentials", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    _fields(response)


async def test_unknown_id_is_404(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/api/v1/credentials/cred_nope"),
        ("PATCH", "/api/v1/credentials/cred_nope"),
        ("DELETE", "/api/v1/credentials/cred_nope"),
        ("POST", "/api/v1/credentials/cred_nope/preview"),
        ("POST", "/api/v1/credentials/cred_nope/test"),
    ]:
        body = {"to": "+33612345678", "message": "x"} if method == "POST" else {}
        response = await client.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"


async def test_bad_cursor_and_limit_are_field_errors(client: httpx.AsyncClient) -> None:
    assert _fields(await client.get("/api/v1/credentials", params={"cursor": "%%%"})) == ["cursor"]
    assert _fields(await client.get("/api/v1/credentials", params={"limit": 0})) == ["limit"]


async def test_bad_test_number_is_a_field_error(
    client: httpx.AsyncClient, make_credential: CredentialFactory, mock_provider: MockProvider
) -> None:
    cred = await make_credential()
    response = await client.post(
        f"/api/v1/credentials/{cred['id']}/test", json={"to": "not a number"}
    )
    assert response.status_code == 422
    assert _fields(response) == ["to"]
    assert mock_provider.requests == []


# --- authentication and roles ------------------------------------------------------------------


async def test_missing_or_invalid_key_is_401(client: httpx.AsyncClient) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong-key"}):
        response = await client.get("/api/v1/credentials", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        _fields(response)


@pytest.mark.parametrize("role", ["sender", "viewer"])
async def test_non_admin_roles_are_403_on_credentials(
    client: httpx.AsyncClient, services: Services, role: str
) -> None:
    created = await services.api_keys.create(f"{role} key", role)
    response = await client.get(
        "/api/v1/credentials", headers={"Authorization": f"Bearer {created.key}"}
    )
    assert response.status_code == 403
    assert role in response.json()["detail"]


async def test_created_admin_key_works_until_revoked(
    client: httpx.AsyncClient, services: Services
) -> None:
    created = await services.api_keys.create("ops", "admin")
    headers = {"Authorization": f"Bearer {created.key}"}
    assert (await client.get("/api/v1/credentials", headers=headers)).status_code == 200
    await services.api_keys.revoke(created.id)
    assert (await client.get("/api/v1/credentials", headers=headers)).status_code == 401


async def test_openapi_document_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/credentials/{credential_id}/preview" in paths
    assert "/healthz" in paths


async def test_hints_stored_by_earlier_versions_no_longer_show_short_secrets(
    client: httpx.AsyncClient, services: Services
) -> None:
    from sqlalchemy import update

    from smsbridge.storage.tables import credentials

    created = await client.post(
        "/api/v1/credentials",
        json={
            "name": "old-hints",
            "provider_url": "https://api.example.com/send",
            "auth": {"type": "bearer", "token": "abc123"},
            "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["auth"]["token"] == {"set": True, "last4": ""}
    async with services.db.transaction() as conn:  # what an earlier version stored
        await conn.execute(
            update(credentials)
            .where(credentials.c.id == created.json()["id"])
            .values(secret_hints={"auth.token": "c123"})
        )
    shown = (await client.get(f"/api/v1/credentials/{created.json()['id']}")).json()
    assert shown["auth"]["token"] == {"set": True, "last4": ""}


async def test_a_refused_test_send_carries_the_providers_answer_with_secrets_masked(
    client: httpx.AsyncClient, make_credential: CredentialFactory, mock_provider: MockProvider
) -> None:
    token = "tok-echoed-4f3e2d1c"
    header_secret = "hdr-echoed-9a8b7c"
    mock_provider.reply(
        Reply(
            400,
            {
                "error": "Invalid destination address",
                "echo": {"authorization": f"Bearer {token}", "x-key": header_secret},
                "filler": "x" * 5000,
            },
        )
    )
    cred = await make_credential(
        auth={"type": "bearer", "token": token},
        headers=[{"label": "X-Key", "type": "secret", "value": header_secret}],
    )
    result = await _test_send(client, cred["id"])
    assert result["ok"] is False and result["status_code"] == 400
    answer = result["provider_answer"]
    assert "Invalid destination address" in answer and "****" in answer
    assert token not in answer and header_secret not in answer
    assert len(answer) <= 2001 and answer.endswith("…")
