"""The SSRF guard sits in the connector: refused addresses are never connected to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from smsbridge.config import Settings
from smsbridge.container import build_services
from smsbridge.delivery.http import HttpTransport
from smsbridge.domain.request import ProviderRequest
from smsbridge.errors import DestinationBlocked
from tests.conftest import ADMIN_KEY, ClientFactory
from tests.mock_provider import MockProvider


def _request(url: str) -> ProviderRequest:
    return ProviderRequest("POST", url, (("Content-Type", "application/json"),), b"{}")


@pytest.fixture
async def guarded() -> AsyncIterator[HttpTransport]:
    transport = HttpTransport.create(allow_private=False)
    yield transport
    await transport.close()


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]"],
)
async def test_private_destinations_are_refused_at_connect_time(
    guarded: HttpTransport, mock_provider: MockProvider, host: str
) -> None:
    with pytest.raises(DestinationBlocked) as caught:
        await guarded.send(_request(f"http://{host}:{mock_provider.port}/x"), timeout=5)
    assert "SMSBRIDGE_ALLOW_PRIVATE_PROVIDER_URLS" in caught.value.message
    assert mock_provider.requests == []


async def test_allowed_when_private_urls_are_enabled(mock_provider: MockProvider) -> None:
    transport = HttpTransport.create(allow_private=True)
    try:
        response = await transport.send(
            _request(f"http://127.0.0.1:{mock_provider.port}/x"), timeout=5
        )
    finally:
        await transport.close()
    assert response.status == 200
    assert len(mock_provider.requests) == 1


async def test_redirects_are_not_followed(mock_provider: MockProvider) -> None:
    from tests.mock_provider import Reply

    mock_provider.reply(Reply(302, None, headers={"Location": "http://169.254.169.254/latest"}))
    transport = HttpTransport.create(allow_private=True)
    try:
        response = await transport.send(_request(f"{mock_provider.url}/x"), timeout=5)
    finally:
        await transport.close()
    assert response.status == 302
    assert len(mock_provider.requests) == 1


async def test_credential_test_through_the_api_reports_the_refusal(
    tmp_path: Path, sqlite_url: str, mock_provider: MockProvider, make_client: ClientFactory
) -> None:
    settings = Settings(
        database_url=sqlite_url,
        admin_key=SecretStr(ADMIN_KEY),
        secret_keys=SecretStr(Fernet.generate_key().decode()),
        allow_private_provider_urls=False,
        state_dir=tmp_path / "state",
    )
    services = await build_services(settings)
    try:
        async with make_client(settings, services, base_url="http://t") as client:
            created = await client.post(
                "/api/v1/credentials",
                json={
                    "name": "internal",
                    "provider_url": f"https://127.0.0.1:{mock_provider.port}/sms",
                    "auth": {"type": "none"},
                    "payload": {"t": "{{toNumber}}", "f": "{{fromNumber}}", "m": "{{message}}"},
                },
            )
            assert created.status_code == 201, created.text
            result = await client.post(
                f"/api/v1/credentials/{created.json()['id']}/test", json={"to": "+33612345678"}
            )
    finally:
        await services.close()
    verdict = result.json()
    assert verdict["ok"] is False
    assert "loopback address" in verdict["error"]
    assert mock_provider.requests == []


@pytest.mark.parametrize(
    "host",
    [
        "169.254.169.254",
        "169.254.170.2",
        "100.100.100.200",
        "168.63.129.16",
        "[fd00:ec2::254]",
        "[::ffff:169.254.169.254]",
    ],
)
async def test_metadata_addresses_stay_refused_when_private_urls_are_allowed(host: str) -> None:
    transport = HttpTransport.create(allow_private=True)
    try:
        with pytest.raises(DestinationBlocked) as caught:
            await transport.send(_request(f"http://{host}/latest/meta-data/"), timeout=2)
    finally:
        await transport.close()
    assert "cloud metadata address" in caught.value.message
    assert "always refused" in caught.value.message
