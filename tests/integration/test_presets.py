"""Provider presets through the API: each preview must be the request the provider documents.

The expected method, URL, auth header form, content type and body fields come from each
provider's own documentation; the sources are cited in ``docs/providers/<name>.md``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.mock_provider import MockProvider, Reply

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
TO = "+33612345678"
FROM = "+15550001111"
MESSAGE = 'Hello "world"\nline2 😀'

EXPECTED_NEEDS = {
    "infobip": ["name", "provider_url", "auth.token"],
    "plivo": ["name", "provider_app_id", "auth.username", "auth.password"],
    "sandbox": ["name"],
    "sinch": ["name", "provider_app_id", "auth.token"],
    "telnyx": ["name", "auth.token"],
    "twilio": ["name", "provider_app_id", "auth.username", "auth.password"],
    "vonage": ["name", "auth.username", "auth.password"],
}


async def _create(client: httpx.AsyncClient, preset: str, **fields: Any) -> dict[str, Any]:
    document = {"preset": preset, "name": f"{preset}-main", **fields}
    response = await client.post("/api/v1/credentials", json=document)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _preview(client: httpx.AsyncClient, credential_id: str) -> httpx.Response:
    response = await client.post(
        f"/api/v1/credentials/{credential_id}/preview",
        json={"to": TO, "from": FROM, "message": MESSAGE},
    )
    assert response.status_code == 200, response.text
    return response


def _headers(preview: dict[str, Any]) -> dict[str, str]:
    """Header names are case-insensitive; compare them lower-cased."""
    return {name.lower(): value for name, value in preview["headers"].items()}


def _form(body: str) -> dict[str, list[str]]:
    return parse_qs(body, keep_blank_values=True, strict_parsing=True)


def _assert_hidden(response: httpx.Response, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in response.text


def _masked_basic(username: str, password: str) -> str:
    return f"Basic base64({username}:****{password[-4:]})"


def _masked_bearer(scheme: str, token: str) -> str:
    return f"{scheme} ****{token[-4:]}"


# --- the listing ---------------------------------------------------------------------------


async def test_provider_presets_lists_all_seven_with_their_needs(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/v1/provider-presets")
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert {item["name"]: item["needs"] for item in items} == EXPECTED_NEEDS
    for item in items:
        assert item["document"]["provider_url"] == item["provider_url"]
        assert item["document"]["content_type"] == item["content_type"]
        assert item["document"]["auth"]["type"] == item["auth_type"]


async def test_each_preset_is_complete_with_only_what_it_needs(
    client: httpx.AsyncClient,
) -> None:
    items = (await client.get("/api/v1/provider-presets")).json()["items"]
    for item in items:
        document: dict[str, Any] = {"preset": item["name"]}
        for need in item["needs"]:
            section, _, key = need.rpartition(".")
            target = document.setdefault(section, {}) if section else document
            target[key] = (
                "https://acme1.api.infobip.com/sms/3/messages"
                if key == "provider_url"
                else f"{item['name']}-{key}-value-1234"
            )
        response = await client.post("/api/v1/credentials", json=document)
        assert response.status_code == 201, (item["name"], response.text)
        created = response.json()
        assert created["preset"] == item["name"]
        assert created["payload"] == item["document"]["payload"]


# --- one documented request per provider ---------------------------------------------------


async def test_twilio_preview_is_a_form_post_to_the_account_messages_resource(
    client: httpx.AsyncClient,
) -> None:
    token = "twilio-auth-token-5f1e9c2d7a"
    cred = await _create(
        client, "twilio", provider_app_id="AC123", auth={"username": "AC123", "password": token}
    )
    response = await _preview(client, cred["id"])
    preview = response.json()

    assert preview["method"] == "POST"
    assert preview["url"] == "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json"
    assert urlsplit(preview["url"]).path == "/2010-04-01/Accounts/AC123/Messages.json"
    headers = _headers(preview)
    assert headers["authorization"] == _masked_basic("AC123", token)
    assert headers["content-type"] == FORM
    assert _form(preview["body"]) == {"To": [TO], "From": [FROM], "Body": [MESSAGE]}
    _assert_hidden(response, token)


async def test_infobip_preview_is_a_json_post_with_the_app_key_scheme(
    client: httpx.AsyncClient,
) -> None:
    key = "infobip-api-key-0a9b8c7d6e5f"
    cred = await _create(client, "infobip", auth={"token": key})
    response = await _preview(client, cred["id"])
    preview = response.json()

    assert preview["method"] == "POST"
    url = urlsplit(preview["url"])
    assert url.scheme == "https"
    assert url.hostname is not None
    assert url.hostname.endswith("api.infobip.com")
    assert url.path == "/sms/3/messages"
    headers = _headers(preview)
    assert headers["authorization"] == _masked_bearer("App", key)
    assert headers["content-type"] == JSON
    body = json.loads(preview["body"])
    [message] = body["messages"]
    # A preview has no status webhook URL: webhooks.delivery.url is left out.
    assert set(message) == {"sender", "destinations", "content"}
    assert message["sender"] == FROM.removeprefix("+")
    assert message["content"] == {"text": MESSAGE}
    [destination] = message["destinations"]
    assert destination["to"] == TO.removeprefix("+")
    # Infobip echoes a caller-supplied messageId; the preset sends ours.
    assert destination["messageId"]
    _assert_hidden(response, key)


async def test_sinch_preview_is_a_json_batch_for_the_service_plan(
    client: httpx.AsyncClient,
) -> None:
    token = "sinch-api-token-77c1d2e3f4a5"
    cred = await _create(client, "sinch", provider_app_id="PLAN123", auth={"token": token})
    response = await _preview(client, cred["id"])
    preview = response.json()

    assert preview["method"] == "POST"
    assert preview["url"] == "https://us.sms.api.sinch.com/xms/v1/PLAN123/batches"
    headers = _headers(preview)
    assert headers["authorization"] == _masked_bearer("Bearer", token)
    assert headers["content-type"] == JSON
    # ``to`` is an array of recipients in a Sinch batch.
    assert json.loads(preview["body"]) == {
        "from": FROM,
        "to": [TO],
        "body": MESSAGE,
        "type": "mt_text",
        "delivery_report": "per_recipient",
    }
    _assert_hidden(response, token)


async def test_vonage_preview_is_a_form_post_to_the_sms_api_with_basic_auth(
    client: httpx.AsyncClient,
) -> None:
    secret = "vonage-api-secret-3e4f5a6b"
    cred = await _create(client, "vonage", auth={"username": "abc123key", "password": secret})
    response = await _preview(client, cred["id"])
    preview = response.json()

    assert preview["method"] == "POST"
    assert preview["url"] == "https://rest.nexmo.com/sms/json"
    headers = _headers(preview)
    assert headers["authorization"] == _masked_basic("abc123key", secret)
    assert headers["content-type"] == FORM
    form = _form(preview["body"])
    assert set(form) == {"from", "to", "text", "client-ref", "type"}
    assert form["from"] == [FROM.removeprefix("+")]
    assert form["type"] == ["unicode"]
    assert form["text"] == [MESSAGE]
    assert form["client-ref"][0]
    _assert_hidden(response, secret)


async def test_vonage_sends_the_destination_without_plus(client: httpx.AsyncClient) -> None:
    cred = await _create(client, "vonage", auth={"username": "abc123key", "password": "s3cr3t-x"})
    preview = (await _preview(client, cred["id"])).json()
    assert _form(preview["body"])["to"] == ["33612345678"]


async def test_vonage_refusal_inside_http_200_is_not_ok(
    client: httpx.AsyncClient, mock_provider: MockProvider
) -> None:
    mock_provider.reply(
        Reply(
            200,
            {
                "message-count": "1",
                "messages": [{"status": "2", "error-text": "Missing to param"}],
            },
        )
    )
    cred = await _create(
        client,
        "vonage",
        provider_url=f"{mock_provider.url}/sms/json",
        auth={"username": "abc123key", "password": "s3cr3t-x"},
    )
    response = await client.post(
        f"/api/v1/credentials/{cred['id']}/test", json={"to": TO, "message": MESSAGE}
    )
    assert response.status_code == 200, response.text
    assert len(mock_provider.requests) == 1
    assert response.json()["ok"] is False


async def test_plivo_preview_is_a_json_post_to_the_account_message_resource(
    client: httpx.AsyncClient,
) -> None:
    token = "plivo-auth-token-8d7c6b5a4f"
    cred = await _create(
        client, "plivo", provider_app_id="MA123", auth={"username": "MA123", "password": token}
    )
    response = await _preview(client, cred["id"])
    preview = response.json()

    assert preview["method"] == "POST"
    assert preview["url"] == "https://api.plivo.com/v1/Account/MA123/Message/"
    headers = _headers(preview)
    assert headers["authorization"] == _masked_basic("MA123", token)
    assert headers["content-type"] == JSON
    assert json.loads(preview["body"]) == {
        "src": FROM,
        "dst": TO,
        "text": MESSAGE,
        "type": "sms",
        "method": "POST",
        "log": "true",
        "trackable": False,
    }
    _assert_hidden(response, token)


async def test_telnyx_preview_is_a_json_post_to_v2_messages(client: httpx.AsyncClient) -> None:
    key = "KEY0123-telnyx-api-key-9f8e"
    cred = await _create(client, "telnyx", auth={"token": key})
    response = await _preview(client, cred["id"])
    preview = response.json()

    assert preview["method"] == "POST"
    assert preview["url"] == "https://api.telnyx.com/v2/messages"
    headers = _headers(preview)
    assert headers["authorization"] == _masked_bearer("Bearer", key)
    assert headers["content-type"] == JSON
    # One recipient: ``to`` is a string, not an array.
    assert json.loads(preview["body"]) == {"from": FROM, "to": TO, "text": MESSAGE}
    _assert_hidden(response, key)


async def test_sandbox_preview_needs_no_secret_and_no_network(client: httpx.AsyncClient) -> None:
    cred = await _create(client, "sandbox")
    preview = (await _preview(client, cred["id"])).json()

    assert preview["method"] == "POST"
    assert preview["url"] == "sandbox://default"
    headers = _headers(preview)
    assert "authorization" not in headers
    assert headers["content-type"] == JSON
    assert json.loads(preview["body"]) == {"from": FROM, "to": TO, "text": MESSAGE}


# --- given fields override the preset ------------------------------------------------------


async def test_given_fields_override_the_preset_and_keep_the_rest(
    client: httpx.AsyncClient,
) -> None:
    presets = {
        item["name"]: item["document"]
        for item in (await client.get("/api/v1/provider-presets")).json()["items"]
    }
    infobip = presets["infobip"]
    own_url = "https://x8k2p.api.infobip.com/sms/3/messages"
    key = "infobip-api-key-1122334455"
    cred = await _create(
        client,
        "infobip",
        provider_url=own_url,
        auth={"token": key},
        response={"message_id_path": "$.messages[0].messageId"},
        inbound={"text_path": "$.cleanText"},
    )

    assert cred["provider_url"] == own_url
    assert cred["payload"] == infobip["payload"]
    assert cred["auth"]["scheme"] == "App"
    assert cred["response"]["message_id_path"] == infobip["response"]["message_id_path"]
    assert cred["inbound"] == {**infobip["inbound"], "text_path": "$.cleanText"}
    assert cred["delivery_reports"] == infobip["delivery_reports"]

    response = await _preview(client, cred["id"])
    preview = response.json()
    assert preview["url"] == own_url
    assert _headers(preview)["authorization"] == _masked_bearer("App", key)
    [message] = json.loads(preview["body"])["messages"]
    assert message["content"]["text"] == MESSAGE
    assert message["destinations"][0]["to"] == TO.removeprefix("+")
    _assert_hidden(response, key)


async def test_a_partial_delivery_reports_mapping_keeps_the_presets_status_map(
    client: httpx.AsyncClient,
) -> None:
    presets = {
        item["name"]: item["document"]
        for item in (await client.get("/api/v1/provider-presets")).json()["items"]
    }
    cred = await _create(
        client,
        "infobip",
        auth={"token": "infobip-api-key-1122334455"},
        delivery_reports={"error_path": "$.error.id"},
    )
    reports = cred["delivery_reports"]
    assert reports["error_path"] == "$.error.id"
    assert reports["items_path"] == presets["infobip"]["delivery_reports"]["items_path"]
    assert reports["status_map"] == presets["infobip"]["delivery_reports"]["status_map"]


async def test_another_auth_type_replaces_the_presets_auth(client: httpx.AsyncClient) -> None:
    password = "infobip-password-6677"
    cred = await _create(
        client, "infobip", auth={"type": "basic", "username": "acme", "password": password}
    )
    assert cred["auth"]["type"] == "basic"
    assert cred["auth"].get("scheme") is None

    response = await _preview(client, cred["id"])
    assert _headers(response.json())["authorization"] == _masked_basic("acme", password)
    _assert_hidden(response, password)


async def test_unknown_preset_is_refused_naming_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/credentials",
        json={"preset": "nexmo", "name": "old-name", "auth": {"token": "t0k3n-value"}},
    )
    assert response.status_code == 422, response.text
    assert "preset" in [error["field"] for error in response.json()["errors"]]
    assert (await client.get("/api/v1/credentials")).json()["items"] == []


async def test_infobip_needs_the_accounts_own_base_url(client: httpx.AsyncClient) -> None:
    items = (await client.get("/api/v1/provider-presets")).json()["items"]
    [infobip] = [item for item in items if item["name"] == "infobip"]
    assert "provider_url" in infobip["needs"]
