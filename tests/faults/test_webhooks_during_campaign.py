"""A campaign running while the provider's webhooks misbehave: delivery reports duplicated,
out of order, and arriving before the send they describe is even recorded; STOPs arriving
while messages are being sent. Worker and campaign runner run as under ``serve``."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import httpx

from smsbridge.container import Services
from tests.conftest import CredentialFactory
from tests.faults import invariants
from tests.mock_provider import MockProvider, Recorded, Reply

PROFILES = 300
THROTTLE = 60.0  # messages/s: the last ones are due ~5 s after launch
STOPPED_EARLY = range(270, 300)  # opt out at launch: their messages are not due yet
STOPPED_DURING = range(100, 110)  # opt out while the campaign runs: sent or suppressed


def _phone(n: int) -> str:
    return f"+336100{n:05d}"


def _hook(url: str) -> str:
    return url[url.index("/hooks/") :]


async def test_reports_replayed_reordered_early_and_stops_during_a_campaign(
    client: httpx.AsyncClient,
    services: Services,
    mock_provider: MockProvider,
    make_credential: CredentialFactory,
) -> None:
    rng = random.Random(7)
    log = invariants.ProviderLog()
    truth: dict[str, str] = {}  # provider id → the delivery outcome the provider reports
    posting: list[asyncio.Task[Any]] = []
    hooks: dict[str, str] = {}
    parked = [0]  # reports that arrived before their send was recorded

    async def report(provider_id: str, statuses: list[str], pause: float) -> None:
        await asyncio.sleep(pause)
        for status in statuses:
            body = {"id": provider_id, "status": status}
            answer = await client.post(hooks["status"], json=body)
            assert answer.status_code == 200, answer.text
            parked[0] += answer.json()["unknown"]

    async def provider(request: Recorded) -> Reply:
        log.record(request, "ok")
        sent = json.loads(request.body)
        n = int(sent["to"][-5:])
        provider_id = f"p-{sent['ref']}"
        outcome = "undelivered" if n % 4 == 0 else "delivered"
        truth[provider_id] = outcome
        # the same report twice, then a stale contradicting one that must not win
        other = "delivered" if outcome == "undelivered" else "undelivered"
        reports = [outcome, outcome, other]
        if n % 5 == 0:  # reported at once, while our answer is held back: before it is recorded
            posting.append(asyncio.create_task(report(provider_id, reports, 0)))
            return Reply(200, {"id": provider_id}, delay=0.3)
        posting.append(asyncio.create_task(report(provider_id, reports, rng.uniform(0, 0.5))))
        return Reply(200, {"id": provider_id})

    mock_provider.responder = provider
    credential = await make_credential(
        name="webhooks",
        preset="sandbox",
        provider_url=f"{mock_provider.url}/send",
        auth={"type": "none"},
        payload={
            "from": "{{fromNumber}}",
            "to": "{{toNumber}}",
            "text": "{{message}}",
            "ref": "{{messageId}}",
        },
    )
    surface = await client.post(
        "/api/v1/surfaces",
        json={"name": "promo", "credential_id": credential["id"], "sender": "Acme"},
    )
    assert surface.status_code == 201, surface.text
    hooks["status"] = _hook(surface.json()["status_webhook_url"])
    hooks["inbound"] = _hook(surface.json()["inbound_webhook_url"])
    people = "".join(
        json.dumps({"external_id": f"p{n:03d}", "phone": _phone(n), "attributes": {"n": n}}) + "\n"
        for n in range(PROFILES)
    )
    imported = await client.post(
        "/api/v1/profiles/import",
        content=people,
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert imported.status_code == 200 and imported.json()["imported"] == PROFILES
    campaign = await client.post(
        "/api/v1/campaigns",
        json={
            "name": "spring",
            "surface_id": surface.json()["id"],
            "body": "Spring offer {{ profile.n }}",
            "audience": {"all": True},
            "throttle_per_second": THROTTLE,
        },
    )
    assert campaign.status_code == 201, campaign.text
    campaign_id = campaign.json()["id"]

    async def stop(n: int) -> None:
        body = {"from": _phone(n), "to": "Acme", "text": "STOP", "id": f"mo-{n}"}
        answer = await client.post(hooks["inbound"], json=body)
        assert answer.status_code == 200, answer.text

    worker = services.new_worker(concurrency=16)
    runner = services.new_campaign_runner(poll_interval=0.1)
    tasks = [asyncio.create_task(worker.run()), asyncio.create_task(runner.run())]
    try:
        launched = await client.post(f"/api/v1/campaigns/{campaign_id}/launch")
        assert launched.status_code == 202, launched.text
        await asyncio.gather(*(stop(n) for n in STOPPED_EARLY))
        while len(mock_provider.requests) < 100:
            await asyncio.sleep(0.02)
        await asyncio.gather(*(stop(n) for n in STOPPED_DURING))
        for _ in range(600):
            view = (await client.get(f"/api/v1/campaigns/{campaign_id}")).json()
            if view["status"] == "completed":
                break
            await asyncio.sleep(0.05)
        assert view["status"] == "completed", view
        await asyncio.gather(*posting)
        await worker.sweep_early_reports()  # what the worker's heartbeat does periodically
    finally:
        worker.stop()
        runner.stop()
        await asyncio.gather(*tasks)

    summary = await invariants.check(
        services,
        log,
        suppressed_before_claim=[_phone(n) for n in STOPPED_EARLY],
        campaign_id=campaign_id,
    )
    numbers = await invariants.check_campaign_report(services, campaign_id)
    by_provider_id = {}
    for message_id, _to, _status in await invariants.message_rows(services):
        view = await services.messages.get(message_id)
        if view["provider_message_id"]:
            by_provider_id[view["provider_message_id"]] = view
    assert set(by_provider_id) == set(truth)
    for provider_id, outcome in truth.items():
        view = by_provider_id[provider_id]
        assert view["status"] == outcome, (provider_id, view["status"], outcome)
        assert [e["type"] for e in view["events"]].count(outcome) == 1  # replays: one effect
    print(f"\ncampaign under webhook faults: {summary}; report {numbers}; {parked[0]} early")
    assert parked[0] > 0  # the early path was exercised
    stopped_early = {_phone(n) for n in STOPPED_EARLY}
    offers = [json.loads(r.body) for r in mock_provider.requests]
    offers = [o for o in offers if o["text"].startswith("Spring offer")]
    assert not any(o["to"] in stopped_early for o in offers)
    replies = len(truth) - len(offers)  # the opt-out confirmations, sent as transactional SMS
    assert replies == len(STOPPED_EARLY) + len(STOPPED_DURING)
    assert numbers["sent"] == len(offers) and numbers["targeted"] == PROFILES
