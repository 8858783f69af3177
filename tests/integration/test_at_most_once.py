"""Start marks of at-most-once sends, with an injected clock (the crash itself is simulated by
abandoning a worker; tests/faults/test_at_most_once_crash.py kills a real process)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from smsbridge.config import Settings
from smsbridge.container import Services, build_services
from smsbridge.delivery.completions import OUTCOME_UNKNOWN
from smsbridge.delivery.worker import Worker
from smsbridge.services.messages import SendRequest
from tests.clock import FakeClock
from tests.mock_provider import MockProvider, Reply, credential_document, scripted


@dataclass
class World:
    services: Services
    clock: FakeClock
    provider: MockProvider
    surface_id: str
    at_most_once: bool

    def worker(self) -> Worker:
        return self.services.new_worker(rng=random.Random(3), lease=timedelta(seconds=60))

    async def enqueue(self, count: int) -> list[str]:
        return await self.services.messages.enqueue_many(
            [SendRequest(self.surface_id, f"+3361{n:07d}", f"m{n}") for n in range(count)]
        )


@pytest.fixture(params=[False, True], ids=["at-most-once", "at-least-once"])
async def world(
    request: pytest.FixtureRequest, settings: Settings, mock_provider: MockProvider
) -> AsyncIterator[World]:
    clock = FakeClock()
    services = await build_services(settings, clock=clock)
    credential = await services.credentials.create(
        credential_document(
            "amo",
            f"{mock_provider.url}/send",
            token="tok-amo-123456",
            retry_ambiguous=request.param,
        )
    )
    surface = await services.surfaces.create(
        {"name": "amo", "credential_id": credential.id, "sender": "Acme"}
    )
    try:
        yield World(services, clock, mock_provider, surface.id, not request.param)
    finally:
        await services.close()


async def test_only_at_most_once_sends_are_marked(world: World) -> None:
    world.provider.reply(Reply(200, {"id": "p"}))
    await world.enqueue(50)
    worker = world.worker()
    await worker.drain()
    assert len(world.provider.requests) == 50
    if world.at_most_once:
        assert worker.start_marks.marked == 50
        assert 1 <= worker.start_marks.writes < 50  # grouped: never one write per send
    else:
        assert (worker.start_marks.marked, worker.start_marks.writes) == (0, 0)


async def test_an_attempt_started_by_a_dead_worker_is_not_sent_again(world: World) -> None:
    world.provider.reply(Reply(200, {"id": "p"}))
    ids = await world.enqueue(5)
    dead = world.worker()
    assert await dead.claim(10) == 5
    claimed = {m: dead._in_hand[m] for m in ids}
    # Three requests were about to leave when the worker died; two were never started.
    for message_id in ids[:3]:
        assert await dead.start_marks.mark(message_id, claimed[message_id])

    world.clock.advance(61)  # the dead worker's lease expires
    await world.worker().drain()
    views = {m: await world.services.messages.get(m) for m in ids}
    for message_id in ids[:3]:  # a mark means an at-most-once attempt started: never again
        view = views[message_id]
        assert view["status"] == "failed"
        assert view["last_error"] == OUTCOME_UNKNOWN
        assert view["attempts"] == 1
        [event] = [e for e in view["events"] if e["type"] == "outcome_unknown"]
        assert event["detail"]["worker"] == dead.name
        assert event["detail"]["started_at"]
    assert [views[m]["status"] for m in ids[3:]] == ["sent", "sent"]
    assert len(world.provider.requests) == 2


async def test_a_retried_attempt_clears_its_mark_and_is_sent_normally(world: World) -> None:
    world.provider.responder = scripted(Reply(500, {"error": "busy"}), Reply(200, {"id": "p2"}))
    [message_id] = await world.enqueue(1)
    worker = world.worker()
    await worker.drain()
    view = await world.services.messages.get(message_id)
    assert view["status"] == "queued"
    delay = [e for e in view["events"] if e["type"] == "retry_scheduled"][-1]["detail"]["delay"]
    world.clock.advance(delay + 0.01)
    await worker.drain()
    view = await world.services.messages.get(message_id)
    assert view["status"] == "sent", view
    assert view["attempts"] == 2
    assert len(world.provider.requests) == 2


async def test_a_lost_lease_is_not_marked_and_nothing_is_sent(world: World) -> None:
    world.provider.reply(Reply(200, {"id": "p"}))
    [message_id] = await world.enqueue(1)
    slow = world.worker()
    await slow.claim(1)
    old_token = slow._in_hand[message_id]
    world.clock.advance(61)
    other = world.worker()
    await other.claim(1)  # takes the expired lease over
    assert not await slow.start_marks.mark(message_id, old_token)
    assert await other.start_marks.mark(message_id, other._in_hand[message_id])
