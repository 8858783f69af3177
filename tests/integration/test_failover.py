"""Failover to a surface's fallback credentials and the per-credential circuit breaker, with
two loopback providers: the primary fails in scripted ways, the fallback is healthy.

The clock is injected: retry delays and breaker cool-downs pass by moving it.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from smsbridge.config import Settings
from smsbridge.container import Services, build_services
from smsbridge.delivery.worker import Worker
from smsbridge.domain.breaker import BreakerState
from smsbridge.domain.retry import RetryPolicy
from smsbridge.services.messages import SendRequest
from smsbridge.storage.tables import outbox
from tests.clock import FakeClock
from tests.mock_provider import MockProvider, Recorded, Reply, credential_document

TO = "+33612345678"
DOWN = Reply(503, {"error": "unavailable"})


@dataclass
class Route:
    services: Services
    clock: FakeClock
    primary: MockProvider
    fallback: MockProvider
    primary_id: str
    fallback_id: str
    surface_id: str
    """Primary, then the fallback."""
    solo_surface_id: str
    """The primary alone, no fallback."""

    async def credential(self, name: str, url: str) -> str:
        created = await self.services.credentials.create(
            credential_document(name, url, token=f"tok-{name}-778899", timeout_seconds=0.5)
        )
        return created.id

    def worker(
        self, *, max_attempts: int = 3, threshold: int = 5, cooldown: float = 30.0
    ) -> Worker:
        return self.services.new_worker(
            policy=RetryPolicy(max_attempts=max_attempts, base_delay=1.0, max_delay=4.0),
            rng=random.Random(3),
            breaker_threshold=threshold,
            breaker_cooldown=timedelta(seconds=cooldown),
        )

    async def send(self, body: str = "Hello", surface_id: str | None = None) -> str:
        request = SendRequest(surface_id=surface_id or self.surface_id, to=TO, body=body)
        _, view = await self.services.messages.send(request)
        return str(view["id"])

    async def message(self, message_id: str) -> dict[str, Any]:
        return await self.services.messages.get(message_id)

    async def report(self) -> dict[str, Any]:
        """The surface report over every message so far."""
        return await self.services.reports.surface(
            self.surface_id,
            start=self.clock.now - timedelta(days=1),
            end=self.clock.now + timedelta(minutes=1),
        )

    async def settle(self, worker: Worker, *, step: float = 5.0, rounds: int = 20) -> None:
        """Drain, then move past any retry delay, until nothing is pending (a step shorter
        than the breaker's cool-down keeps an open breaker open for a few rounds)."""
        for _ in range(rounds):
            await worker.drain()
            async with self.services.db.read() as conn:
                pending = (await conn.execute(select(func.count()).select_from(outbox))).scalar()
            if not pending:
                return
            self.clock.advance(step)
        raise AssertionError("messages still pending")


@pytest.fixture
async def route(settings: Settings, mock_provider: MockProvider) -> AsyncIterator[Route]:
    fallback = MockProvider()
    await fallback.start()
    fallback.responder = lambda r: Reply(200, {"id": f"fb-{_ref(r)}"})
    mock_provider.responder = lambda r: Reply(200, {"id": f"pr-{_ref(r)}"})
    clock = FakeClock()
    services = await build_services(settings, clock=clock)
    try:
        route = Route(services, clock, mock_provider, fallback, "", "", "", "")
        route.primary_id = await route.credential("primary", f"{mock_provider.url}/send")
        route.fallback_id = await route.credential("backup", f"{fallback.url}/send")
        surface = await services.surfaces.create(
            {
                "name": "main",
                "credential_id": route.primary_id,
                "fallback_credential_ids": [route.fallback_id],
                "sender": "+15550001111",
            }
        )
        solo = await services.surfaces.create(
            {"name": "solo", "credential_id": route.primary_id, "sender": "+15550001111"}
        )
        route.surface_id, route.solo_surface_id = surface.id, solo.id
        yield route
    finally:
        await services.close()
        await fallback.stop()


def _ref(request: Recorded) -> str:
    return str(json.loads(request.body)["ref"])


def _attempts(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["detail"] for e in view["events"] if e["type"] == "attempt"]


def _refs(provider: MockProvider) -> list[str]:
    return [_ref(r) for r in provider.requests]


async def test_the_fallback_sends_once_the_primary_budget_is_spent(route: Route) -> None:
    route.primary.reply(DOWN)
    message_id = await route.send()
    await route.settle(route.worker(max_attempts=3))

    view = await route.message(message_id)
    assert view["status"] == "sent"
    assert view["provider_message_id"] == f"fb-{message_id}"
    assert view["credential_id"] == route.fallback_id
    assert view["attempts"] == 4
    assert _refs(route.primary) == [message_id] * 3
    assert _refs(route.fallback) == [message_id]
    attempts = _attempts(view)
    assert [a["credential_id"] for a in attempts] == [route.primary_id] * 3 + [route.fallback_id]
    assert [a.get("status_code") for a in attempts] == [503, 503, 503, 200]
    assert attempts[-1]["failover"] == "budget_spent"
    handover = [e["detail"] for e in view["events"] if e["type"] == "retry_scheduled"][-1]
    assert handover["failover_to"] == route.fallback_id
    assert handover["delay"] == 0.0  # the fallback is tried at once

    report = await route.report()
    assert report["by_credential"] == {route.fallback_id: {"sent": 1, "failed": 0}}


async def test_the_message_fails_when_every_budget_is_spent(route: Route) -> None:
    route.primary.reply(DOWN)
    route.fallback.reply(Reply(502, {}))
    message_id = await route.send()
    await route.settle(route.worker(max_attempts=2))

    view = await route.message(message_id)
    assert view["status"] == "failed"
    assert view["attempts"] == 4
    assert view["last_error"] == (
        "provider error (502) (gave up after 4 attempts through 2 credentials)"
    )
    assert [a["credential_id"] for a in _attempts(view)] == [route.primary_id] * 2 + [
        route.fallback_id
    ] * 2
    report = await route.report()
    assert report["by_credential"] == {route.fallback_id: {"sent": 0, "failed": 1}}


async def test_fallbacks_are_tried_in_their_order(route: Route) -> None:
    # primary → second (on the fallback provider, also failing) → backup
    second = await route.credential("second", f"{route.fallback.url}/second")
    await route.services.surfaces.update(
        route.surface_id, {"fallback_credential_ids": [second, route.fallback_id]}
    )
    route.primary.reply(DOWN)
    route.fallback.responder = lambda r: (
        Reply(500, {}) if r.path == "/second" else Reply(200, {"id": "third-time"})
    )
    message_id = await route.send()
    await route.settle(route.worker(max_attempts=2))

    view = await route.message(message_id)
    assert view["status"] == "sent"
    assert view["credential_id"] == route.fallback_id
    assert [a["credential_id"] for a in _attempts(view)] == [
        route.primary_id,
        route.primary_id,
        second,
        second,
        route.fallback_id,
    ]
    assert [r.path for r in route.fallback.requests] == ["/second", "/second", "/send"]


async def test_an_open_breaker_sends_straight_to_the_fallback_then_half_opens(
    route: Route,
) -> None:
    worker = route.worker(max_attempts=5, threshold=3, cooldown=30)
    route.primary.reply(DOWN)
    first = [await route.send(f"first {n}") for n in range(3)]
    await worker.drain()  # three 503s in a row: the primary's breaker opens
    assert len(route.primary.requests) == 3
    assert worker.breakers.state(route.primary_id) is BreakerState.OPEN
    assert [(await route.message(m))["status"] for m in first] == ["queued"] * 3

    # While it is open, new messages and the retries skip the primary altogether.
    later = [await route.send(f"later {n}") for n in range(4)]
    await route.settle(worker, step=5.0)
    assert len(route.primary.requests) == 3
    assert sorted(_refs(route.fallback)) == sorted(first + later)
    for message_id in first + later:
        view = await route.message(message_id)
        assert view["status"] == "sent"
        assert view["credential_id"] == route.fallback_id
        assert _attempts(view)[-1]["failover"] == "circuit_open"
        assert _attempts(view)[-1]["credential_id"] == route.fallback_id

    # After the cool-down, exactly one probe goes to the (recovered) primary...
    route.clock.advance(30)
    route.primary.reply(Reply(200, {"id": "primary-back"}))
    probing = [await route.send(f"probe {n}") for n in range(3)]
    await worker.drain()
    assert len(route.primary.requests) == 4
    [probe] = [m for m in probing if (await route.message(m))["credential_id"] == route.primary_id]
    assert _refs(route.primary)[-1] == probe
    assert worker.breakers.state(route.primary_id) is BreakerState.CLOSED
    # ...and, as it succeeded, traffic returns to the primary.
    back = [await route.send(f"back {n}") for n in range(2)]
    await worker.drain()
    assert len(route.primary.requests) == 6
    assert sorted(_refs(route.primary)[-2:]) == sorted(back)
    for message_id in back:
        view = await route.message(message_id)
        assert view["credential_id"] == route.primary_id
        assert "failover" not in _attempts(view)[-1]

    report = await route.report()
    assert report["by_credential"] == {
        route.primary_id: {"sent": 3, "failed": 0},
        route.fallback_id: {"sent": 3 + 4 + 2, "failed": 0},
    }


async def test_a_failed_probe_keeps_traffic_on_the_fallback(route: Route) -> None:
    worker = route.worker(max_attempts=5, threshold=2, cooldown=30)
    route.primary.reply(DOWN)
    for n in range(2):
        await route.send(f"opening {n}")
    await worker.drain()
    assert worker.breakers.state(route.primary_id) is BreakerState.OPEN
    await route.settle(worker, step=5.0)  # their retries go to the fallback
    assert len(route.primary.requests) == 2

    route.clock.advance(30)
    probe = await route.send("probe")
    await worker.drain()  # the probe fails: open again, for another cool-down
    assert len(route.primary.requests) == 3
    assert worker.breakers.state(route.primary_id) is BreakerState.OPEN
    others = [await route.send(f"after {n}") for n in range(3)]
    await route.settle(worker, step=5.0)
    assert len(route.primary.requests) == 3
    for message_id in [probe, *others]:
        view = await route.message(message_id)
        assert view["status"] == "sent"
        assert view["credential_id"] == route.fallback_id


@pytest.mark.parametrize("status", [400, 401])
async def test_a_permanent_refusal_does_not_fail_over(route: Route, status: int) -> None:
    route.primary.reply(Reply(status, {"error": "invalid destination"}))
    message_id = await route.send()
    worker = route.worker(max_attempts=3, threshold=1)
    await route.settle(worker)

    view = await route.message(message_id)
    assert view["status"] == "failed"
    assert view["attempts"] == 1
    assert view["credential_id"] == route.primary_id
    assert route.fallback.requests == []
    # the provider answered: its breaker stays closed, later messages still go to it
    assert worker.breakers.state(route.primary_id) is BreakerState.CLOSED
    report = await route.report()
    assert report["by_credential"] == {route.primary_id: {"sent": 0, "failed": 1}}


async def test_without_a_fallback_nothing_changes(route: Route) -> None:
    route.primary.reply(DOWN)
    worker = route.worker(max_attempts=3, threshold=2)
    ids = [await route.send(f"solo {n}", surface_id=route.solo_surface_id) for n in range(3)]
    await route.settle(worker, step=5.0)

    # the breaker opened, but with nowhere else to go every attempt still reached the primary
    assert worker.breakers.state(route.primary_id) is BreakerState.OPEN
    assert route.fallback.requests == []
    assert len(route.primary.requests) == 9
    for message_id in ids:
        view = await route.message(message_id)
        assert view["status"] == "failed"
        assert view["attempts"] == 3
        assert view["last_error"] == "provider error (503) (gave up after 3 attempts)"
        assert {a["credential_id"] for a in _attempts(view)} == {route.primary_id}
        assert all("failover" not in a for a in _attempts(view))
