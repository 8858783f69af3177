"""No secret value ever appears in an API response or a log line.

This module runs last (by name): it scans every response body and header the ``client``
fixture received during the whole session, and every log record, for the secret values the
suite uses. It also drives every credential endpoint itself, including failure paths, so it
checks something even when run alone.
"""

from __future__ import annotations

import httpx

from tests.conftest import LOG_RECORDER, RESPONSE_BODIES, CredentialFactory
from tests.mock_provider import MockProvider, Reply

# Every secret value the suite's credentials use (tests/integration/*).
SUITE_SECRETS = [
    "tok-live-abcdef123456",
    "tok-bearer-9f8e7d",
    "sig-secret-5566",
    "pw-basic-7788",
    "key-apikey-3344",
    "hdr-secret-01-abcd",
    "tok-new-0000wxyz",
    "leak-bearer-q1w2e3r4",
    "leak-basic-z9x8c7",
    "leak-apikey-m5n6b7",
    "leak-header-p0o9i8",
    "cs-oauth-7f6e5d4c3b",  # test_auth_types: OAuth2 client secret
    "hm-secret-a1b2c3d4e5",  # test_auth_types: HMAC secret
]


async def test_every_endpoint_with_secrets_answers_without_them(
    client: httpx.AsyncClient, make_credential: CredentialFactory, mock_provider: MockProvider
) -> None:
    header = {"label": "X-Leak", "type": "secret", "value": "leak-header-p0o9i8"}
    creds = [
        await make_credential(
            auth={"type": "bearer", "token": "leak-bearer-q1w2e3r4"}, headers=[header]
        ),
        await make_credential(
            auth={"type": "basic", "username": "u", "password": "leak-basic-z9x8c7"},
            content_type="application/x-www-form-urlencoded",
        ),
        await make_credential(
            auth={"type": "api_key", "header": "X-Key", "key": "leak-apikey-m5n6b7"}
        ),
    ]
    # providers that echo what they got, in error bodies and headers
    mock_provider.responder = lambda r: Reply(
        401, {"echo": r.headers}, headers={"X-Echo": r.headers.get("authorization", "")}
    )
    for cred in creds:
        path = f"/api/v1/credentials/{cred['id']}"
        await client.get(path)
        await client.get("/api/v1/credentials")
        await client.post(f"{path}/preview", json={"to": "+33612345678", "message": "m"})
        await client.post(f"{path}/test", json={"to": "+33612345678"})
        await client.patch(path, json={"provider_name": "renamed"})
        await client.patch(path, json={"auth": {"type": "bearer"}})  # 422: token missing
        await client.patch(path, json={"payload": {"x": "{{nope}}"}})  # 422
    assert len(mock_provider.requests) == 3  # the providers really saw the secrets


def test_no_secret_in_any_response_or_log_line() -> None:
    assert len(RESPONSE_BODIES) >= 20, "the scan must have responses to look at"
    assert LOG_RECORDER.lines, "the scan must have log lines to look at"
    for secret in SUITE_SECRETS:
        for body in RESPONSE_BODIES:
            assert secret not in body, f"secret {secret[:6]}… leaked in a response"
        for line in LOG_RECORDER.lines:
            assert secret not in line, f"secret {secret[:6]}… leaked in a log line"
