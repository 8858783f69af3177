"""A ``smsbridge worker`` killed while it posts events loses none: its leased deliveries are
taken again once the lease ends, and every event reaches the receiver (at least once, each
under one ``webhook-id``)."""

from __future__ import annotations

import asyncio
import json
import time

from sqlalchemy import func, select

from smsbridge.container import Services
from smsbridge.storage.event_tables import event_deliveries
from tests.mock_provider import MockProvider, Reply
from tests.workers import WorkerProcesses, enqueue, setup_surface, wait_until_done


async def _unfinished(services: Services) -> int:
    async with services.db.read() as conn:
        query = (
            select(func.count())
            .select_from(event_deliveries)
            .where(event_deliveries.c.status != "delivered")
        )
        return int((await conn.execute(query)).scalar_one())


async def test_sigkill_mid_delivery_loses_no_event(
    services: Services, mock_provider: MockProvider, processes: WorkerProcesses
) -> None:
    receiver = MockProvider()
    receiver.reply(Reply(200, {"ok": True}, delay=0.05))
    await receiver.start()
    try:
        await services.events.create(
            {"url": f"{receiver.url}/events", "event_types": ["message.queued", "message.sent"]}
        )
        surface_id = await setup_surface(services, mock_provider, "events-crash")
        ids = await enqueue(services, surface_id, 400)
        victim = await processes.start()
        deadline = time.monotonic() + 60
        while len(receiver.requests) < 100:
            assert time.monotonic() < deadline, "no events posted"
            await asyncio.sleep(0.02)
        victim.kill()
        await victim.wait()
        at_kill = len(receiver.requests)
        await processes.start()
        await wait_until_done(services, 120, processes)
        deadline = time.monotonic() + 120
        while await _unfinished(services) or len(receiver.requests) < 2 * len(ids):
            assert time.monotonic() < deadline, f"{await _unfinished(services)} not delivered"
            await asyncio.sleep(0.2)
        got = [json.loads(r.body) for r in receiver.requests]
        pairs = {(p["type"], p["data"]["message_id"]) for p in got}
        expected = {(t, m) for m in ids for t in ("message.queued", "message.sent")}
        assert pairs == expected
        by_id: dict[str, set[tuple[str, str]]] = {}
        for request, p in zip(receiver.requests, got, strict=True):
            by_id.setdefault(str(request.header("webhook-id")), set()).add(
                (p["type"], p["data"]["message_id"])
            )
        assert all(len(v) == 1 for v in by_id.values())  # a repeat keeps its webhook-id
        assert len(by_id) == len(expected)
        print(
            f"\nkilled at {at_kill} events posted; {len(receiver.requests)} posts in all for "
            f"{len(expected)} events ({len(receiver.requests) - len(expected)} repeated)"
        )
    finally:
        await receiver.stop()
