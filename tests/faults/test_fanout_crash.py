"""A campaign's fan-out survives a ``kill -9`` of the server running it, on SQLite and on
PostgreSQL (where its batches are written through ``COPY``).

Each batch is one transaction that first moves the campaign's cursor by compare-and-set, so a
server killed mid-fan-out leaves whole batches (their messages, outbox entries and exclusions
with the cursor) or nothing of a batch; the next server resumes after the last committed
one. Checked on the database the dead and the restarted server left: every profile got
exactly one message or one exclusion with its reason, no number twice, every message its
outbox entry, and the campaign's counters agree with the rows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import func, insert, select

from smsbridge.container import Services
from smsbridge.storage.tables import campaign_exclusions, campaigns, messages, outbox, suppressions
from tests.mock_provider import MockProvider
from tests.workers import WorkerProcesses, setup_surface

PROFILES = 60_000
SHARED = 40
"""Profiles that reuse an earlier profile's number (excluded as duplicates)."""
OPTED_OUT = 25


def _phone(n: int) -> str:
    return f"+3362{n:07d}"


async def _lines() -> AsyncIterator[bytes]:
    for start in range(0, PROFILES, 5_000):
        yield b"".join(
            orjson.dumps(
                {
                    "external_id": f"c{n:06d}",
                    # the last SHARED profiles reuse the numbers of the first ones
                    "phone": _phone(n - (PROFILES - SHARED) if n >= PROFILES - SHARED else n),
                    "attributes": {"firstName": f"N{n}"},
                }
            )
            + b"\n"
            for n in range(start, min(PROFILES, start + 5_000))
        )


async def _campaign_row(services: Services, campaign_id: str) -> tuple[int, int, bool]:
    async with services.db.read() as conn:
        row = (
            await conn.execute(
                select(campaigns.c.targeted, campaigns.c.excluded, campaigns.c.fanout_done).where(
                    campaigns.c.id == campaign_id
                )
            )
        ).one()
    return int(row[0]), int(row[1]), bool(row[2])


async def _wait(services: Services, campaign_id: str, done: bool, at_least: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        targeted, _, finished = await _campaign_row(services, campaign_id)
        if finished if done else targeted >= at_least:
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"fan-out not {'done' if done else 'started'}: {targeted} targeted")


async def test_a_server_killed_mid_fanout_leaves_whole_batches_and_the_next_one_finishes(
    services: Services, mock_provider: MockProvider, processes: WorkerProcesses
) -> None:
    result = await services.profiles.import_stream(_lines(), "application/x-ndjson")
    assert result.imported == PROFILES, result.errors[:3]
    async with services.db.transaction() as conn:
        await conn.execute(
            insert(suppressions),
            [
                {
                    "sender": "Acme",
                    "phone": _phone(n),
                    "source": "keyword",
                    "keyword": "STOP",
                    "created_at": services.clock(),
                }
                for n in range(1_000, 1_000 + OPTED_OUT)
            ],
        )
    surface_id = await setup_surface(services, mock_provider, "crash")
    await services.surfaces.update(surface_id, {"message_type": "marketing"})
    campaign = await services.campaigns.create(
        {
            "name": "crash",
            "surface_id": surface_id,
            "body": "Hi {{ profile.firstName }}, spring sale",
            "audience": {"all": True},
            # tomorrow: nothing is sent, the servers only fan out
            "send_at": datetime.now(UTC) + timedelta(days=1),
        }
    )
    await services.campaigns.launch(campaign["id"])

    await processes.start_server(with_worker=True)
    server = processes.procs[-1]
    await _wait(services, campaign["id"], done=False, at_least=5_000)
    server.kill()  # SIGKILL, mid-fan-out
    await server.wait()
    targeted_at_kill, _, done_at_kill = await _campaign_row(services, campaign["id"])
    assert not done_at_kill, "the kill landed after the fan-out: nothing was tested"

    await processes.start_server(with_worker=True)
    await _wait(services, campaign["id"], done=True, at_least=0)
    targeted, excluded, _ = await _campaign_row(services, campaign["id"])

    async with services.db.read() as conn:
        sent_to = (
            await conn.execute(
                select(messages.c.profile_id, messages.c.to_number).where(
                    messages.c.campaign_id == campaign["id"]
                )
            )
        ).all()
        reasons = dict(
            (
                await conn.execute(
                    select(campaign_exclusions.c.profile_id, campaign_exclusions.c.reason).where(
                        campaign_exclusions.c.campaign_id == campaign["id"]
                    )
                )
            ).all()
        )
        entries = (
            await conn.execute(
                select(func.count())
                .select_from(outbox.join(messages, messages.c.id == outbox.c.message_id))
                .where(messages.c.campaign_id == campaign["id"])
            )
        ).scalar_one()

    numbers = [number for _, number in sent_to]
    assert len(numbers) == len(set(numbers)), "a number got two messages of the campaign"
    profiles_sent = {profile for profile, _ in sent_to}
    assert len(profiles_sent) == len(sent_to)
    assert profiles_sent.isdisjoint(reasons)
    assert profiles_sent | set(reasons) == {f"c{n:06d}" for n in range(PROFILES)}
    assert sorted(reasons.values()) == sorted(["duplicate"] * SHARED + ["opted_out"] * OPTED_OUT)
    assert entries == len(sent_to) == targeted == PROFILES - SHARED - OPTED_OUT
    assert excluded == len(reasons)
    assert targeted_at_kill < targeted
