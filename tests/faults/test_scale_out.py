"""Several API processes and several worker processes on one database, as a scaled-out
deployment runs: a campaign launched through two API processes at once fans out once, an
idempotent send through both creates one message, scheduled messages are released once, and
the provider sees each message exactly once."""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx

from smsbridge.container import Services
from tests.conftest import ADMIN_KEY
from tests.faults import invariants
from tests.mock_provider import MockProvider, Recorded, Reply
from tests.workers import WorkerProcesses, setup_surface, wait_until_done

PROFILES = 1_500
SCHEDULED = 200


async def test_two_api_and_two_worker_processes_share_one_database(
    services: Services, mock_provider: MockProvider, processes: WorkerProcesses
) -> None:
    log = invariants.ProviderLog()

    def answer(request: Recorded) -> Reply:
        log.record(request, "ok")
        return Reply(200, {"id": f"p-{json.loads(request.body)['ref']}"}, delay=0.01)

    mock_provider.responder = answer
    surface_id = await setup_surface(services, mock_provider, "scale")
    for start in range(0, PROFILES, 500):
        await services.profiles.import_stream(
            _chunks(
                "".join(
                    json.dumps({"external_id": f"p{n}", "phone": f"+3361{n:07d}"}) + "\n"
                    for n in range(start, start + 500)
                )
            ),
            "application/x-ndjson",
        )
    api = [await processes.start_server(), await processes.start_server()]
    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(headers=auth, timeout=30) as http:
        created = await http.post(
            f"{api[0]}/api/v1/campaigns",
            json={
                "name": "everyone",
                "surface_id": surface_id,
                "body": "Hello {{ profile.phone }}",
                "audience": {"all": True},
            },
        )
        assert created.status_code == 201, created.text
        campaign_id = created.json()["id"]
        due = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
        sends = [
            http.post(
                f"{api[n % 2]}/api/v1/messages",
                json={
                    "surface_id": surface_id,
                    "to": f"+3362{n:07d}",
                    "body": f"later {n}",
                    "send_at": due,
                },
            )
            for n in range(SCHEDULED)
        ]
        same_key = [
            http.post(
                f"{base}/api/v1/messages",
                json={"surface_id": surface_id, "to": "+33699999999", "body": "once"},
                headers={"Idempotency-Key": "scale-out-1"},
            )
            for base in api
        ]
        launches = [http.post(f"{base}/api/v1/campaigns/{campaign_id}/launch") for base in api]
        answers = await asyncio.gather(*sends, *same_key, *launches)
        assert all(a.status_code in (200, 202) for a in answers), [
            a.text for a in answers if a.status_code not in (200, 202)
        ]
        once = {a.json()["id"] for a in answers[SCHEDULED : SCHEDULED + 2]}
        assert len(once) == 1  # two API processes, one Idempotency-Key: one message

        await processes.start()
        await processes.start()
        for _ in range(1200):
            view = (await http.get(f"{api[1]}/api/v1/campaigns/{campaign_id}")).json()
            if view["status"] == "completed":
                break
            await asyncio.sleep(0.1)
        assert view["status"] == "completed", view
    await wait_until_done(services, 120, processes)

    summary = await invariants.check(services, log)  # repeat budget 0: each sent exactly once
    numbers = await invariants.check_campaign_report(services, campaign_id)
    print(f"\n2 API + 2 worker processes: {summary}; campaign {numbers}")
    assert summary.statuses == {"sent": PROFILES + SCHEDULED + 1}
    assert numbers["targeted"] == numbers["sent"] == PROFILES  # fanned out once
    per_number = collections.Counter(json.loads(r.body)["to"] for r in mock_provider.requests)
    assert max(per_number.values()) == 1 and len(per_number) == PROFILES + SCHEDULED + 1
    later = sorted(r.at for r in mock_provider.requests if b"later" in r.body)
    assert datetime.fromtimestamp(later[0], UTC) >= datetime.fromisoformat(due)  # not early


async def _chunks(text: str) -> AsyncIterator[bytes]:
    yield text.encode()
