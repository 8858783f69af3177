"""Campaigns end to end on SQLite and PostgreSQL: profiles imported over the API, a campaign
launched over the API, fanned out, sent by a worker to the loopback mock provider, whose
received bodies are checked one by one. An injected clock drives scheduling and throttling.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select, update

from smsbridge.app import create_app
from smsbridge.config import Settings
from smsbridge.container import Services, build_services
from smsbridge.delivery.worker import Worker
from smsbridge.domain.messages import MessageStatus
from smsbridge.domain.personalize import Personalizer
from smsbridge.errors import Conflict
from smsbridge.services import campaigns as campaign_service
from smsbridge.services.campaign_runner import CampaignRunner
from smsbridge.services.fanout import FanOut
from smsbridge.storage.fanout import Exclusion, NewRecipient, write_batch
from smsbridge.storage.records import FanoutBatch
from smsbridge.storage.tables import campaigns, message_events, messages, outbox, suppressions
from tests.clock import FakeClock
from tests.conftest import ADMIN_KEY
from tests.mock_provider import MockProvider

SENDER = "+15550001111"


@dataclass
class World:
    services: Services
    clock: FakeClock
    provider: MockProvider
    http: httpx.AsyncClient
    surface_id: str

    def worker(self) -> Worker:
        return self.services.new_worker(rng=random.Random(3), batch_size=500)

    def fanout(self, batch_size: int = 1000) -> FanOut:
        return FanOut(
            self.services.db,
            clock=self.clock,
            personalizer=Personalizer(),
            batch_size=batch_size,
        )

    def runner(self, fanout: FanOut | None = None) -> CampaignRunner:
        return CampaignRunner(self.services.db, fanout or self.fanout(), clock=self.clock)

    async def import_profiles(self, profiles: list[dict[str, Any]]) -> dict[str, Any]:
        body = "".join(json.dumps(p) + "\n" for p in profiles)
        response = await self.http.post(
            "/api/v1/profiles/import",
            content=body.encode(),
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def campaign(self, **fields: Any) -> dict[str, Any]:
        document = {
            "name": "spring sale",
            "surface_id": self.surface_id,
            "body": "Hi {{ profile.firstName }}, code {{ code }}",
            "variables": {"code": "SPRING"},
            "audience": {"all": True},
            **fields,
        }
        response = await self.http.post("/api/v1/campaigns", json=document)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def launch(self, campaign_id: str, **headers: str) -> httpx.Response:
        return await self.http.post(f"/api/v1/campaigns/{campaign_id}/launch", headers=headers)

    async def get(self, campaign_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/api/v1/campaigns/{campaign_id}")
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    async def suppress(self, phone: str) -> None:
        async with self.services.db.transaction() as conn:
            await conn.execute(
                insert(suppressions).values(
                    sender=SENDER,
                    phone=phone,
                    source="keyword",
                    keyword="STOP",
                    created_at=self.clock(),
                )
            )

    async def message_of(self, campaign_id: str) -> dict[str, Any]:
        """One message of the campaign, in full (with its events)."""
        listed = await self.http.get("/api/v1/messages", params={"campaign_id": campaign_id})
        first = listed.json()["items"][0]["id"]
        response = await self.http.get(f"/api/v1/messages/{first}")
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def received(self) -> dict[str, str]:
        """Destination → text of every request the provider received (fails on repeats)."""
        seen: dict[str, str] = {}
        for request in self.provider.requests:
            sent = json.loads(request.body)
            assert sent["to"] not in seen, f"{sent['to']} received two requests"
            seen[sent["to"]] = sent["text"]
        return seen


@pytest.fixture
async def world(settings: Settings, mock_provider: MockProvider) -> AsyncIterator[World]:
    clock = FakeClock()
    services = await build_services(settings, clock=clock)
    credential = await services.credentials.create(
        {
            "name": "mock",
            "provider_url": f"{mock_provider.url}/send",
            "auth": {"type": "bearer", "token": "tok-campaign-778899"},
            "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
            "response": {"message_id_path": "$.id"},
        }
    )
    surface = await services.surfaces.create(
        {"name": "marketing", "credential_id": credential.id, "sender": SENDER}
    )
    app = create_app(settings, prebuilt=services)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://testserver",
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            ) as http,
        ):
            yield World(services, clock, mock_provider, http, surface.id)
    finally:
        await services.close()


def _people(count: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "external_id": f"p{n:04d}",
            "phone": f"+3361234{n:04d}",
            "attributes": {"firstName": f"Name{n}", "country": ["FR", "BE", "DE"][n % 3], **extra},
        }
        for n in range(count)
    ]


async def test_filtered_campaign_sends_exactly_to_matching_unexcluded_profiles(
    world: World,
) -> None:
    people = _people(30)
    people[3]["phone"] = people[0]["phone"]  # p0003 (FR) shares p0000's number: a duplicate
    people[6]["attributes"]["firstName"] = "{{ 7*7 }}"  # data, never a template
    people[9]["attributes"]["firstName"] = "x" * 1600  # renders over the body limit
    result = await world.import_profiles(people)
    assert result == {"imported": 30, "lines": 30, "error_count": 0, "errors": []}
    await world.suppress(people[12]["phone"])  # p0012 (FR) opted out

    campaign = await world.campaign(audience={"filter": {"attributes.country": ["FR", "BE"]}})
    assert campaign["status"] == "draft"
    response = await world.launch(campaign["id"])
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "running"

    runner = world.runner()
    await runner.run_once()
    await world.worker().drain()
    await runner.run_once()

    matching = [p for p in people if p["attributes"]["country"] in ("FR", "BE")]
    excluded = {"p0003": "duplicate", "p0009": "invalid_message", "p0012": "opted_out"}
    expected = {
        p["phone"]: f"Hi {p['attributes']['firstName']}, code SPRING"
        for p in matching
        if p["external_id"] not in excluded
    }
    assert world.received() == expected
    assert expected[people[6]["phone"]] == "Hi {{ 7*7 }}, code SPRING"

    final = await world.get(campaign["id"])
    assert final["status"] == "completed"
    assert final["counts"]["targeted"] == len(expected) == 17
    assert final["counts"]["sent"] == 17
    assert final["counts"]["excluded"] == 3
    assert final["excluded_reasons"] == {"duplicate": 1, "invalid_message": 1, "opted_out": 1}
    listed = (await world.http.get(f"/api/v1/campaigns/{campaign['id']}/exclusions")).json()
    assert {e["profile_id"]: e["reason"] for e in listed["items"]} == excluded
    # paged one by one: the cursor carries a customer's id (no "_" in "p0009"), taken back
    paged: dict[str, str] = {}
    cursor: str | None = None
    for _ in range(5):
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        got = await world.http.get(f"/api/v1/campaigns/{campaign['id']}/exclusions", params=params)
        assert got.status_code == 200, got.text
        paged.update({e["profile_id"]: e["reason"] for e in got.json()["items"]})
        cursor = got.json()["next_cursor"]
        if cursor is None:
            break
    assert paged == excluded

    page = await world.http.get(
        "/api/v1/messages", params={"campaign_id": campaign["id"], "limit": 100}
    )
    assert {m["profile_id"] for m in page.json()["items"]} == {
        p["external_id"] for p in matching if p["external_id"] not in excluded
    }


async def test_a_campaign_message_timeline_starts_queued_at_its_creation(world: World) -> None:
    """Fan-out stores no first event (a third of its rows): the timeline implies it."""
    await world.import_profiles(_people(3))
    campaign = await world.campaign(body="Hi {{ profile.firstName }}")
    await world.launch(campaign["id"])
    await world.runner().run_once()
    queued = await world.message_of(campaign["id"])
    assert queued["events"] == [{"at": queued["created_at"], "type": "queued", "detail": None}]
    async with world.services.db.read() as conn:
        stored = await conn.execute(select(func.count()).select_from(message_events))
        assert stored.scalar_one() == 0

    await world.worker().drain()
    sent = await world.message_of(campaign["id"])
    assert sent["status"] == "sent"
    types = [e["type"] for e in sent["events"]]
    assert types[0] == "queued" and types.count("queued") == 1 and "sent" in types
    assert sent["events"][0]["at"] == queued["created_at"]


async def test_a_stored_body_that_no_longer_compiles_excludes_recipients(world: World) -> None:
    """E.g. template rules tightened by an upgrade while a campaign was a draft: each
    recipient is excluded with the reason, the fan-out finishes, the runner goes on."""
    await world.import_profiles(_people(3))
    broken = await world.campaign(body="Hi {{ profile.firstName }}")
    fine = await world.campaign(body="Static")
    async with world.services.db.transaction() as conn:
        await conn.execute(
            update(campaigns)
            .where(campaigns.c.id == broken["id"])
            .values(body="Hi {{ profile.firstName ")
        )
    await world.launch(broken["id"])
    await world.launch(fine["id"])
    await world.runner().run_once()
    view = await world.get(broken["id"])
    assert view["fanout_done"] and view["excluded_reasons"] == {"invalid_message": 3}
    assert view["counts"]["targeted"] == 0
    assert (await world.get(fine["id"]))["counts"]["targeted"] == 3


async def test_profile_ids_audience_reports_unknown_and_repeated_ids(world: World) -> None:
    await world.import_profiles(_people(4))
    campaign = await world.campaign(
        body="Static text",
        audience={"profile_ids": ["p0001", "nobody", "p0002", "p0001"]},
    )
    await world.launch(campaign["id"])
    await world.runner().run_once()
    view = await world.get(campaign["id"])
    assert view["counts"]["targeted"] == 2
    assert view["excluded_reasons"] == {"unknown_profile": 1, "duplicate": 1}
    await world.worker().drain()
    assert world.received() == {"+33612340001": "Static text", "+33612340002": "Static text"}


async def test_cancel_mid_fanout_stops_it_and_cancels_pending_messages(world: World) -> None:
    await world.import_profiles(_people(20))
    campaign = await world.campaign(body="Sale!")
    await world.launch(campaign["id"])
    fanout = world.fanout(batch_size=5)
    first = await fanout.step(campaign["id"])
    assert first is not None and first.messages == 5 and not first.done

    response = await world.http.post(f"/api/v1/campaigns/{campaign['id']}/cancel")
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["status"] == "cancelled"
    assert view["counts"]["cancelled"] == 5
    assert view["counts"]["pending"] == 0

    assert await fanout.step(campaign["id"]) is None  # the fan-out stops at the next batch
    await world.worker().drain()
    assert world.provider.requests == []
    again = await world.get(campaign["id"])
    assert again["counts"]["targeted"] == 5
    relaunch = await world.launch(campaign["id"])
    assert relaunch.status_code == 409


async def test_restart_mid_fanout_resumes_without_duplicates(
    world: World, settings: Settings
) -> None:
    await world.import_profiles(_people(23))
    campaign = await world.campaign(body="Hello {{ profile.firstName }}")
    await world.launch(campaign["id"])
    before_crash = world.fanout(batch_size=4)
    for _ in range(3):
        await before_crash.step(campaign["id"])

    # A new process: its own services on the same database, resuming from the stored cursor.
    restarted = await build_services(settings, clock=world.clock)
    try:
        resumed = FanOut(restarted.db, clock=world.clock, personalizer=Personalizer(), batch_size=4)
        await resumed.run(campaign["id"])
    finally:
        await restarted.close()
    assert await world.fanout().step(campaign["id"]) is None

    async with world.services.db.read() as conn:
        rows = (
            await conn.execute(
                select(messages.c.to_number, func.count())
                .where(messages.c.campaign_id == campaign["id"])
                .group_by(messages.c.to_number)
            )
        ).all()
    assert len(rows) == 23
    assert all(count == 1 for _, count in rows)
    view = await world.get(campaign["id"])
    assert view["fanout_done"] is True
    assert view["counts"]["targeted"] == 23


async def test_two_concurrent_fanouts_of_one_campaign_write_each_recipient_once(
    world: World, settings: Settings
) -> None:
    await world.import_profiles(_people(40))
    campaign = await world.campaign(body="Once")
    await world.launch(campaign["id"])
    other = await build_services(settings, clock=world.clock)
    try:
        await asyncio.gather(
            world.fanout(batch_size=3).run(campaign["id"]),
            FanOut(other.db, clock=world.clock, personalizer=Personalizer(), batch_size=3).run(
                campaign["id"]
            ),
        )
    finally:
        await other.close()
    view = await world.get(campaign["id"])
    assert view["fanout_done"] is True
    assert view["counts"]["targeted"] == 40
    assert view["counts"]["excluded"] == 0
    await world.worker().drain()
    assert len(world.received()) == 40


async def test_a_batch_whose_number_the_campaign_already_has_is_refused_whole(
    world: World,
) -> None:
    """The unique index backs the duplicate check up (COPY on PostgreSQL, multi-row INSERT on
    SQLite): a batch naming a number the campaign already targets raises Conflict and writes
    nothing — neither its other rows nor its cursor."""
    await world.import_profiles(_people(4))
    campaign = await world.campaign(body="Once")
    await world.launch(campaign["id"])
    first = await world.fanout(batch_size=2).step(campaign["id"])
    assert first is not None and first.messages == 2
    view = await world.get(campaign["id"])
    now = world.clock()
    taken = _people(1)[0]["phone"]  # p0000's number, written by the first batch
    batch = FanoutBatch(
        campaign_id=campaign["id"],
        surface_id=campaign["surface_id"],
        message_type="marketing",
        from_number=SENDER,
        status=MessageStatus.QUEUED,
        send_at=None,
        now=now,
        expected_cursor="p0001",
        cursor="p0003",
        done=True,
        recipients=[
            NewRecipient(f"msg_{n}x", f"x{n}", phone, "Twice?", 1, "GSM-7", now)
            for n, phone in enumerate(["+33699999999", taken])
        ],
        exclusions=[Exclusion("p0002", None, "unknown_profile", "gone")],
    )
    with pytest.raises(Conflict):
        await write_batch(world.services.db, batch)
    after = await world.get(campaign["id"])
    assert after["counts"] == view["counts"]
    assert after["fanout_done"] is False
    async with world.services.db.read() as conn:
        numbers = (
            await conn.execute(
                select(messages.c.to_number).where(messages.c.campaign_id == campaign["id"])
            )
        ).scalars()
        assert sorted(numbers) == sorted(p["phone"] for p in _people(2))
    listed = (await world.http.get(f"/api/v1/campaigns/{campaign['id']}/exclusions")).json()
    assert listed["items"] == []


async def test_a_big_running_fanout_reuses_its_status_counts_for_a_moment(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Polling a big campaign while it fans out counts its messages at most once a second
    (``targeted`` stays current); a small or finished one is counted at every read."""
    monkeypatch.setattr(campaign_service, "BIG_FANOUT", 10)
    await world.import_profiles(_people(30))
    campaign = await world.campaign(body="Counted")
    await world.launch(campaign["id"])
    fanout = world.fanout(batch_size=10)
    await fanout.step(campaign["id"])
    first = (await world.get(campaign["id"]))["counts"]
    assert (first["targeted"], first["queued"]) == (10, 10)
    await fanout.step(campaign["id"])
    reused = (await world.get(campaign["id"]))["counts"]
    assert (reused["targeted"], reused["queued"]) == (20, 10)  # counted a moment ago
    monkeypatch.setattr(campaign_service, "COUNTS_REUSE_SECONDS", 0.0)
    fresh = (await world.get(campaign["id"]))["counts"]
    assert (fresh["targeted"], fresh["queued"]) == (20, 20)
    monkeypatch.setattr(campaign_service, "COUNTS_REUSE_SECONDS", 60.0)
    await fanout.step(campaign["id"])
    await fanout.step(campaign["id"])  # finds no one after the last: the fan-out is done
    done = await world.get(campaign["id"])
    assert done["fanout_done"] is True
    assert (done["counts"]["targeted"], done["counts"]["queued"]) == (30, 30)


async def test_launch_is_idempotent(world: World) -> None:
    await world.import_profiles(_people(3))
    campaign = await world.campaign(body="One each")
    first = await world.launch(campaign["id"], **{"Idempotency-Key": "launch-1"})
    await world.runner().run_once()
    second = await world.launch(campaign["id"], **{"Idempotency-Key": "launch-1"})
    assert second.status_code == 202
    assert second.json() == first.json()  # the first answer, replayed
    third = await world.launch(campaign["id"])
    assert third.status_code == 202
    assert third.json()["counts"]["targeted"] == 3
    await world.runner().run_once()
    await world.worker().drain()
    assert len(world.received()) == 3


async def test_throttle_spaces_due_times(world: World) -> None:
    await world.import_profiles(_people(5))
    campaign = await world.campaign(body="Paced", throttle_per_second=2)
    await world.launch(campaign["id"])
    await world.runner().run_once()
    async with world.services.db.read() as conn:
        due = sorted(
            r[0]
            for r in await conn.execute(
                select(outbox.c.due_at)
                .join(messages, messages.c.id == outbox.c.message_id)
                .where(messages.c.campaign_id == campaign["id"])
            )
        )
    start = due[0]
    assert [(d - start).total_seconds() for d in due] == [0.0, 0.5, 1.0, 1.5, 2.0]
    await world.worker().drain()
    assert len(world.provider.requests) == 1  # only the first is due yet
    world.clock.advance(2)
    await world.worker().drain()
    assert len(world.received()) == 5


async def test_scheduled_campaign_waits_for_send_at(world: World) -> None:
    await world.import_profiles(_people(2))
    send_at = world.clock() + timedelta(hours=1)
    campaign = await world.campaign(body="Later", send_at=send_at.isoformat())
    await world.launch(campaign["id"])
    await world.runner().run_once()
    view = await world.get(campaign["id"])
    assert view["counts"]["scheduled"] == 2
    waiting = await world.message_of(campaign["id"])
    assert [e["type"] for e in waiting["events"]] == ["scheduled"]
    await world.worker().drain()
    assert world.provider.requests == []
    world.clock.advance(3601)
    await world.worker().drain()
    await world.runner().run_once()
    assert len(world.received()) == 2
    assert (await world.get(campaign["id"]))["status"] == "completed"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"audience": {"everyone": True}}, "audience.everyone"),
        ({"audience": {"filter": {"country": "FR"}}}, "audience.filter.country"),
        ({"audience": {"profile_ids": []}}, "audience.profile_ids"),
        ({"body": "Hi {{ profile.firstName "}, "body"),
        ({"body": "{% for x in y %}{% endfor %}"}, "body"),
        ({"surface_id": "srf_nope"}, "surface_id"),
        ({"throttle_per_second": 0}, "throttle_per_second"),
        ({"send_at": "2026-05-01T09:00:00"}, "send_at"),
    ],
)
async def test_bad_campaigns_are_refused_field_by_field(
    world: World, fields: dict[str, Any], field: str
) -> None:
    document = {
        "name": "bad",
        "surface_id": world.surface_id,
        "body": "Hi",
        "audience": {"all": True},
        **fields,
    }
    response = await world.http.post("/api/v1/campaigns", json=document)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_unknown_campaign_and_completed_cancel(world: World) -> None:
    assert (await world.http.get("/api/v1/campaigns/cmp_nope")).status_code == 404
    assert (await world.launch("cmp_nope")).status_code == 404
    campaign = await world.campaign(body="Nobody")
    await world.launch(campaign["id"])
    await world.runner().run_once()  # empty audience: fan-out done, nothing pending
    await world.runner().run_once()
    assert (await world.get(campaign["id"]))["status"] == "completed"
    response = await world.http.post(f"/api/v1/campaigns/{campaign['id']}/cancel")
    assert response.status_code == 409
