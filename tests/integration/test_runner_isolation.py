"""One bad campaign never stalls the others: numeric fields are refused out of range (API and
domain), and a campaign the runner cannot fan out — a row stored before today's validation —
is logged and retried later with backoff while every other campaign goes on."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from smsbridge.config import Settings
from smsbridge.container import Services, build_services
from smsbridge.services.campaign_runner import CampaignRunner
from smsbridge.storage.tables import campaigns
from tests.clock import FakeClock
from tests.mock_provider import MockProvider, credential_document


@dataclass
class Campaigns:
    services: Services
    clock: FakeClock
    provider: MockProvider
    surface_id: str

    async def create(self, body: str, **fields: Any) -> str:
        created = await self.services.campaigns.create(
            {
                "name": body,
                "surface_id": self.surface_id,
                "body": body,
                "audience": {"all": True},
                **fields,
            }
        )
        return str(created["id"])

    async def poison(self, campaign_id: str, **stored: Any) -> None:
        """Write values straight into the row, as validation of old could have let them in."""
        async with self.services.db.transaction() as conn:
            await conn.execute(
                update(campaigns).where(campaigns.c.id == campaign_id).values(**stored)
            )

    async def get(self, campaign_id: str) -> dict[str, Any]:
        return await self.services.campaigns.get(campaign_id)


@pytest.fixture
async def world(settings: Settings, mock_provider: MockProvider) -> AsyncIterator[Campaigns]:
    clock = FakeClock()
    services = await build_services(settings, clock=clock)
    try:
        credential = await services.credentials.create(
            credential_document("mock", f"{mock_provider.url}/send", token="tok-camp-5a6b7c")
        )
        surface = await services.surfaces.create(
            {"name": "marketing", "credential_id": credential.id, "sender": "+15550001111"}
        )
        for n in range(3):
            await services.profiles.put(f"p{n}", {"phone": f"+3361234000{n}", "attributes": {}})
        yield Campaigns(services, clock, mock_provider, surface.id)
    finally:
        await services.close()


POISONS = {
    "throttle_1e-300": {"throttle_per_second": 1e-300},  # k / 1e-300 s: OverflowError
    "throttle_negative": {"throttle_per_second": -5.0},
    "send_at_year_9999": {
        "send_at": datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        "throttle_per_second": 1.0,
    },
    "audience_unreadable": {"audience": {"bogus": True}},
}


@pytest.mark.parametrize("poison", POISONS.values(), ids=POISONS.keys())
async def test_a_poisoned_campaign_never_stops_the_others(
    world: Campaigns, poison: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    bad = await world.create("first, poisoned")  # the runner meets it first (ids sort by time)
    good = await world.create("second, fine")
    await world.poison(bad, **poison)
    await world.services.campaigns.launch(bad)
    await world.services.campaigns.launch(good)

    runner = world.services.new_campaign_runner()
    with caplog.at_level(logging.ERROR, logger="smsbridge.campaigns"):
        await runner.run_once()
    await world.services.new_worker(rng=random.Random(2)).drain()
    await runner.run_once()

    finished = await world.get(good)
    assert finished["status"] == "completed"
    assert finished["counts"]["sent"] == 3
    assert len(world.provider.requests) == 3
    stuck = await world.get(bad)
    assert stuck["status"] == "running"
    assert not stuck["fanout_done"]
    failures = [r for r in caplog.records if bad in r.getMessage()]
    assert failures, "the failure is logged, naming the campaign"


async def test_a_failing_campaign_is_retried_with_growing_backoff(
    world: Campaigns, caplog: pytest.LogCaptureFixture
) -> None:
    bad = await world.create("poisoned")
    await world.poison(bad, throttle_per_second=1e-300)
    await world.services.campaigns.launch(bad)
    runner = CampaignRunner(
        world.services.db, world.services.fanout, clock=world.clock, poll_interval=1.0
    )

    def tries() -> int:
        return sum(1 for r in caplog.records if bad in r.getMessage())

    with caplog.at_level(logging.ERROR, logger="smsbridge.campaigns"):
        await runner.run_once()
        assert tries() == 1
        await runner.run_once()  # too early: left alone
        assert tries() == 1
        world.clock.advance(2.5)
        await runner.run_once()
        assert tries() == 2
        world.clock.advance(2.5)  # the second delay is longer
        await runner.run_once()
        assert tries() == 2
        world.clock.advance(600)
        await runner.run_once()
        assert tries() == 3
    assert (await world.get(bad))["status"] == "running"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('"throttle_per_second": 1e-300', "throttle_per_second"),
        ('"throttle_per_second": 0.001', "throttle_per_second"),
        ('"throttle_per_second": 1e300', "throttle_per_second"),
        ('"throttle_per_second": 1e999', "throttle_per_second"),
        ('"throttle_per_second": -1', "throttle_per_second"),
        ('"throttle_per_second": NaN', "throttle_per_second"),
        ('"throttle_per_second": Infinity', "throttle_per_second"),
        ('"throttle_per_second": true', "throttle_per_second"),
        ('"send_at": "9999-12-31T23:59:59Z"', "send_at"),
    ],
)
async def test_out_of_range_numbers_are_refused_naming_the_field(
    client: httpx.AsyncClient, services: Services, raw: str, field: str
) -> None:
    credential = await services.credentials.create({"name": "sbx", "preset": "sandbox"})
    surface = await services.surfaces.create(
        {"name": "s", "credential_id": credential.id, "sender": "+15550001111"}
    )
    # Raw text: NaN, Infinity and 1e999 are what Python's JSON reader accepts, not json=
    fields = f'"name": "n", "surface_id": "{surface.id}", "body": "Hi", "audience": {{"all": true}}'
    body = f"{{{fields}, {raw}}}"
    response = await client.post(
        "/api/v1/campaigns", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in response.json()["errors"]]


@pytest.mark.parametrize("throttle", [0.01, 0.5, 10_000])
async def test_throttles_in_range_are_accepted(
    client: httpx.AsyncClient, services: Services, throttle: float
) -> None:
    credential = await services.credentials.create({"name": "sbx", "preset": "sandbox"})
    surface = await services.surfaces.create(
        {"name": "s", "credential_id": credential.id, "sender": "+15550001111"}
    )
    response = await client.post(
        "/api/v1/campaigns",
        json={
            "name": "n",
            "surface_id": surface.id,
            "body": "Hi",
            "audience": {"all": True},
            "throttle_per_second": throttle,
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["throttle_per_second"] == throttle
