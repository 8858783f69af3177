"""No secret value ever appears in an API response or a log line.

``tests/conftest.py``'s ``no_secret_leaks`` fixture checks, after every test of the suite,
every response body and header the ``client`` fixture received and every line logged during
the test, for the secret values the suite uses (``SUITE_SECRETS``). This module drives every
credential endpoint with secrets, failure paths included, so the check has something to find
even when run alone, and proves the check can fail.
"""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import (
    LOG_RECORDER,
    RESPONSE_BODIES,
    SUITE_SECRETS,
    CredentialFactory,
    assert_no_secrets,
)
from tests.mock_provider import MockProvider, Reply


async def test_every_endpoint_with_secrets_answers_without_them(
    client: httpx.AsyncClient, make_credential: CredentialFactory, mock_provider: MockProvider
) -> None:
    responses, lines = len(RESPONSE_BODIES), len(LOG_RECORDER.lines)
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
    # what the no_secret_leaks fixture scans after this test
    assert len(RESPONSE_BODIES) - responses >= 20, "the scan must have responses to look at"
    assert len(LOG_RECORDER.lines) > lines, "the scan must have log lines to look at"


def test_the_check_finds_a_secret_in_a_response_or_a_log_line() -> None:
    for secret in SUITE_SECRETS:
        with pytest.raises(AssertionError, match="leaked in a response"):
            assert_no_secrets([f'{{"echo": "Bearer {secret}"}}'], [])
        with pytest.raises(AssertionError, match="leaked in a log line"):
            assert_no_secrets([], [f"smsbridge.worker sent with {secret}"])
