"""A credential that no longer parses fails (or fails over) only its own messages: the rest of
the claimed batch is sent, and nothing is left ``sending`` with leases renewed forever.

Two ways a stored credential stops parsing, both real: a row written before today's
validation (here: its stored document rewritten in the database), and a restart with
``SMSBRIDGE_ALLOW_PRIVATE_PROVIDER_URLS`` turned off under an ``http://`` credential.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select, update

from smsbridge.config import Settings
from smsbridge.container import Services, build_services
from smsbridge.domain.retry import RetryPolicy
from smsbridge.services.messages import SendRequest
from smsbridge.storage.tables import credentials, messages
from tests.clock import FakeClock
from tests.mock_provider import MockProvider, Reply, credential_document

TO = "+33612345678"
BAD_TOKEN = "tok-unusable-d00d5eed"


@dataclass
class Setup:
    services: Services
    clock: FakeClock
    provider: MockProvider

    async def credential(self, name: str, path: str, token: str) -> str:
        created = await self.services.credentials.create(
            credential_document(name, f"{self.provider.url}{path}", token=token)
        )
        return created.id

    async def surface(self, name: str, credential_id: str, *fallbacks: str) -> str:
        document: dict[str, Any] = {
            "name": name,
            "credential_id": credential_id,
            "sender": "+15550001111",
        }
        if fallbacks:
            document["fallback_credential_ids"] = list(fallbacks)
        created = await self.services.surfaces.create(document)
        return created.id

    async def send(self, surface_id: str, body: str) -> str:
        request = SendRequest(surface_id=surface_id, to=TO, body=body)
        _, view = await self.services.messages.send(request)
        return str(view["id"])

    async def corrupt(self, credential_id: str) -> None:
        """Rewrite the stored document as a row from before today's validation could be."""
        async with self.services.db.transaction() as conn:
            document = (
                await conn.execute(
                    select(credentials.c.document).where(credentials.c.id == credential_id)
                )
            ).scalar_one()
            document = {**document, "provider_url": "ftp://files.example.test/sms"}
            await conn.execute(
                update(credentials)
                .where(credentials.c.id == credential_id)
                .values(document=document, updated_at=self.clock())
            )

    async def sending(self) -> int:
        async with self.services.db.read() as conn:
            rows = await conn.execute(select(messages.c.id).where(messages.c.status == "sending"))
            return len(rows.all())


@pytest.fixture
async def setup(settings: Settings, mock_provider: MockProvider) -> AsyncIterator[Setup]:
    clock = FakeClock()
    services = await build_services(settings, clock=clock)
    try:
        yield Setup(services, clock, mock_provider)
    finally:
        await services.close()


def _paths(provider: MockProvider) -> list[str]:
    return [r.path for r in provider.requests]


async def test_a_corrupted_credential_fails_only_its_messages(setup: Setup) -> None:
    good = await setup.surface("good", await setup.credential("good", "/good", "tok-good-1a2b3c"))
    bad_id = await setup.credential("bad", "/bad", BAD_TOKEN)
    bad = await setup.surface("bad", bad_id)
    sent = [await setup.send(good, f"good {n}") for n in range(3)]
    refused = [await setup.send(bad, f"bad {n}") for n in range(3)]
    await setup.corrupt(bad_id)

    worker = setup.services.new_worker(rng=random.Random(1), batch_size=50)
    await worker.drain()  # one claim holds all six

    assert sorted(json.loads(r.body)["text"] for r in setup.provider.requests) == [
        "good 0",
        "good 1",
        "good 2",
    ]
    assert set(_paths(setup.provider)) == {"/good"}
    for message_id in sent:
        assert (await setup.services.messages.get(message_id))["status"] == "sent"
    for message_id in refused:
        view = await setup.services.messages.get(message_id)
        assert view["status"] == "failed"
        assert view["attempts"] == 0
        assert f"credential {bad_id} cannot be used" in view["last_error"]
        assert "provider_url" in view["last_error"]
        assert BAD_TOKEN not in view["last_error"]
        assert view["events"][-1]["type"] == "failed"
    assert await setup.sending() == 0


async def test_private_urls_turned_off_fails_the_http_credential_only(
    settings: Settings, setup: Setup
) -> None:
    """Created while private URLs were allowed; the worker restarts with them refused."""
    sandbox = await setup.services.credentials.create({"name": "sbx", "preset": "sandbox"})
    good = await setup.surface("good", sandbox.id)
    bad_id = await setup.credential("loopback", "/sms", BAD_TOKEN)
    bad = await setup.surface("bad", bad_id)
    sent = [await setup.send(good, f"good {n}") for n in range(2)]
    refused = [await setup.send(bad, f"bad {n}") for n in range(2)]

    strict = await build_services(
        settings.model_copy(update={"allow_private_provider_urls": False}), clock=setup.clock
    )
    try:
        await strict.new_worker(rng=random.Random(1), batch_size=50).drain()
    finally:
        await strict.close()

    assert setup.provider.requests == []
    for message_id in sent:
        assert (await setup.services.messages.get(message_id))["status"] == "sent"
    for message_id in refused:
        view = await setup.services.messages.get(message_id)
        assert view["status"] == "failed"
        assert f"credential {bad_id} cannot be used" in view["last_error"]
        assert "SMSBRIDGE_ALLOW_PRIVATE_PROVIDER_URLS" in view["last_error"]
        assert BAD_TOKEN not in view["last_error"]
    assert await setup.sending() == 0


async def test_an_unusable_primary_fails_over_to_the_fallback(setup: Setup) -> None:
    bad_id = await setup.credential("bad", "/bad", BAD_TOKEN)
    good_id = await setup.credential("good", "/good", "tok-good-1a2b3c")
    surface = await setup.surface("routed", bad_id, good_id)
    message_id = await setup.send(surface, "via the fallback")
    await setup.corrupt(bad_id)

    worker = setup.services.new_worker(
        rng=random.Random(1), policy=RetryPolicy(max_attempts=2, base_delay=1.0, max_delay=2.0)
    )
    await worker.drain()

    assert _paths(setup.provider) == ["/good"]
    view = await setup.services.messages.get(message_id)
    assert view["status"] == "sent"
    assert view["credential_id"] == good_id
    attempt = [e for e in view["events"] if e["type"] == "attempt"][-1]
    assert attempt["detail"]["credential_id"] == good_id
    assert attempt["detail"]["failover"] == "credential_unusable"


async def test_an_unusable_fallback_is_named_when_the_route_ends_there(setup: Setup) -> None:
    """The primary's budget is spent on transient failures; the fallback cannot be used: the
    message fails saying so, instead of waiting on a credential that will never work."""
    primary_id = await setup.credential("primary", "/primary", "tok-primary-4d5e6f")
    bad_id = await setup.credential("bad", "/bad", BAD_TOKEN)
    surface = await setup.surface("routed", primary_id, bad_id)
    message_id = await setup.send(surface, "nowhere to go")
    await setup.corrupt(bad_id)
    setup.provider.reply(Reply(503, {"error": "unavailable"}))

    worker = setup.services.new_worker(
        rng=random.Random(1), policy=RetryPolicy(max_attempts=2, base_delay=1.0, max_delay=2.0)
    )
    for _ in range(5):
        await worker.drain()
        setup.clock.advance(10)

    assert _paths(setup.provider) == ["/primary", "/primary"]
    view = await setup.services.messages.get(message_id)
    assert view["status"] == "failed"
    assert f"credential {bad_id} cannot be used" in view["last_error"]
    assert await setup.sending() == 0


async def test_secrets_the_keys_cannot_open_fail_only_that_credential(
    settings: Settings, setup: Setup
) -> None:
    """One credential sealed under a key no longer configured (dropped too early)."""
    other_key = SecretStr(Fernet.generate_key().decode())
    elsewhere = await build_services(
        settings.model_copy(update={"secret_keys": other_key}), clock=setup.clock
    )
    try:
        sealed = await elsewhere.credentials.create(
            credential_document("sealed", f"{setup.provider.url}/lost", token=BAD_TOKEN)
        )
    finally:
        await elsewhere.close()
    lost = await setup.surface("lost", sealed.id)
    good = await setup.surface("good", await setup.credential("good", "/good", "tok-good-1a2b3c"))
    refused = await setup.send(lost, "lost")
    sent = await setup.send(good, "good")

    await setup.services.new_worker(rng=random.Random(1)).drain()

    assert _paths(setup.provider) == ["/good"]
    assert (await setup.services.messages.get(sent))["status"] == "sent"
    view = await setup.services.messages.get(refused)
    assert view["status"] == "failed"
    assert f"credential {sealed.id} cannot be used" in view["last_error"]
    assert "SMSBRIDGE_SECRET_KEYS" in view["last_error"]
    assert await setup.sending() == 0
