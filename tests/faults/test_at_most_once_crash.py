"""At-most-once across a crash: a worker process running a campaign is SIGKILLed mid-way and
another one finishes it, on the same database.

With ``retry_ambiguous: false`` no number may get the message twice: the sends that were in
flight at the kill (their start marks are what the database holds once the process is dead)
end ``failed`` with the crash reason instead of being sent again, and no other message does.
With the default (at-least-once) every recipient is sent, repeats bounded by those in flight.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from smsbridge.container import Services
from smsbridge.delivery.completions import OUTCOME_UNKNOWN
from smsbridge.storage.tables import messages, outbox
from tests.mock_provider import MockProvider, Recorded, Reply
from tests.workers import WorkerProcesses, setup_surface, statuses, wait_until_done

RECIPIENTS = 4_000


async def _chunks(text: str) -> AsyncIterator[bytes]:
    yield text.encode()


async def _in_flight_marks(services: Services) -> int:
    async with services.db.read() as conn:
        query = select(func.count()).select_from(outbox).where(outbox.c.started_at.is_not(None))
        return int((await conn.execute(query)).scalar_one())


async def _crash_failures(services: Services) -> int:
    async with services.db.read() as conn:
        query = (
            select(func.count())
            .select_from(messages)
            .where(messages.c.status == "failed", messages.c.last_error == OUTCOME_UNKNOWN)
        )
        return int((await conn.execute(query)).scalar_one())


@pytest.mark.parametrize("at_most_once", [True, False], ids=["at-most-once", "at-least-once"])
async def test_sigkill_mid_campaign(
    services: Services,
    mock_provider: MockProvider,
    processes: WorkerProcesses,
    at_most_once: bool,
) -> None:
    per_number: collections.Counter[str] = collections.Counter()

    def answer(request: Recorded) -> Reply:
        per_number[json.loads(request.body)["to"]] += 1
        return Reply(200, {"id": "p"}, delay=0.02)

    mock_provider.responder = answer
    surface_id = await setup_surface(
        services, mock_provider, "crash", retry_ambiguous=not at_most_once
    )
    people = "".join(
        json.dumps({"external_id": f"p{n}", "phone": f"+3361{n:07d}"}) + "\n"
        for n in range(RECIPIENTS)
    )
    imported = await services.profiles.import_stream(_chunks(people), "application/x-ndjson")
    assert imported.imported == RECIPIENTS
    campaign = await services.campaigns.create(
        {"name": "c", "surface_id": surface_id, "body": "Hi", "audience": {"all": True}}
    )
    await services.campaigns.launch(campaign["id"])

    victim = await processes.start(concurrency=64)
    while sum(per_number.values()) < RECIPIENTS // 3:
        assert victim.returncode is None
        await asyncio.sleep(0.01)
    victim.kill()
    await victim.wait()
    in_flight = await _in_flight_marks(services)  # the dead worker's unrecorded attempts
    received = sum(per_number.values())
    recorded = (await statuses(services))["sent"]

    await processes.start(concurrency=64)
    await wait_until_done(services, 180, processes)
    final = await statuses(services)
    twice = {number: n for number, n in per_number.items() if n > 1}
    crashed = await _crash_failures(services)
    print(
        f"\n{'at-most-once' if at_most_once else 'at-least-once'}: killed at {received} "
        f"requests ({recorded} recorded, {in_flight} marked in flight); "
        f"final {dict(final)}; {len(twice)} numbers got two requests; {crashed} crash-failed"
    )
    assert sum(final.values()) == RECIPIENTS
    if at_most_once:
        assert twice == {}
        assert crashed <= in_flight
        assert final["sent"] + crashed == RECIPIENTS  # sent, or ended with the crash reason
        assert set(final) <= {"sent", "failed"}
        report = await services.reports.campaign(campaign["id"])
        assert report["errors"] == crashed
        assert report["error_reasons"] == ({OUTCOME_UNKNOWN: crashed} if crashed else {})
    else:
        assert in_flight == 0  # at-least-once sends write no marks
        assert final == {"sent": RECIPIENTS}
        assert len(twice) <= received - recorded
