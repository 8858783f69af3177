"""Adaptive send concurrency against the real loopback mock provider: a provider that
answers 429 past a number of requests at once makes the worker back off, and every message
still ends sent exactly once; a provider that copes lets the limit grow. The limit is
readable on the worker and logged when it moves.

No wall-clock assertion: the tests wait for outcomes, and read counts and limits.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from collections.abc import Awaitable, Callable

import pytest

from smsbridge.config import Settings
from smsbridge.container import Services, build_services
from smsbridge.delivery.worker import Worker
from smsbridge.domain.retry import RetryPolicy
from tests.mock_provider import MockProvider, Recorded, Reply
from tests.workers import enqueue, pending_count, setup_surface, statuses

FAST_RETRIES = RetryPolicy(max_attempts=50, base_delay=0.01, max_delay=0.05)


class AtMostAtOnce:
    """A provider taking ``allowed`` requests at once, each for ``seconds``; past that, 429.
    Counts what it accepted, per message, and the most requests it ever had at once."""

    def __init__(self, allowed: int, seconds: float = 0.05) -> None:
        self.allowed = allowed
        self.seconds = seconds
        self.active = 0
        self.most = 0
        self.accepted: collections.Counter[str] = collections.Counter()
        self.throttled = 0

    async def __call__(self, request: Recorded) -> Reply:
        ref = json.loads(request.body)["ref"]
        self.active += 1
        self.most = max(self.most, self.active)
        try:
            if self.active > self.allowed:
                self.throttled += 1
                return Reply(429, {"error": "too many requests at once"})
            await asyncio.sleep(self.seconds)
            self.accepted[ref] += 1
            return Reply(200, {"id": f"p-{ref}"})
        finally:
            self.active -= 1


async def run_until_done(
    services: Services, worker: Worker, during: Callable[[], Awaitable[None]] | None = None
) -> None:
    task = asyncio.create_task(worker.run())
    deadline = time.monotonic() + 120
    try:
        while await pending_count(services):
            assert time.monotonic() < deadline, f"still pending: {await statuses(services)}"
            if during is not None:
                await during()
            await asyncio.sleep(0.05)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)


async def test_a_provider_throttling_past_n_at_once_makes_the_worker_back_off(
    settings: Settings, mock_provider: MockProvider, caplog: pytest.LogCaptureFixture
) -> None:
    provider = AtMostAtOnce(allowed=6)
    mock_provider.responder = provider  # type: ignore[assignment]
    services = await build_services(settings)
    try:
        surface = await setup_surface(services, mock_provider, "throttling")
        ids = await enqueue(services, surface, 300)
        worker = services.new_worker(concurrency=32, policy=FAST_RETRIES, poll_interval=0.02)
        with caplog.at_level(logging.INFO, logger="smsbridge.worker"):
            await run_until_done(services, worker)
        assert await statuses(services) == {"sent": 300}
    finally:
        await services.close()

    # every message accepted exactly once, whatever the 429s before
    assert provider.accepted == collections.Counter(ids)
    assert provider.throttled > 0
    [limit] = worker.send_concurrency().values()
    print(f"\nthrottled {provider.throttled}, limit at the end {limit} (started at 32)")
    assert limit < 32  # backed off from the starting value
    assert provider.throttled < 300  # and did not keep hammering: fewer 429s than messages
    pushed_back = [r.getMessage() for r in caplog.records if "provider pushed back" in r.message]
    assert pushed_back, "the back-off was not logged"
    assert pushed_back[0].startswith("credential cred_")
    assert "send concurrency 32 → " in pushed_back[0]
    assert "429" in pushed_back[0]


async def test_a_provider_that_copes_lets_the_limit_grow_past_the_start(
    settings: Settings, mock_provider: MockProvider, caplog: pytest.LogCaptureFixture
) -> None:
    provider = AtMostAtOnce(allowed=10_000, seconds=0.1)
    mock_provider.responder = provider  # type: ignore[assignment]
    services = await build_services(settings)
    seen: list[int] = []

    async def note_limits() -> None:
        seen.extend(worker.send_concurrency().values())

    try:
        surface = await setup_surface(services, mock_provider, "coping")
        ids = await enqueue(services, surface, 600)
        worker = services.new_worker(concurrency=8, max_concurrency=64, poll_interval=0.02)
        with caplog.at_level(logging.INFO, logger="smsbridge.worker"):
            await run_until_done(services, worker, note_limits)
        assert await statuses(services) == {"sent": 600}
    finally:
        await services.close()

    assert provider.accepted == collections.Counter(ids)
    assert provider.throttled == 0
    assert max(seen) > 8  # grew while the answers kept coming as fast
    assert max(seen) <= 64  # never past the cap
    assert provider.most <= 64
    grew = [r.getMessage() for r in caplog.records if "send concurrency 8 → " in r.message]
    assert grew, "the growth was not logged"
    assert "latency-bound" in grew[0]
