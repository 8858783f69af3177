"""Worker processes under faults: one of two SIGKILLed mid-run; PostgreSQL backends terminated
mid-run. Nothing is lost, nothing is sent twice except what the kill left unrecorded."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from smsbridge.config import Settings
from smsbridge.container import Services
from tests.conftest import PG_SERVER
from tests.faults import invariants
from tests.mock_provider import MockProvider, Recorded, Reply
from tests.workers import WorkerProcesses, enqueue, setup_surface, statuses, wait_until_done


def _answer_slowly(log: invariants.ProviderLog, delay: float) -> object:
    def answer(request: Recorded) -> Reply:
        log.record(request, "ok")
        return Reply(200, {"id": "p"}, delay=delay)

    return answer


async def test_sigkill_one_of_two_workers_mid_run(
    services: Services, mock_provider: MockProvider, processes: WorkerProcesses
) -> None:
    log = invariants.ProviderLog()
    mock_provider.responder = _answer_slowly(log, 0.05)  # type: ignore[assignment]
    surface_id = await setup_surface(services, mock_provider, "crash")
    ids = await enqueue(services, surface_id, 10_000)

    victim = await processes.start(concurrency=32)
    await processes.start(concurrency=32)
    while len(mock_provider.requests) < 2_000:
        await asyncio.sleep(0.05)
    victim.kill()
    await victim.wait()
    received = len(mock_provider.requests)
    recorded = (await statuses(services))["sent"]
    started = time.monotonic()
    await wait_until_done(services, 180, processes)
    summary = await invariants.check(services, log, repeat_budget=received - recorded)
    print(
        f"\nSIGKILL at {received} requests ({recorded} recorded): {summary}; "
        f"the survivor finished in {time.monotonic() - started:.1f} s"
    )
    assert summary.statuses == {"sent": 10_000} and summary.messages == len(ids)


async def _terminate_backends(database: str) -> int:
    conn = await asyncpg.connect(PG_SERVER, timeout=5)
    try:
        rows = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
        return sum(1 for r in rows if r[0])
    finally:
        await conn.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_postgresql_backends_terminated_mid_run(
    settings: Settings,
    services: Services,
    mock_provider: MockProvider,
    processes: WorkerProcesses,
) -> None:
    log = invariants.ProviderLog()
    mock_provider.responder = _answer_slowly(log, 0.02)  # type: ignore[assignment]
    surface_id = await setup_surface(services, mock_provider, "cut")
    await enqueue(services, surface_id, 4_000)
    database = settings.database_url.rsplit("/", 1)[1]

    await processes.start(concurrency=32)
    await processes.start(concurrency=32)
    killed = []
    for threshold in (500, 1_500, 2_500):
        while len(mock_provider.requests) < threshold:
            await asyncio.sleep(0.02)
        killed.append(await _terminate_backends(database))
    assert sum(killed) > 0
    await wait_until_done(services, 180, processes)
    summary = await invariants.check(services, log, repeat_budget=0)
    print(f"\n{sum(killed)} backends terminated in 3 rounds {killed}: {summary}")
    assert summary.statuses == {"sent": 4_000}
    for proc in processes.procs:
        assert proc.returncode is None  # both workers survived the cuts
