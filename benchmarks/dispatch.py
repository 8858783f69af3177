"""Dispatch throughput: smsbridge end to end against the raw aiohttp ceiling, same run.

    python benchmarks/dispatch.py [--messages 20000] [--concurrency 64] [--pg URL]
                                  [--pg-workers 1,2,4] [--pg-repeat 1] [--no-sqlite | --no-pg]
                                  [--provider-latency 0.2] [--provider-limit 500]
                                  [--no-start-marks | --only-start-marks]
                                  [--event-endpoints 2]

1. Starts ``fast_provider.py`` in a separate process (a raw asyncio HTTP server), answering at
   once or, with ``--provider-latency``, after a fixed delay as real providers do; with
   ``--provider-limit N``, answering 429 to what goes past N accepted requests a second.
2. Measures the ceiling: plain aiohttp POSTs of the same payload at the same concurrency.
   Each worker's send concurrency adapts (``smsbridge.delivery.adaptive``); every run
   reports the value it settled on (in-process: the median of its limit sampled over the
   run's second half; worker processes: the limit at the end, from their log). With a
   provider latency, the ceiling of each run is measured right after it **at the
   concurrency it settled on** (``--concurrency`` is then only the starting value); with a
   provider limit, the run is compared with that limit, and its 429s and retries counted.
3. Measures smsbridge: N messages enqueued through the service layer (timed apart), all
   falling due at one instant; then workers run until every message is ``sent``. Runs on
   SQLite with one worker, and on PostgreSQL with 1, 2 and 4 ``smsbridge worker`` processes
   when PostgreSQL is reachable (``--pg``, default
   ``postgresql://postgres@127.0.0.1:5432/postgres``; a fresh throw-away database per run).
4. Checks every run sent each message exactly once, two independent ways: the provider's
   counts (``/stats``, read before and after the run) must show N requests accepted, the
   provider ids recorded must be N distinct ones, and the database must hold one
   ``attempt`` event per request the provider answered (one per message without 429s).
5. Samples CPU time (``/proc``) over each run: the workers, PostgreSQL, the provider, and
   what the whole machine spent (other load on a shared machine shows up there).

6. The cost of at-most-once: the in-process run again with ``retry_ambiguous: false``, whose
   sends are each marked durably before they leave (grouped statements), against the same run
   without, alternating (``--no-start-marks`` skips it, ``--only-start-marks`` runs only it).

7. With ``--event-endpoints N`` (only this comparison runs): the in-process run with N event
   endpoints subscribed to everything (``*``), posting to a loopback receiver (a second
   ``fast_provider.py``), against the same run without endpoints, alternating; the event
   dispatcher runs beside the worker in both. Reports the dispatch rate's ratio (target
   ≥ 80 %), the events posted during the run and how long the rest took after it.

Prints messages/s, the ratio to the ceiling and, on PostgreSQL, to one worker. Targets:
SQLite, one worker ≥ 50 % of the ceiling; PostgreSQL, two workers ≥ 1.5x one worker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
import orjson
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import func, select

from smsbridge import process_tuning
from smsbridge.config import Settings
from smsbridge.container import Services, build_services
from smsbridge.services.messages import SendRequest
from smsbridge.storage.migrate import upgrade_async
from smsbridge.storage.tables import message_events, messages, outbox

HERE = Path(__file__).parent
BODY = "Hello Ana, your order 12345 has shipped. Track it: https://acme.example/t/abc"
PAYLOAD = orjson.dumps({"to": "+33612345678", "from": "Acme", "text": BODY, "ref": "x" * 30})
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer bench-token-123"}
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_provider(latency: float = 0.0, limit: int = 0) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(HERE / "fast_provider.py"), str(port), str(latency), str(limit)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError("fast provider did not start")
    return process, f"http://127.0.0.1:{port}/sms"


async def raw_ceiling(url: str, count: int, concurrency: int) -> float:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        queue = iter(range(count))

        async def one() -> None:
            for _ in queue:
                async with session.post(url, data=PAYLOAD, headers=HEADERS) as response:
                    await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(concurrency)))
        return count / (time.perf_counter() - started)


async def provider_counts(url: str) -> tuple[int, int]:
    """How many requests the provider has accepted and throttled (429) so far, across every
    client; two probes bracket a run."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(url.rsplit("/", 1)[0] + "/stats") as response,
    ):
        answer = orjson.loads(await response.read())
    return int(answer["accepted"]), int(answer["throttled"])


# --- CPU accounting (Linux /proc; silently empty elsewhere) ---------------------------------


def _process_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def _postgres_pids(database: str | None) -> list[int]:
    """PostgreSQL's background processes, and the backends serving ``database`` (others'
    backends on a shared server are left out; their titles name their own database)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if not (entry / "comm").read_text().startswith("postgres"):
                    continue
                title = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            client = "(" in title or "[local]" in title
            if not client or (database is not None and database in title):
                pids.append(int(entry.name))
    return pids


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0, 0
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


@dataclass(frozen=True)
class CpuSample:
    workers: int
    postgres: int
    provider: int
    bench: int
    busy: int
    total: int

    @classmethod
    def take(cls, workers: list[int], provider: int, database: str | None = None) -> CpuSample:
        # PostgreSQL backends come and go: summing the live ones at both ends undercounts
        # a backend that exited in between, never overcounts.
        busy, total = _machine_ticks()
        return cls(
            workers=sum(_process_ticks(pid) for pid in workers),
            postgres=sum(_process_ticks(pid) for pid in _postgres_pids(database)),
            provider=_process_ticks(provider),
            bench=_process_ticks(os.getpid()),
            busy=busy,
            total=total,
        )


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds spent during one run, and the machine's busy share of all its CPUs."""

    workers: float
    postgres: float
    provider: float
    bench: float
    machine_busy: float
    other: float

    @classmethod
    def between(cls, start: CpuSample, end: CpuSample) -> CpuUse:
        def seconds(a: int, b: int) -> float:
            return max(0, b - a) / TICKS

        workers = seconds(start.workers, end.workers)
        postgres = seconds(start.postgres, end.postgres)
        provider = seconds(start.provider, end.provider)
        bench = seconds(start.bench, end.bench)
        busy = seconds(start.busy, end.busy)
        total = seconds(start.total, end.total)
        return cls(
            workers,
            postgres,
            provider,
            bench,
            busy / total if total else 0.0,
            max(0.0, busy - workers - postgres - provider - bench),
        )

    def describe(self, elapsed: float) -> str:
        def cores(value: float) -> str:
            return f"{value / elapsed:.2f}"

        return (
            f"CPU cores used: workers {cores(self.workers)}, PostgreSQL {cores(self.postgres)}, "
            f"provider {cores(self.provider)}, this script {cores(self.bench)}, other "
            f"{cores(self.other)}; machine busy {self.machine_busy:.0%}"
        )


# --- one run -------------------------------------------------------------------------------


def settings_for(database_url: str, state: Path) -> Settings:
    return Settings(
        database_url=database_url,
        admin_key=SecretStr("bench-admin-key"),
        secret_keys=SecretStr(Fernet.generate_key().decode()),
        allow_private_provider_urls=True,
        state_dir=state,
        log_level="WARNING",
    )


async def prepare(
    services: Services, url: str, count: int, due_in: float, *, at_most_once: bool = False
) -> tuple[float, datetime]:
    """Create credential + surface, enqueue ``count`` messages due together; returns enqueue/s.
    ``at_most_once``: the credential has ``retry_ambiguous: false`` (start marks written)."""
    credential = await services.credentials.create(
        {
            "retry_ambiguous": not at_most_once,
            "name": "bench",
            "provider_url": url,
            "auth": {"type": "bearer", "token": "bench-token-123"},
            "payload": {
                "to": "{{toNumber}}",
                "from": "{{fromNumber}}",
                "text": "{{message}}",
                "ref": "{{messageId}}",
            },
            "response": {"message_id_path": "$.id"},
        }
    )
    surface = await services.surfaces.create(
        {"name": "bench", "credential_id": credential.id, "sender": "Acme"}
    )
    # Far enough ahead that enqueueing finishes first; then rewritten to one due instant.
    send_at = datetime.now(UTC) + timedelta(hours=1)
    started = time.perf_counter()
    for start in range(0, count, 1000):
        batch = [
            SendRequest(surface.id, f"+3361{n:07d}", BODY, send_at=send_at)
            for n in range(start, min(count, start + 1000))
        ]
        await services.messages.enqueue_many(batch)
    enqueue_rate = count / (time.perf_counter() - started)
    due = datetime.now(UTC) + timedelta(seconds=due_in)
    async with services.db.transaction() as conn:
        await conn.execute(outbox.update().values(due_at=due))
    return enqueue_rate, due


async def sent_count(services: Services) -> int:
    async with services.db.read() as conn:
        query = select(func.count()).select_from(messages).where(messages.c.status == "sent")
        return int((await conn.execute(query)).scalar_one())


async def outbox_size(services: Services) -> int:
    async with services.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(outbox))).scalar_one())


async def until(instant: datetime) -> None:
    await asyncio.sleep(max(0.0, (instant - datetime.now(UTC)).total_seconds()))


async def wait_all_sent(
    services: Services, count: int, due: datetime, limit: float = 600
) -> tuple[float, float]:
    """Seconds from the due instant until every message is sent, and the steady rate: the
    messages finished per second between a quarter and three quarters of them done (without
    the start, where a worker's concurrency is still climbing, and the tail of retries).

    Polls the size of the outbox (which shrinks as messages finish), not the message table,
    so that watching costs the database little; then checks every message was sent.
    """
    deadline = time.monotonic() + limit
    marks: dict[float, float] = {}  # share left → when it was first seen
    while left := await outbox_size(services):
        now = time.monotonic()
        for share in (0.75, 0.25):
            if left <= share * count and share not in marks:
                marks[share] = now
        if now > deadline:
            raise TimeoutError("messages still in the outbox")
        await asyncio.sleep(0.1)
    elapsed = (datetime.now(UTC) - due).total_seconds()
    if (done := await sent_count(services)) != count:
        raise RuntimeError(f"only {done}/{count} messages were sent")
    span = marks.get(0.25, 0.0) - marks.get(0.75, 0.0)
    steady = count / 2 / span if span > 0 else count / elapsed
    return elapsed, steady


@dataclass(frozen=True)
class Delivery:
    """Exactly-once evidence for one run: what the provider received, what the database says."""

    messages: int
    provider_accepted: int
    provider_throttled: int
    attempt_events: int
    messages_retried: int
    """Messages with more than one attempt (each a 429 first)."""
    messages_unattempted: int
    distinct_provider_ids: int

    @property
    def duplicates(self) -> int:
        """Acceptances beyond one per message, by the worse of the two counts."""
        recorded = self.attempt_events - self.provider_throttled
        return max(self.provider_accepted, recorded) - self.messages

    @property
    def exactly_once(self) -> bool:
        return (
            self.provider_accepted == self.messages
            and self.attempt_events == self.provider_accepted + self.provider_throttled
            and self.messages_unattempted == 0
            and self.distinct_provider_ids == self.messages
        )

    def describe(self) -> str:
        verdict = "each message sent exactly once" if self.exactly_once else "NOT EXACTLY ONCE"
        throttled = (
            f" (and answered {self.provider_throttled:,} with 429; "
            f"{self.messages_retried:,} messages retried)"
            if self.provider_throttled
            else ""
        )
        return (
            f"{verdict}: provider accepted {self.provider_accepted:,} requests for "
            f"{self.messages:,} messages{throttled}; {self.attempt_events:,} attempt events, "
            f"{self.messages_unattempted} messages never attempted, "
            f"{self.distinct_provider_ids:,} distinct provider ids"
        )


async def check_delivery(services: Services, count: int, counts: tuple[int, int]) -> Delivery:
    per_message = (
        select(message_events.c.message_id, func.count().label("n"))
        .where(message_events.c.type == "attempt")
        .group_by(message_events.c.message_id)
        .subquery()
    )
    async with services.db.read() as conn:
        attempts = int(
            (await conn.execute(select(func.coalesce(func.sum(per_message.c.n), 0)))).scalar_one()
        )
        with_attempt = int(
            (await conn.execute(select(func.count()).select_from(per_message))).scalar_one()
        )
        retried = int(
            (
                await conn.execute(
                    select(func.count()).select_from(per_message).where(per_message.c.n > 1)
                )
            ).scalar_one()
        )
        distinct_ids = int(
            (
                await conn.execute(select(func.count(messages.c.provider_message_id.distinct())))
            ).scalar_one()
        )
    accepted, throttled = counts
    return Delivery(
        count, accepted, throttled, attempts, retried, count - with_attempt, distinct_ids
    )


@dataclass(frozen=True)
class Run:
    enqueue_rate: float
    rate: float
    elapsed: float
    delivery: Delivery
    cpu: CpuUse
    marks: tuple[int, int] = (0, 0)
    """(start-mark statements written, sends marked): at-most-once runs only."""
    settled: int | None = None
    """The send concurrency the worker settled on (see the module docstring)."""
    steady: float = 0.0
    """msg/s between a quarter and three quarters of the messages done."""
    events_during: int = 0
    """Events the receiver got while messages were being sent (``--event-endpoints``)."""
    events: int = 0
    event_lag: float = 0.0
    """Seconds after the last message was sent until every event was posted."""


async def run_in_process(
    database_url: str,
    url: str,
    provider: int,
    count: int,
    concurrency: int,
    *,
    at_most_once: bool = False,
    event_endpoints: int = 0,
    receiver: str | None = None,
) -> Run:
    events_during = events = 0
    event_lag = 0.0
    with tempfile.TemporaryDirectory() as state:
        settings = settings_for(database_url, Path(state))
        await upgrade_async(database_url)
        services = await build_services(settings)
        process_tuning.settle()  # as `smsbridge serve` does once started
        try:
            for n in range(event_endpoints):
                assert receiver is not None
                await services.events.create({"url": f"{receiver}/{n}", "event_types": ["*"]})
            enqueue_rate, due = await prepare(
                services, url, count, due_in=2.0, at_most_once=at_most_once
            )
            before = await provider_counts(url)
            received = await provider_counts(receiver) if receiver else (0, 0)
            worker = services.new_worker(
                concurrency=concurrency, batch_size=500, max_in_flight=2000
            )
            task = asyncio.create_task(worker.run())
            dispatcher = services.new_event_dispatcher()
            dispatching = asyncio.create_task(dispatcher.run())
            await until(due)
            start = CpuSample.take([], provider)
            limits: list[int] = []
            sampler = asyncio.create_task(sample_limits(worker.send_concurrency, limits))
            elapsed, steady = await wait_all_sent(services, count, due)
            sampler.cancel()
            cpu = CpuUse.between(start, CpuSample.take([], provider))
            if receiver is not None and event_endpoints:
                events_during = (await provider_counts(receiver))[0] - received[0]
                sent_at = time.perf_counter()
                expected = 2 * count * event_endpoints  # message.queued and message.sent
                for _ in range(6000):  # ten minutes at most
                    if (await provider_counts(receiver))[0] - received[0] >= expected:
                        break
                    await asyncio.sleep(0.1)
                event_lag = time.perf_counter() - sent_at
                events = (await provider_counts(receiver))[0] - received[0]
            dispatcher.stop()
            await dispatching
            worker.stop()
            await task
            after = await provider_counts(url)
            counts = (after[0] - before[0], after[1] - before[1])
            delivery = await check_delivery(services, count, counts)
        finally:
            await services.close()
    # in-process, the worker's CPU is this script's
    cpu = CpuUse(cpu.bench, cpu.postgres, cpu.provider, 0.0, cpu.machine_busy, cpu.other)
    marks = (worker.start_marks.writes, worker.start_marks.marked)
    settled = round(statistics.median(limits[len(limits) // 2 :])) if limits else None
    return Run(
        enqueue_rate,
        count / elapsed,
        elapsed,
        delivery,
        cpu,
        marks,
        settled,
        steady,
        events_during,
        events,
        event_lag,
    )


async def sample_limits(read: Callable[[], dict[str, int]], into: list[int]) -> None:
    """Every 100 ms, the send limit of the run's one credential (0 before its first send)."""
    while True:
        into.append(sum(read().values()))
        await asyncio.sleep(0.1)


def final_limit(log: Path) -> int | None:
    """The send limit a ``smsbridge worker`` reported when it stopped (its INFO log)."""
    found = re.findall(r"send limits: \S+ (\d+)", log.read_text(errors="replace"))
    return int(found[-1]) if found else None


async def run_processes(
    database_url: str,
    url: str,
    provider: int,
    count: int,
    concurrency: int,
    workers: int,
    *,
    batch_size: int = 500,
    profile_dir: Path | None = None,
) -> Run:
    with tempfile.TemporaryDirectory() as state:
        settings = settings_for(database_url, Path(state))
        await upgrade_async(database_url)
        services = await build_services(settings)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMSBRIDGE_")}
        assert settings.secret_keys is not None
        env.update(
            SMSBRIDGE_DATABASE_URL=database_url,
            SMSBRIDGE_SECRET_KEYS=settings.secret_keys.get_secret_value(),
            SMSBRIDGE_ADMIN_KEY="bench-admin-key",
            SMSBRIDGE_ALLOW_PRIVATE_PROVIDER_URLS="true",
            SMSBRIDGE_STATE_DIR=state,
            SMSBRIDGE_LOG_LEVEL="INFO",  # its last line says where its send limit settled
            SMSBRIDGE_WORKER_BATCH_SIZE=str(batch_size),
            SMSBRIDGE_WORKER_POLL_INTERVAL="0.05",
        )
        try:
            enqueue_rate, due = await prepare(services, url, count, due_in=5.0)
            before = await provider_counts(url)
            procs = []
            logs = [Path(state) / f"worker-{n}.log" for n in range(workers)]
            for n in range(workers):
                # cProfile writes its file when the worker exits after SIGTERM (gracefully)
                profile = (
                    ["-m", "cProfile", "-o", str(profile_dir / f"worker-{workers}x-{n + 1}.prof")]
                    if profile_dir
                    else []
                )
                command = [sys.executable, *profile, "-m", "smsbridge", "worker"]
                with logs[n].open("w") as log:
                    procs.append(
                        subprocess.Popen(
                            [*command, "--concurrency", str(concurrency)],
                            env=env,
                            stdout=subprocess.DEVNULL,
                            stderr=log,
                        )
                    )
            pids = [proc.pid for proc in procs]
            try:
                await until(due)
                database = database_url.rsplit("/", 1)[1]
                start = CpuSample.take(pids, provider, database)
                elapsed, steady = await wait_all_sent(services, count, due)
                cpu = CpuUse.between(start, CpuSample.take(pids, provider, database))
            finally:
                for proc in procs:
                    proc.terminate()
                for proc in procs:
                    proc.wait(timeout=30)
            after = await provider_counts(url)
            counts = (after[0] - before[0], after[1] - before[1])
            delivery = await check_delivery(services, count, counts)
            settled = [final_limit(log) for log in logs]
        finally:
            await services.close()
    known = [n for n in settled if n is not None]
    total = sum(known) if known else None  # one credential: the workers' limits add up
    return Run(enqueue_rate, count / elapsed, elapsed, delivery, cpu, settled=total, steady=steady)


async def pg_database(server: str) -> str | None:
    try:
        conn = await asyncpg.connect(server, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return None
    name = f"smsbridge_bench_{secrets.token_hex(4)}"
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return name


async def drop_pg(server: str, name: str) -> None:
    conn = await asyncpg.connect(server, timeout=3)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


# --- reporting -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    label: str
    run: Run
    ceiling: float

    @property
    def share(self) -> float:
        return self.run.rate / self.ceiling


def report(rows: list[Row], label: str, run: Run, ceiling: float) -> float:
    """Print and keep one run, compared with ``ceiling``; returns its share of the ceiling."""
    row = Row(label, run, ceiling)
    print(
        f"{label}: {run.rate:,.0f} msg/s ({row.share:.0%} of ceiling {ceiling:,.0f}; "
        f"steady {run.steady:,.0f} msg/s); send concurrency settled at {run.settled or '?'}; "
        f"enqueue {run.enqueue_rate:,.0f} msg/s\n"
        f"    {run.delivery.describe()}\n    {run.cpu.describe(run.elapsed)}"
    )
    rows.append(row)
    return row.share


class Ceilings:
    """The raw ceiling, re-measured after every smsbridge run: the machine's speed drifts, so
    each run is compared with the mean of the ceilings measured right before and after it."""

    def __init__(
        self, url: str, count: int, concurrency: int, *, latency: float = 0.0, limit: int = 0
    ) -> None:
        self._url, self._count, self._concurrency = url, count, concurrency
        self._latency, self._limit = latency, limit
        self.measured: list[float] = []

    async def for_run(self, run: Run) -> float:
        """What ``run`` is compared with: the provider's own limit when it has one; with a
        provider latency, plain aiohttp at the concurrency the run settled on, measured
        now; otherwise the fixed-concurrency ceiling around the run."""
        if self._limit:
            return float(self._limit)
        if self._latency and run.settled:
            rate = await raw_ceiling(self._url, self._count, run.settled)
            print(f"raw aiohttp ceiling at concurrency {run.settled}: {rate:,.0f} req/s")
            return rate
        return await self.around_last_run()

    async def measure(self) -> float:
        self.measured.append(await raw_ceiling(self._url, self._count, self._concurrency))
        return self.measured[-1]

    async def around_last_run(self) -> float:
        before = self.measured[-1]
        return (before + await self.measure()) / 2


def plural(workers: int) -> str:
    return f"{workers} worker process{'es' if workers > 1 else ''}"


async def sqlite_runs(
    args: argparse.Namespace, url: str, provider: int, ceilings: Ceilings, rows: list[Row]
) -> None:
    count, concurrency = args.messages, args.concurrency
    in_process: list[float] = []
    separate: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeat):
            sqlite_url = f"sqlite+aiosqlite:///{tmp}/bench-{repeat}.db"
            run = await run_in_process(sqlite_url, url, provider, count, concurrency)
            label = f"SQLite, 1 worker (in-process) #{repeat + 1}"
            in_process.append(report(rows, label, run, await ceilings.for_run(run)))
            run = await run_processes(
                f"sqlite+aiosqlite:///{tmp}/bench-process-{repeat}.db",
                url,
                provider,
                count,
                concurrency,
                1,
                batch_size=args.batch_size,
            )
            label = f"SQLite, 1 worker process #{repeat + 1}"
            separate.append(report(rows, label, run, await ceilings.for_run(run)))
    print(
        f"SQLite, 1 worker, share of the ceiling over {args.repeat} runs: in-process median "
        f"{statistics.median(in_process):.0%} ({', '.join(f'{r:.0%}' for r in in_process)}); "
        f"worker process median {statistics.median(separate):.0%} "
        f"({', '.join(f'{r:.0%}' for r in separate)})"
    )
    for kind in ("(in-process)", "process"):
        runs = [r.run for r in rows if r.label.startswith(f"SQLite, 1 worker {kind}")]
        settled = [r.settled for r in runs if r.settled]
        print(
            f"    {kind}: median {statistics.median(r.rate for r in runs):,.0f} msg/s "
            f"(steady {statistics.median(r.steady for r in runs):,.0f}), send concurrency "
            f"settled at median {statistics.median(settled) if settled else '?'} ({settled}), "
            f"429s {[r.delivery.provider_throttled for r in runs]}, messages retried "
            f"{[r.delivery.messages_retried for r in runs]}"
        )
    print()


async def pg_runs(
    args: argparse.Namespace, url: str, provider: int, ceilings: Ceilings, rows: list[Row]
) -> dict[int, list[Row]]:
    """Every worker count once per round (rounds interleave, so drift hits them alike), each
    on a fresh database; returns the rows by worker count."""
    base = args.pg.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    by_workers: dict[int, list[Row]] = {n: [] for n in args.pg_workers}
    for repeat in range(args.pg_repeat):
        for workers in args.pg_workers:
            db = await pg_database(args.pg)
            assert db is not None
            try:
                run = await run_processes(
                    f"{base}/{db}",
                    url,
                    provider,
                    args.messages,
                    args.concurrency,
                    workers,
                    batch_size=args.batch_size,
                    profile_dir=args.profile_dir,
                )
            finally:
                await drop_pg(args.pg, db)
            label = f"PostgreSQL, {plural(workers)}"
            if args.pg_repeat > 1:
                label += f" #{repeat + 1}"
            report(rows, label, run, await ceilings.for_run(run))
            by_workers[workers].append(rows[-1])
    return by_workers


async def start_mark_runs(args: argparse.Namespace, url: str, provider: int) -> list[str]:
    """The cost of at-most-once: the same in-process run with ``retry_ambiguous`` true (no
    marks) and false (each send's start marked durably first, in grouped statements),
    alternating so that drift hits both alike. Returns the summary lines."""
    base = args.pg.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    summary: list[str] = []
    targets: list[str] = [] if args.no_sqlite else ["SQLite"]
    if not args.no_pg and await pg_database_reachable(args.pg):
        targets.append("PostgreSQL")
    for target in targets:
        rates: dict[bool, list[float]] = {False: [], True: []}
        per_write: list[float] = []
        for repeat in range(args.repeat):
            order = (False, True) if repeat % 2 == 0 else (True, False)
            for at_most_once in order:
                with tempfile.TemporaryDirectory() as tmp:
                    db = None if target == "SQLite" else await pg_database(args.pg)
                    database_url = (
                        f"sqlite+aiosqlite:///{tmp}/marks.db" if db is None else f"{base}/{db}"
                    )
                    try:
                        run = await run_in_process(
                            database_url,
                            url,
                            provider,
                            args.messages,
                            args.concurrency,
                            at_most_once=at_most_once,
                        )
                    finally:
                        if db is not None:
                            await drop_pg(args.pg, db)
                mode = "at-most-once" if at_most_once else "at-least-once"
                rates[at_most_once].append(run.rate)
                writes, marked = run.marks
                if at_most_once:
                    per_write.append(marked / max(writes, 1))
                print(
                    f"{target}, in-process, {mode} #{repeat + 1}: {run.rate:,.0f} msg/s; "
                    f"{writes:,} start-mark statements for {marked:,} sends\n"
                    f"    {run.delivery.describe()}"
                )
                if not run.delivery.exactly_once:
                    summary.append(f"| {target} {mode} #{repeat + 1}: NOT EXACTLY ONCE | | | | |")
        plain, marked_rate = statistics.median(rates[False]), statistics.median(rates[True])
        summary.append(
            f"| {target} | {plain:,.0f} | {marked_rate:,.0f} | {marked_rate / plain - 1:+.1%} | "
            f"{statistics.median(per_write):,.1f} |"
        )
    return summary


async def event_runs(args: argparse.Namespace, url: str, provider: int) -> list[str]:
    """The cost of event endpoints: the in-process run with ``--event-endpoints`` endpoints
    subscribed to everything, against the same run without, alternating so that drift hits
    both alike (the dispatcher runs in both). Returns the summary lines."""
    receiver_process, receiver = start_provider()
    receiver = receiver.rsplit("/", 1)[0] + "/events"
    base = args.pg.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    summary: list[str] = []
    targets: list[str] = [] if args.no_sqlite else ["SQLite"]
    if not args.no_pg and await pg_database_reachable(args.pg):
        targets.append("PostgreSQL")
    try:
        for target in targets:
            rates: dict[int, list[float]] = {0: [], args.event_endpoints: []}
            lags: list[float] = []
            during: list[float] = []
            for repeat in range(args.repeat):
                order = list(rates) if repeat % 2 == 0 else list(reversed(rates))
                for endpoints in order:
                    with tempfile.TemporaryDirectory() as tmp:
                        db = None if target == "SQLite" else await pg_database(args.pg)
                        database_url = (
                            f"sqlite+aiosqlite:///{tmp}/events.db" if db is None else f"{base}/{db}"
                        )
                        try:
                            run = await run_in_process(
                                database_url,
                                url,
                                provider,
                                args.messages,
                                args.concurrency,
                                event_endpoints=endpoints,
                                receiver=receiver,
                            )
                        finally:
                            if db is not None:
                                await drop_pg(args.pg, db)
                    rates[endpoints].append(run.rate)
                    extra = ""
                    if endpoints:
                        lags.append(run.event_lag)
                        during.append(run.events_during / max(run.events, 1))
                        extra = (
                            f"; events posted {run.events:,} ({run.events_during:,} during the "
                            f"run, the rest {run.event_lag:.1f} s after it)"
                        )
                    print(
                        f"{target}, in-process, {endpoints} event endpoints #{repeat + 1}: "
                        f"{run.rate:,.0f} msg/s{extra}\n    {run.delivery.describe()}"
                    )
                    if not run.delivery.exactly_once:
                        summary.append(f"| {target} {endpoints} endpoints: NOT EXACTLY ONCE |")
            plain = statistics.median(rates[0])
            with_events = statistics.median(rates[args.event_endpoints])
            ratio = with_events / plain
            verdict = "met" if ratio >= 0.8 else "NOT met"
            summary.append(
                f"| {target} | {plain:,.0f} | {with_events:,.0f} | {ratio:.0%} ({verdict}) | "
                f"{statistics.median(during):.0%} | {statistics.median(lags):.1f} s |"
            )
    finally:
        receiver_process.terminate()
        receiver_process.wait()
    return summary


async def pg_database_reachable(server: str) -> bool:
    try:
        conn = await asyncpg.connect(server, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def print_pg_table(by_workers: dict[int, list[Row]]) -> None:
    baseline = statistics.median(r.run.rate for r in by_workers[min(by_workers)])
    print(
        f"\nPostgreSQL scaling (median over rounds; ratio against {min(by_workers)} worker):\n"
        "| workers | msg/s | vs 1 worker | ceiling around it | of ceiling | worker CPU µs/msg "
        "| PostgreSQL CPU µs/msg | machine busy | duplicates |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    for workers, runs in by_workers.items():
        rate = statistics.median(r.run.rate for r in runs)
        ceiling = statistics.median(r.ceiling for r in runs)
        messages_sent = sum(r.run.delivery.messages for r in runs)
        worker_cpu = sum(r.run.cpu.workers for r in runs) / messages_sent * 1e6
        pg_cpu = sum(r.run.cpu.postgres for r in runs) / messages_sent * 1e6
        busy = statistics.median(r.run.cpu.machine_busy for r in runs)
        duplicates = sum(r.run.delivery.duplicates for r in runs)
        exact = all(r.run.delivery.exactly_once for r in runs)
        print(
            f"| {workers} | {rate:,.0f} | {rate / baseline:.2f}x | {ceiling:,.0f} | "
            f"{rate / ceiling:.0%} | {worker_cpu:,.0f} | {pg_cpu:,.0f} | {busy:.0%} | "
            f"{duplicates}{'' if exact else ' (NOT exactly once)'} |"
        )
    if 2 in by_workers and 1 in by_workers:
        ratio = statistics.median(r.run.rate for r in by_workers[2]) / baseline
        verdict = "met" if ratio >= 1.5 else "NOT met"
        print(f"PostgreSQL, 2 workers / 1 worker: {ratio:.2f}x (target ≥ 1.5x: {verdict})")
        # What the machine could give at all: every core busy, at the CPU per message the
        # two-worker runs spent (workers + PostgreSQL + provider, all on this machine).
        runs = by_workers[2]
        spent = sum(r.run.cpu.workers + r.run.cpu.postgres + r.run.cpu.provider for r in runs)
        per_message = spent / sum(r.run.delivery.messages for r in runs)
        cores = os.cpu_count() or 1
        bound = cores / per_message
        print(
            f"CPU bound: {per_message * 1e6:,.0f} µs of CPU per message with 2 workers; "
            f"{cores} cores fully busy would give at most {bound:,.0f} msg/s = "
            f"{bound / baseline:.2f}x one worker"
        )


def worker_counts(text: str) -> list[int]:
    counts = sorted({int(part) for part in text.split(",") if part.strip()})
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive counts, e.g. 1,2,4")
    return counts


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64, help="sends per worker")
    parser.add_argument("--batch-size", type=int, default=500, help="SMSBRIDGE_WORKER_BATCH_SIZE")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL runs")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite runs")
    parser.add_argument("--repeat", type=int, default=3, help="SQLite runs of each kind")
    parser.add_argument(
        "--pg-workers", type=worker_counts, default=[1, 2, 4], help="e.g. 1,2,4 (default)"
    )
    parser.add_argument("--pg-repeat", type=int, default=1, help="rounds of PostgreSQL runs")
    parser.add_argument(
        "--no-start-marks",
        action="store_true",
        help="skip the at-most-once runs (the cost of start marks)",
    )
    parser.add_argument(
        "--only-start-marks", action="store_true", help="run only the at-most-once comparison"
    )
    parser.add_argument(
        "--event-endpoints",
        type=int,
        default=0,
        help="run only the comparison with this many event endpoints subscribed to everything",
    )
    parser.add_argument(
        "--provider-latency",
        type=float,
        default=0.0,
        help="seconds the provider takes to answer each request (default 0: at once)",
    )
    parser.add_argument(
        "--provider-limit",
        type=int,
        default=0,
        help="the provider answers 429 past this many accepted requests a second (default 0: none)",
    )
    parser.add_argument(
        "--profile-dir",
        type=Path,
        help="run PostgreSQL worker processes under cProfile, writing worker-*.prof here",
    )
    args = parser.parse_args()
    if args.profile_dir:
        args.profile_dir.mkdir(parents=True, exist_ok=True)

    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(
        f"messages: {args.messages}, concurrency: {args.concurrency}, "
        f"provider latency: {args.provider_latency * 1000:g} ms\n"
    )
    provider, url = start_provider(args.provider_latency, args.provider_limit)
    rows: list[Row] = []
    by_workers: dict[int, list[Row]] = {}
    marks: list[str] = []
    try:
        ceilings = Ceilings(
            url,
            args.messages,
            args.concurrency,
            latency=args.provider_latency,
            limit=args.provider_limit,
        )
        await raw_ceiling(url, 2000, args.concurrency)  # warm-up
        print(f"raw aiohttp ceiling: {await ceilings.measure():,.0f} req/s")
        if args.event_endpoints:
            print(f"\nThe cost of {args.event_endpoints} event endpoints (everything), same run:")
            lines = await event_runs(args, url, provider.pid)
            print(
                f"\n| database | msg/s without | msg/s with {args.event_endpoints} endpoints "
                "| ratio (target ≥ 80 %) | events posted during the run | rest posted after |"
                "\n|---|---:|---:|---:|---:|---:|"
            )
            print("\n".join(lines))
            if any("NOT EXACTLY ONCE" in line for line in lines):
                sys.exit("some run did not send every message exactly once")
            return
        if not args.no_sqlite and not args.only_start_marks:
            await sqlite_runs(args, url, provider.pid, ceilings, rows)
        if args.only_start_marks:
            pass
        elif not args.no_pg and (name := await pg_database(args.pg)):
            try:
                by_workers = await pg_runs(args, url, provider.pid, ceilings, rows)
            finally:
                await drop_pg(args.pg, name)
        elif not args.no_pg:
            print("PostgreSQL not reachable: PostgreSQL runs skipped")
        if not args.no_start_marks:
            print("\nThe cost of at-most-once (start marks), in-process, same run:")
            marks = await start_mark_runs(args, url, provider.pid)
    finally:
        provider.terminate()
        provider.wait()

    if args.provider_limit:
        against = f"the provider's limit ({args.provider_limit:,}/s)"
    elif args.provider_latency:
        against = "aiohttp at the settled concurrency, measured after it"
    else:
        against = f"aiohttp at concurrency {args.concurrency}, measured around it"
    print(
        f"\n| run | msg/s | steady msg/s | settled concurrency | ceiling: {against} "
        "| of ceiling | 429s | messages retried | enqueue msg/s | exactly once |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    measured = ceilings.measured
    print(
        f"| raw aiohttp ceiling at concurrency {args.concurrency} (mean of {len(measured)}; "
        f"{min(measured):,.0f} to {max(measured):,.0f}) | {statistics.mean(measured):,.0f} "
        "| - | - | - | - | - | - | - | - |"
    )
    for row in rows:
        delivery = row.run.delivery
        once = "yes" if delivery.exactly_once else f"NO ({delivery.duplicates:+d})"
        print(
            f"| {row.label} | {row.run.rate:,.0f} | {row.run.steady:,.0f} "
            f"| {row.run.settled or '?'} | "
            f"{row.ceiling:,.0f} | {row.share:.0%} | {delivery.provider_throttled:,} | "
            f"{delivery.messages_retried:,} | {row.run.enqueue_rate:,.0f} | {once} |"
        )
    if by_workers:
        print_pg_table(by_workers)
    if not args.no_start_marks and marks:
        print(
            "\nStart marks (median over runs):\n"
            "| database | at-least-once msg/s | at-most-once msg/s | difference "
            "| sends per mark statement |\n|---|---:|---:|---:|---:|"
        )
        print("\n".join(marks))
    if not all(row.run.delivery.exactly_once for row in rows) or any(
        "NOT EXACTLY ONCE" in line for line in marks
    ):
        sys.exit("some run did not send every message exactly once")


if __name__ == "__main__":
    asyncio.run(main())
