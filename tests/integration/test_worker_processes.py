"""Real worker processes sharing one database: a crash loses nothing, two never collide.

Runs on SQLite (one file) and PostgreSQL. The provider is a loopback mock in this process.
"""

from __future__ import annotations

import asyncio
import json
import time

from smsbridge.container import Services
from tests.mock_provider import MockProvider, Reply
from tests.workers import (
    WorkerProcesses,
    enqueue,
    processes,
    requests_per_message,
    setup_surface,
    statuses,
    wait_until_done,
)

__all__ = ["processes"]  # the fixture


async def test_sigkill_mid_batch_loses_nothing(
    services: Services, mock_provider: MockProvider, processes: WorkerProcesses
) -> None:
    mock_provider.reply(Reply(200, {"id": "p"}, delay=0.3))
    surface_id = await setup_surface(services, mock_provider, "slow")
    ids = await enqueue(services, surface_id, 400)

    victim = await processes.start(concurrency=20)
    while len(mock_provider.requests) < 60:
        await asyncio.sleep(0.02)
    victim.kill()
    await victim.wait()
    killed_at = time.time()
    received_before_kill = len(mock_provider.requests)
    recorded = (await statuses(services))["sent"]
    print(f"\nat kill: {received_before_kill} requests, {recorded} recorded sent")

    await processes.start(concurrency=20)
    await wait_until_done(services, 90, processes)

    counts = requests_per_message(mock_provider)
    duplicated = {ref: n for ref, n in counts.items() if n > 1}
    unrecorded = received_before_kill - recorded
    print(
        f"\nSIGKILL after {received_before_kill} provider requests, {recorded} recorded: "
        f"{len(duplicated)} message(s) sent twice (in flight at the kill: {unrecorded})"
    )
    assert await statuses(services) == {"sent": 400}
    assert set(counts) == set(ids)  # every message reached the provider
    assert all(n <= 2 for n in counts.values())
    # only sends the killed worker had not recorded can be repeated
    assert len(duplicated) <= unrecorded
    first_seen = {}
    for request in mock_provider.requests:
        first_seen.setdefault(json.loads(request.body)["ref"], request.at)
    assert all(first_seen[ref] <= killed_at for ref in duplicated)


async def test_two_workers_share_the_work_and_the_rate_limit(
    services: Services, mock_provider: MockProvider, processes: WorkerProcesses
) -> None:
    fast = await setup_surface(services, mock_provider, "fast")
    limited = await setup_surface(services, mock_provider, "limited", rate_limit_per_second=50)
    fast_ids = await enqueue(services, fast, 2000)
    limited_ids = await enqueue(services, limited, 150)

    await processes.start()
    await processes.start()
    await wait_until_done(services, 120, processes)

    counts = requests_per_message(mock_provider)
    assert set(counts) == set(fast_ids) | set(limited_ids)
    assert max(counts.values()) == 1  # no message sent twice
    assert await statuses(services) == {"sent": 2150}

    times = sorted(r.at for r in mock_provider.requests if r.path == "/limited")
    worst = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    # The sustained rate as the least-squares slope of arrival time against position: the
    # first and last arrivals alone (their span) let one late start on a loaded machine read
    # as a faster rate (149 requests over 2.92 s instead of 2.98 s: "51.1/s").
    mean_i, mean_t = (len(times) - 1) / 2, sum(times) / len(times)
    spacing = sum((i - mean_i) * (t - mean_t) for i, t in enumerate(times)) / sum(
        (i - mean_i) ** 2 for i in range(len(times))
    )
    average = 1 / spacing
    print(
        f"\nrate-limited credential: {average:.1f} requests/s sustained, "
        f"max {worst} in any 1 s window (limit 50)"
    )
    # GCRA slots are 20 ms apart; measured on *arrival* times at the provider, scheduling
    # jitter on a loaded 2-core machine can squeeze a few extra requests into one 1 s window.
    # A per-process limit would let two workers reach ~100 per window; the shared one cannot.
    assert worst <= 55
    assert average <= 50 * 1.02
