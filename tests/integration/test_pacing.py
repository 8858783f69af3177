"""Quiet hours and frequency caps on single sends and campaign fan-outs, with a fake clock,
recipients in three zones, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from smsbridge.config import Settings
from smsbridge.container import Services, build_services
from smsbridge.services.messages import SendRequest
from tests.clock import FakeClock
from tests.mock_provider import MockProvider, Reply

PARIS = "+33612345678"  # 22:30 there when the test starts: quiet
NEW_YORK = "+12125550123"  # 16:30 there: not quiet
START = datetime(2026, 6, 10, 20, 30, tzinfo=UTC)
PARIS_MORNING = datetime(2026, 6, 11, 6, 0, tzinfo=UTC)  # 08:00 CEST
TOKYO_MORNING = datetime(2026, 6, 10, 23, 0, tzinfo=UTC)  # 08:00 JST


class Paced:
    def __init__(self, services: Services, clock: FakeClock, provider: MockProvider) -> None:
        self.services, self.clock, self.provider = services, clock, provider
        self.marketing = ""
        self.transactional = ""

    async def setup(self) -> None:
        credential = await self.services.credentials.create(
            {
                "name": "paced",
                "provider_url": f"{self.provider.url}/sms",
                "auth": {"type": "none"},
                "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
            }
        )
        common = {"credential_id": credential.id, "sender": "Acme"}
        marketing = await self.services.surfaces.create(
            {
                **common,
                "name": "promo",
                "message_type": "marketing",
                "quiet_hours": {
                    "start": "21:00",
                    "end": "08:00",
                    "default_timezone": "America/New_York",
                },
                "frequency_cap": {"max_messages": 2, "window_hours": 24},
            }
        )
        transactional = await self.services.surfaces.create(
            {
                **common,
                "name": "alerts",
                "message_type": "transactional",
                "quiet_hours": {"start": "21:00", "end": "08:00"},
            }
        )
        self.marketing, self.transactional = marketing.id, transactional.id

    async def send(self, surface_id: str, to: str) -> dict[str, Any]:
        status, view = await self.services.messages.send(SendRequest(surface_id, to, "Offer"))
        assert status == 202
        return view

    async def drain(self) -> list[str]:
        before = len(self.provider.requests)
        await self.services.new_worker().drain()
        return [r.body.decode() for r in self.provider.requests[before:]]


@pytest.fixture
async def paced(settings: Settings, mock_provider: MockProvider) -> AsyncIterator[Paced]:
    mock_provider.reply(Reply(200, {"id": "ok"}))
    clock = FakeClock(START)
    services = await build_services(settings, clock=clock)
    setup = Paced(services, clock, mock_provider)
    await setup.setup()
    try:
        yield setup
    finally:
        await services.close()


async def test_single_sends_wait_for_the_recipients_morning(paced: Paced) -> None:
    paris = await paced.send(paced.marketing, PARIS)
    assert paris["status"] == "scheduled"
    assert paris["send_at"] == PARIS_MORNING
    assert "quiet hours in Europe/Paris" in paris["events"][0]["detail"]["reason"]
    new_york = await paced.send(paced.marketing, NEW_YORK)
    assert new_york["status"] == "queued"
    alert = await paced.send(paced.transactional, PARIS)  # transactional: no quiet hours
    assert alert["status"] == "queued"

    sent = await paced.drain()  # New York's offer and the Paris alert; not the Paris offer
    assert sorted(json.loads(body)["to"] for body in sent) == [NEW_YORK, PARIS]
    assert (await paced.services.messages.get(paris["id"]))["status"] == "scheduled"
    paced.clock.now = PARIS_MORNING
    assert len(await paced.drain()) == 1
    assert (await paced.services.messages.get(paris["id"]))["status"] == "sent"


async def test_the_frequency_cap_suppresses_the_third_marketing_message(paced: Paced) -> None:
    first = await paced.send(paced.marketing, NEW_YORK)
    second = await paced.send(paced.marketing, NEW_YORK)
    third = await paced.send(paced.marketing, NEW_YORK)
    assert [first["status"], second["status"], third["status"]] == [
        "queued",
        "queued",
        "suppressed",
    ]
    assert third["last_error"].startswith("frequency_cap")
    assert (await paced.send(paced.transactional, NEW_YORK))["status"] == "queued"  # not capped
    assert len(await paced.drain()) == 3
    paced.clock.advance(24 * 3600 + 1)  # the window rolled past the first two
    assert (await paced.send(paced.marketing, NEW_YORK))["status"] == "queued"


async def test_campaign_fan_out_honours_both(paced: Paced) -> None:
    services = paced.services
    await paced.send(paced.marketing, "+12125550199")
    await paced.send(paced.marketing, "+12125550199")  # this number is at its cap
    people = {
        "paris": {"phone": PARIS},
        "new-york": {"phone": NEW_YORK},
        "tokyo": {"phone": "+33699999999", "timezone": "Asia/Tokyo"},  # profile zone wins
        "capped": {"phone": "+12125550199"},
    }
    for external_id, data in people.items():
        await services.profiles.put(external_id, {**data, "attributes": {}})
    campaign = await services.campaigns.create(
        {"name": "night", "surface_id": paced.marketing, "body": "Hi", "audience": {"all": True}}
    )
    await services.campaigns.launch(campaign["id"])
    await services.new_campaign_runner().run_once()

    exclusions = await services.campaigns.exclusions(campaign["id"])
    assert [(e["profile_id"], e["reason"]) for e in exclusions.items] == [
        ("capped", "frequency_cap")
    ]
    messages = {
        m["profile_id"]: m
        for m in (await services.messages.list(campaign_id=campaign["id"], limit=10)).items
    }
    assert messages["paris"]["status"] == "scheduled"
    assert messages["paris"]["send_at"] == PARIS_MORNING
    assert messages["tokyo"]["send_at"] == TOKYO_MORNING
    assert messages["new-york"]["status"] == "queued"

    await paced.drain()  # the two earlier sends and New York
    paced.clock.now = TOKYO_MORNING
    tokyo = await paced.drain()
    assert len(tokyo) == 1 and "+33699999999" in tokyo[0]
    paced.clock.now = PARIS_MORNING
    assert len(await paced.drain()) == 1
    report = await services.reports.campaign(campaign["id"])
    assert report["sent"] == 3 and report["excluded_reasons"] == {"frequency_cap": 1}


async def test_surface_api_sets_changes_and_removes_pacing(client: Any) -> None:
    credential = await client.post(
        "/api/v1/credentials",
        json={"name": "c", "preset": "sandbox", "provider_url": "sandbox://default"},
    )
    assert credential.status_code == 201, credential.text
    created = await client.post(
        "/api/v1/surfaces",
        json={
            "name": "promo",
            "credential_id": credential.json()["id"],
            "sender": "Acme",
            "quiet_hours": {"start": "21:00", "end": "08:00"},
            "frequency_cap": {"max_messages": 3, "window_hours": 24},
        },
    )
    assert created.status_code == 201, created.text
    surface = created.json()
    assert surface["quiet_hours"] == {"start": "21:00", "end": "08:00", "default_timezone": "UTC"}
    assert surface["frequency_cap"] == {"max_messages": 3, "window_hours": 24}
    path = f"/api/v1/surfaces/{surface['id']}"
    changed = await client.patch(path, json={"quiet_hours": {"end": "07:30"}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["quiet_hours"]["end"] == "07:30"
    assert changed.json()["quiet_hours"]["start"] == "21:00"
    bad = await client.patch(path, json={"quiet_hours": {"start": "25:00"}})
    assert bad.status_code == 422
    assert "quiet_hours.start" in {e["field"] for e in bad.json()["errors"]}
    removed = await client.patch(path, json={"quiet_hours": None, "frequency_cap": None})
    assert removed.status_code == 200, removed.text
    assert removed.json()["quiet_hours"] is None and removed.json()["frequency_cap"] is None
