"""Every auth type of the domain through the public API (issue 14, point 6), on SQLite and
PostgreSQL: created with ``POST /api/v1/credentials``, read back with each secret masked,
patched (a setting changed, the secret kept or retyped); and the OpenAPI document lists every
type and field the domain has."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from smsbridge.container import Services
from smsbridge.domain.credentials import AUTH_FIELDS, SECRET_AUTH_FIELDS, AuthType

PAYLOAD = {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"}

# One auth object per type, every field given; (a setting to patch, its new value).
AUTHS: dict[AuthType, tuple[dict[str, Any], tuple[str, str] | None]] = {
    AuthType.BEARER: ({"scheme": "App", "token": "tok-bearer-0123456789ab"}, ("scheme", "Key")),
    AuthType.BASIC: (
        {"username": "AC12", "password": "pw-basic-0123456789ab"},
        ("username", "AC34"),
    ),
    AuthType.API_KEY: (
        {"header": "X-Api-Key", "key": "key-api-0123456789abcd"},
        ("header", "X-Key"),
    ),
    AuthType.OAUTH2: (
        {
            "token_url": "https://auth.example.com/oauth/token",
            "client_id": "client-1",
            "client_secret": "cs-oauth-0123456789abc",
            "scope": "sms.send",
            "client_auth": "body",
        },
        ("scope", "sms.send sms.read"),
    ),
    AuthType.HMAC: (
        {
            "secret": "hm-secret-0123456789abc",
            "algorithm": "sha1",
            "signature_header": "X-Sig",
            "timestamp_header": "X-Time",
            "string_to_sign": "{timestamp}.{body}",
            "encoding": "base64",
            "signature_prefix": "v1=",
            "timestamp_format": "unix_ms",
        },
        ("signature_prefix", "v2="),
    ),
    AuthType.NONE: ({}, None),
}


def test_every_auth_type_of_the_domain_is_covered_here() -> None:
    assert set(AUTHS) == set(AuthType)
    for auth_type, (auth, _) in AUTHS.items():
        assert set(auth) == set(AUTH_FIELDS[auth_type])


@pytest.mark.parametrize("auth_type", list(AuthType), ids=lambda t: t.value)
async def test_create_read_and_patch_every_auth_type(
    client: httpx.AsyncClient, services: Services, auth_type: AuthType
) -> None:
    auth, change = AUTHS[auth_type]
    secrets = {name: auth[name] for name in SECRET_AUTH_FIELDS[auth_type]}
    created = await client.post(
        "/api/v1/credentials",
        json={
            "name": f"auth-{auth_type.value}",
            "provider_url": "https://sms.example.com/send",
            "auth": {"type": auth_type.value, **auth},
            "payload": PAYLOAD,
        },
    )
    assert created.status_code == 201, created.text
    path = f"/api/v1/credentials/{created.json()['id']}"
    read = await client.get(path)
    for answer in (created, read):
        shown = answer.json()["auth"]
        assert shown["type"] == auth_type.value
        for name, value in auth.items():
            if name in secrets:
                assert shown[name] == {"set": True, "last4": value[-4:]}
            else:
                assert shown[name] == value
        for value in secrets.values():
            assert value not in answer.text

    if change is not None:
        field, new_value = change
        # what a GET returned, sent back with one setting changed: the secrets are kept
        patched = await client.patch(path, json={"auth": {**read.json()["auth"], field: new_value}})
        assert patched.status_code == 200, patched.text
        assert patched.json()["auth"][field] == new_value
    loaded = await services.credentials.load(created.json()["id"])
    assert loaded.auth.type is auth_type
    for name, value in secrets.items():
        assert getattr(loaded.auth, name) == value

    for name in secrets:
        retyped = await client.patch(path, json={"auth": {name: f"{name}-retyped-0123456789"}})
        assert retyped.status_code == 200, retyped.text
        assert retyped.json()["auth"][name] == {"set": True, "last4": "6789"}


@pytest.mark.parametrize("auth_type", [AuthType.OAUTH2, AuthType.HMAC], ids=lambda t: t.value)
async def test_a_bad_setting_of_the_newer_types_names_its_field(
    client: httpx.AsyncClient, auth_type: AuthType
) -> None:
    auth, _ = AUTHS[auth_type]
    field = "client_auth" if auth_type is AuthType.OAUTH2 else "algorithm"
    response = await client.post(
        "/api/v1/credentials",
        json={
            "name": "bad",
            "provider_url": "https://sms.example.com/send",
            "auth": {"type": auth_type.value, **auth, field: "md5"},
            "payload": PAYLOAD,
        },
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [f"auth.{field}"]


async def test_the_openapi_document_lists_every_auth_type_and_field(
    client: httpx.AsyncClient,
) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    fields = {name for names in AUTH_FIELDS.values() for name in names}
    for model in ("AuthIn", "AuthOut"):
        assert set(schemas[model]["properties"]) == {"type", *fields}
    assert set(schemas["AuthType"]["enum"]) == {t.value for t in AuthType}
    secret = schemas["AuthIn"]["properties"]["client_secret"]
    assert "(secret)" in secret["description"]
