"""Ingest: how fast a real ``smsbridge serve`` accepts messages over HTTP (issue 16).

    python benchmarks/ingest.py [--quick] [--repeat 3] [--concurrency 32,256]
                                [--only sqlite|pg] [--no-pg] [--pg URL]
                                [--seconds 3] [--warmup 1] [--batch | --no-batch]
                                [--json out.json]

Per repeat, in this order (so that drift on a shared machine hits every kind alike):

1. The framework ceiling: a trivial FastAPI app defined here (the same JSON body validated by
   a pydantic model like the real ``MessageIn``, answered 202 with a small JSON body), served
   by uvicorn as ``smsbridge serve`` serves (``uvicorn.run(app, host, port, log_level)``:
   uvloop, httptools, access log below the log level; ``process_tuning.settle()`` once up).
2. ``smsbridge serve --no-worker``, then ``smsbridge serve`` (worker in process), each on a
   fresh SQLite file and, unless ``--no-pg``, a fresh PostgreSQL database (``smsbridge
   migrate`` first), with ``SMSBRIDGE_LOG_LEVEL=WARNING``. A sandbox credential and a
   transactional surface are created through the API with the master key;
   ``SMSBRIDGE_PUBLIC_URL`` is the server's real address, so the sandbox's delivery reports
   come back to it (a second after each send) as a real provider's would.
3. With the worker in process, first (on the fresh server): its send rate alone — a backlog
   of ``--backlog`` messages enqueued directly and released at once, with no request coming
   in (messages sent per second between the 10th and 90th percentile of their ``sent_at``) —
   then while the API takes 32 connections, the outbox kept stocked all along (messages sent
   per second inside the window). Without a stocked outbox the worker can only send what
   arrives, and its rate would say how slow ingest is, not how the API load slows the worker.
   The backlogs' surfaces have no status webhook, so the worker is timed against the API's
   load, not against delivery reports of its own backlog.
4. ``POST /api/v1/messages`` (``{"surface_id", "to", "body"}``, a new ``to`` each time) from a
   load process of its own (aiohttp, keep-alive, 32 then 256 connections): a warm-up (at least
   ``--warmup`` seconds, and until every connection has had an answer), then a window of
   ``--seconds``. Accepted/s counts the 202s completed inside the window; p50/p99 are their
   latencies; errors are anything but 202, and connection errors. With the worker in process,
   ``sent/s meanwhile`` is how many messages it sent inside the window.
5. ``POST /api/v1/messages/batch`` with 1,000 messages per request (4 connections), when the
   server has it (a 404/405 prints "batch endpoint not available" and skips it).
6. Exactly once: the ids of every accepted message (every 202, every 202 item of a batch)
   must be the rows of the load's surface in ``messages``: none missing, none extra.

Prints medians over ``--repeat`` runs, their ratio to the ceiling, the CPU used (server, load
client, whole machine: on a shared machine other work shows there) and PASS/MISS against the
issue's targets (a miss is no failure); exits non-zero when a run did not store every
accepted message exactly once. ``--batch`` measures only the batch endpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import aiohttp
import orjson
from common import machine
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from serve_harness import (
    AUTH,
    CHILDREN,
    DB_NAMES,
    DEFAULT_PG,
    Kind,
    LoadResult,
    LoadSpec,
    Server,
    cpu_seconds,
    create_sandbox_surface,
    free_port,
    phone,
    postgres_reachable,
    run_load,
    run_script,
    scratch_database,
    stop_process,
    wait_ready,
)
from sqlalchemy import func, select

SCRIPT = Path(__file__).resolve()
BODY = "Hello Ana, your order 12345 has shipped. Track it: https://acme.example/t/abc"
WORKER_LOAD_CONNECTIONS = 32
TARGET_SHARE_OF_CEILING = 0.5
TARGET_P99 = 0.050
TARGET_WORKER_SHARE = 0.5
TARGET_BATCH_RATE = 20_000


# --- the framework ceiling (served in a process of its own) --------------------------------


class CeilingMessageIn(BaseModel):
    """Shaped like ``smsbridge.api.schemas.messages.MessageIn`` (unknown fields and NUL
    refused), kept here so that the ceiling does not move when the real one changes."""

    model_config = ConfigDict(extra="forbid")
    surface_id: str
    to: str | None = None
    profile_id: str | None = None
    body: str
    variables: dict[str, Any] = Field(default_factory=dict)
    send_at: datetime | None = None

    @field_validator("*", mode="after")
    @classmethod
    def _without_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters (U+0000)")
        return value


def ceiling_app() -> FastAPI:
    """What FastAPI costs per request on this machine, with the body parsed and validated as
    ``POST /api/v1/messages`` does, and nothing else."""
    from smsbridge import process_tuning

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        process_tuning.settle()  # as create_app(settle=True) does for `serve`
        yield

    app = FastAPI(lifespan=lifespan)
    ids = itertools.count(1)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/v1/messages", status_code=202)
    async def accept(message: CeilingMessageIn) -> JSONResponse:
        body = {"id": f"msg_{next(ids):026d}", "status": "queued", "to": message.to}
        return JSONResponse(body, 202)

    return app


def serve_ceiling(port: int) -> None:
    """The ceiling server, as ``smsbridge serve`` runs uvicorn (cli/server.py)."""
    import uvicorn

    uvicorn.run(ceiling_app(), host="127.0.0.1", port=port, log_level="warning")


# --- figures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ingest:
    """One load at one number of connections."""

    connections: int
    accepted_rate: float
    p50: float
    p99: float
    errors: int
    server_cores: float
    client_cores: float
    machine_cores: float
    sent_rate: float | None = None
    """Messages the in-process worker sent per second inside the window (by ``sent_at``)."""

    @classmethod
    def of(cls, load: LoadResult, connections: int, window: Window) -> Ingest:
        return cls(
            connections,
            load.accepted_rate,
            load.percentile(0.50),
            load.percentile(0.99),
            load.window_errors,
            window.server_cores,
            load.client_cores,
            window.machine_cores,
        )


@dataclass(frozen=True)
class WorkerRates:
    alone: float
    """Messages sent per second, the worker alone on a backlog released at once (no request
    coming in, no delivery report coming back)."""
    during: float
    """Messages sent per second inside the window of a load at 32 connections, the outbox
    kept stocked all along."""
    outbox_ran_dry: bool
    """Whether the outbox was seen empty inside that window (``during`` is then a floor)."""
    ingest: Ingest
    """The API's figures meanwhile."""

    @property
    def share(self) -> float:
        return self.during / self.alone if self.alone else 0.0


@dataclass(frozen=True)
class Check:
    accepted: int
    rows: int
    missing: int
    extra: int
    duplicate_ids: int

    @property
    def ok(self) -> bool:
        return self.missing == self.extra == self.duplicate_ids == 0 and self.rows == self.accepted

    def describe(self) -> str:
        verdict = "OK" if self.ok else "MISMATCH"
        return (
            f"exactly once {verdict}: {self.accepted:,} accepted, {self.rows:,} rows, "
            f"{self.missing} missing, {self.extra} extra, {self.duplicate_ids} ids answered twice"
        )


class Phases:
    """Seconds each phase of a run took (where the benchmark's own time goes)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.monotonic()

    def mark(self, name: str) -> None:
        now = time.monotonic()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._last
        self._last = now

    def describe(self) -> str:
        return ", ".join(f"{name} {seconds:.0f}" for name, seconds in self.seconds.items())


@dataclass
class ServeRun:
    kind: Kind
    worker: bool
    ingest: dict[int, Ingest] = field(default_factory=dict)
    worker_rates: WorkerRates | None = None
    batch: Ingest | None = None
    batch_available: bool | None = None
    check: Check | None = None
    notes: list[str] = field(default_factory=list)
    phases: Phases = field(default_factory=lambda: Phases())

    @property
    def label(self) -> str:
        return serve_label(self.kind, self.worker)


def serve_label(kind: Kind, worker: bool) -> str:
    variant = "smsbridge serve (worker in process)" if worker else "smsbridge serve --no-worker"
    return f"{variant}, {DB_NAMES[kind]}"


# --- sampling around a window --------------------------------------------------------------


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (Linux ``/proc/stat``; 0 elsewhere)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


@dataclass
class Window:
    """Taken as the load's window opens and closes: the time (monotonic and wall clock, the
    latter to find the messages sent inside it by ``sent_at``), the server's CPU and the
    machine's busy CPU."""

    server_pid: int
    samples: list[tuple[float, datetime, float, float]] = field(default_factory=list)

    async def sample(self) -> None:
        self.samples.append(
            (
                time.perf_counter(),
                datetime.now(UTC),
                cpu_seconds(self.server_pid),
                machine_busy_seconds(),
            )
        )

    @property
    def seconds(self) -> float:
        return self.samples[-1][0] - self.samples[0][0] if len(self.samples) > 1 else 0.0

    @property
    def wall(self) -> tuple[datetime, datetime]:
        return self.samples[0][1], self.samples[-1][1]

    def _per_second(self, index: Literal[2, 3]) -> float:
        if self.seconds <= 0:
            return 0.0
        return (self.samples[-1][index] - self.samples[0][index]) / self.seconds

    @property
    def server_cores(self) -> float:
        return self._per_second(2)

    @property
    def machine_cores(self) -> float:
        return self._per_second(3)


# --- one server run ------------------------------------------------------------------------


def message_template(surface_id: str) -> str:
    """The JSON body of one message, ``{phone}`` standing for the number."""
    return orjson.dumps({"surface_id": surface_id, "to": "{phone}", "body": BODY}).decode()


class Bench:
    """Settings of the whole benchmark, and where its temporary files go."""

    def __init__(self, args: argparse.Namespace, directory: Path) -> None:
        self.args = args
        self.dir = directory

    def spec(self, url: str, surface_id: str, connections: int, first_n: int) -> LoadSpec:
        return LoadSpec(
            url=url,
            body=message_template(surface_id),
            concurrency=connections,
            seconds=self.args.seconds,
            warmup=self.args.warmup,
            first_n=first_n,
        )

    async def load(self, spec: LoadSpec, server_pid: int) -> tuple[LoadResult, Window]:
        window = Window(server_pid)
        result = await run_load(
            spec, self.dir, on_window_start=window.sample, on_window_end=window.sample
        )
        return result, window

    async def ceiling(self) -> dict[int, Ingest]:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--serve-ceiling", str(port)],
            env={k: v for k, v in os.environ.items() if not k.startswith("SMSBRIDGE_")},
        )
        CHILDREN.add(process)
        figures: dict[int, Ingest] = {}
        try:
            await wait_ready(f"http://127.0.0.1:{port}/healthz", process)
            url = f"http://127.0.0.1:{port}/api/v1/messages"
            for connections in self.args.concurrency:
                spec = self.spec(url, "srf_ceiling", connections, 0)
                load, window = await self.load(spec, process.pid)
                figures[connections] = Ingest.of(load, connections, window)
        finally:
            await stop_process(process)
        return figures

    async def serve(self, kind: Kind, worker: bool) -> ServeRun:
        from smsbridge.container import build_services

        run = ServeRun(kind, worker)
        mark = run.phases.mark
        async with (
            scratch_database(kind, self.dir, pg=self.args.pg, name="ingest") as url,
            Server(url, self.dir, worker=worker) as server,
        ):
            surface = await create_sandbox_surface(server.base_url, "load")
            services = await build_services(server.settings())
            db = Direct(services, run.notes)
            accepted: list[str] = []
            first_n = 0
            messages_url = f"{server.base_url}/api/v1/messages"
            mark("start")
            try:
                if not self.args.batch_only:
                    if worker:  # first: on a fresh server, with no reports still coming back
                        run.worker_rates, load = await self.worker_rates(
                            server, db, surface.surface_id, first_n
                        )
                        first_n += load.requests_sent
                        accepted += load.ids
                        mark("worker")
                    windows: dict[int, Window] = {}
                    for connections in self.args.concurrency:
                        spec = self.spec(messages_url, surface.surface_id, connections, first_n)
                        load, windows[connections] = await self.load(spec, server.pid)
                        first_n += load.requests_sent
                        accepted += load.ids
                        run.ingest[connections] = Ingest.of(load, connections, windows[connections])
                    mark("ingest")
                    if worker:
                        await db.until_outbox_empty()
                        for connections, window in windows.items():
                            sent = await db.sent_between(*window.wall) / window.seconds
                            run.ingest[connections] = replace(
                                run.ingest[connections], sent_rate=sent
                            )
                if not self.args.no_batch:
                    found = await self.batch(server, db, surface.surface_id, first_n)
                    run.batch_available = found is not None
                    if found is not None:
                        run.batch, ids = found
                        accepted += ids
                    mark("batch")
                run.check = await db.check_exactly_once(surface.surface_id, accepted)
            finally:
                await services.close()
        mark("check, stop")
        return run

    async def worker_rates(
        self, server: Server, db: Direct, load_surface: str, first_n: int
    ) -> tuple[WorkerRates, LoadResult]:
        """The worker alone on a backlog released at once, then while the API takes 32
        connections, the outbox kept stocked by :class:`Feeder` all along.

        The sandbox posts a delivery report to the server a second after each send, and the
        server pays for each like for a request. The backlogs' surfaces have no status webhook
        (:meth:`Direct.without_reports`): the worker is timed against the API's load, not
        against the reports of its own backlog, and no flood of reports is left behind (the
        messages the API accepted do have their reports, as in the ingest runs)."""
        alone_surface = await create_sandbox_surface(server.base_url, "backlog-alone")
        await db.without_reports(alone_surface.surface_id)
        await db.enqueue(alone_surface.surface_id, self.args.backlog, 5_000_000, hold=True)
        await db.release_held()
        await db.until_outbox_empty()
        alone = await db.send_rate(alone_surface.surface_id)
        stock = await create_sandbox_surface(server.base_url, "backlog-during-load")
        await db.without_reports(stock.surface_id)
        feeder = Feeder(db, stock.surface_id, 6_000_000)
        spec = self.spec(
            f"{server.base_url}/api/v1/messages", load_surface, WORKER_LOAD_CONNECTIONS, first_n
        )
        window = Window(server.pid)

        async def opened() -> None:
            await window.sample()
            feeder.watching = True

        async def closed() -> None:
            feeder.watching = False
            await window.sample()

        await feeder.fill()
        feeding = asyncio.create_task(feeder.run())
        try:
            load = await run_load(spec, self.dir, on_window_start=opened, on_window_end=closed)
        finally:
            feeder.stop()
            await feeding
        await db.until_outbox_empty()
        during = await db.sent_between(*window.wall) / window.seconds
        ingest = Ingest.of(load, WORKER_LOAD_CONNECTIONS, window)
        rates = WorkerRates(alone, during, feeder.ran_dry, replace(ingest, sent_rate=during))
        return rates, load

    async def batch(
        self, server: Server, db: Direct, surface_id: str, first_n: int
    ) -> tuple[Ingest, list[str]] | None:
        url = f"{server.base_url}/api/v1/messages/batch"
        async with (
            aiohttp.ClientSession(headers=AUTH) as session,
            session.post(url, data=b'{"messages": []}') as probe,
        ):
            if probe.status in (404, 405):
                return None
        if server.worker:  # sends still due would slow it down (the last reports are few)
            await db.until_outbox_empty()
        spec = LoadSpec(
            url=url,
            body=message_template(surface_id),
            concurrency=self.args.batch_concurrency,
            seconds=self.args.seconds,
            warmup=self.args.warmup,
            first_n=first_n,
            accept="results",
            batch_size=self.args.batch_size,
        )
        load, window = await self.load(spec, server.pid)
        return Ingest.of(load, self.args.batch_concurrency, window), load.ids


class Feeder:
    """Keeps at least ``LOW_WATER`` messages in the outbox (adding ``CHUNK`` due at once when
    it holds fewer), so that the worker never runs out of work while the API is loaded,
    without leaving a pile behind when the load ends."""

    LOW_WATER = 1000
    CHUNK = 1000

    def __init__(self, db: Direct, surface_id: str, first_n: int) -> None:
        self.db = db
        self.surface_id = surface_id
        self.next_n = first_n
        self.watching = False
        self.ran_dry = False
        self._stopped = asyncio.Event()

    async def fill(self) -> None:
        await self.db.enqueue(self.surface_id, self.CHUNK, self.next_n)
        self.next_n += self.CHUNK

    async def run(self) -> None:
        while not self._stopped.is_set():
            size = await self.db.outbox_size()
            if size == 0 and self.watching:
                self.ran_dry = True
            if size < self.LOW_WATER:
                await self.fill()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), 0.05)

    def stop(self) -> None:
        self._stopped.set()


class Direct:
    """The benchmark's own look at the server's database, through smsbridge's storage."""

    def __init__(self, services: Any, notes: list[str]) -> None:
        from smsbridge.storage.tables import messages, outbox

        self.services = services
        self.notes = notes
        self.messages = messages
        self.outbox = outbox

    async def _scalar(self, query: Any) -> int:
        async with self.services.db.read() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def outbox_size(self) -> int:
        return await self._scalar(select(func.count()).select_from(self.outbox))

    async def until_outbox_empty(self, limit: float = 120) -> None:
        """Until every message due has been sent (and recorded)."""
        deadline = time.monotonic() + limit
        while await self.outbox_size():
            if time.monotonic() > deadline:
                self.notes.append(f"outbox still not empty after {limit:.0f} s")
                return
            await asyncio.sleep(0.05)

    async def enqueue(self, surface_id: str, count: int, first_n: int, hold: bool = False) -> None:
        """``count`` messages, due now or, with ``hold``, in a day (until :meth:`release_held`)."""
        from smsbridge.services.messages import SendRequest

        later = datetime.now(UTC) + timedelta(days=1) if hold else None
        for start in range(0, count, 1000):
            await self.services.messages.enqueue_many(
                [
                    SendRequest(surface_id, phone(first_n + n), BODY, send_at=later)
                    for n in range(start, min(count, start + 1000))
                ]
            )

    async def without_reports(self, surface_id: str) -> None:
        """No status webhook for the surface: the worker gives the sandbox no callback URL,
        so no delivery report comes back for its messages."""
        from smsbridge.storage.tables import surfaces

        async with self.services.db.transaction() as conn:
            query = surfaces.update().where(surfaces.c.id == surface_id)
            await conn.execute(query.values(status_token=None))

    async def release_held(self) -> None:
        """Everything in the outbox due now."""
        async with self.services.db.transaction() as conn:
            await conn.execute(self.outbox.update().values(due_at=datetime.now(UTC)))

    async def sent_between(self, start: datetime, end: datetime) -> int:
        m = self.messages.c
        return await self._scalar(select(func.count()).where(m.sent_at >= start, m.sent_at < end))

    async def send_rate(self, surface_id: str) -> float:
        """Messages of ``surface_id`` sent per second, between the 10th and the 90th
        percentile of their ``sent_at`` (leaving out the worker noticing the release, and
        stragglers)."""
        m = self.messages.c
        query = select(m.sent_at).where(m.surface_id == surface_id, m.sent_at.is_not(None))
        async with self.services.db.read() as conn:
            times = sorted(row[0] for row in await conn.execute(query))
        if len(times) < 10:
            return 0.0
        low, high = len(times) // 10, len(times) * 9 // 10
        seconds = (times[high] - times[low]).total_seconds()
        return (high - low) / seconds if seconds > 0 else float("inf")

    async def check_exactly_once(self, surface_id: str, accepted: list[str]) -> Check:
        query = select(self.messages.c.id).where(self.messages.c.surface_id == surface_id)
        async with self.services.db.read() as conn:
            rows = [row[0] for row in await conn.execute(query)]
        stored, answered = set(rows), set(accepted)
        return Check(
            accepted=len(answered),
            rows=len(rows),
            missing=len(answered - stored),
            extra=len(stored - answered),
            duplicate_ids=len(accepted) - len(answered),
        )


# --- reporting -----------------------------------------------------------------------------


def ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    return f"{seconds * 1000:,.0f} ms" if seconds < 1 else f"{seconds:,.2f} s"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def cpu(f: Ingest) -> str:
    return f"{f.server_cores:.2f} | {f.client_cores:.2f} | {f.machine_cores:.2f}"


def median_ingest(figures: list[Ingest]) -> Ingest:
    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    sent = [f.sent_rate for f in figures if f.sent_rate is not None]
    return Ingest(
        figures[0].connections,
        median([f.accepted_rate for f in figures]),
        median([f.p50 for f in figures]),
        median([f.p99 for f in figures]),
        sum(f.errors for f in figures),
        median([f.server_cores for f in figures]),
        median([f.client_cores for f in figures]),
        median([f.machine_cores for f in figures]),
        median(sent) if sent else None,
    )


@dataclass(frozen=True)
class WorkerSummary:
    alone: float
    during: float
    share: float
    ran_dry: bool
    """The outbox was seen empty in some window: ``during`` is a floor."""
    api: Ingest


@dataclass
class Summary:
    ceiling: dict[int, Ingest]
    ingest: dict[tuple[str, int], Ingest]
    worker: dict[str, WorkerSummary]
    batch: dict[str, Ingest]
    ceilings: list[dict[int, Ingest]] = field(default_factory=list)
    """Each repeat's ceiling."""
    lines: list[str] = field(default_factory=list)

    def out(self, line: str = "") -> None:
        print(line)
        self.lines.append(line)


def summarize(
    args: argparse.Namespace, ceilings: list[dict[int, Ingest]], runs: list[ServeRun]
) -> Summary:
    ceiling = {c: median_ingest([r[c] for r in ceilings]) for c in args.concurrency}
    labels = list(dict.fromkeys(r.label for r in runs))
    ingest = {
        (label, c): median_ingest([r.ingest[c] for r in runs if r.label == label and r.ingest])
        for label in labels
        for c in args.concurrency
        if any(r.ingest for r in runs if r.label == label)
    }
    worker = {}
    for label in labels:
        rates = [r.worker_rates for r in runs if r.label == label and r.worker_rates is not None]
        if rates:
            worker[label] = WorkerSummary(
                statistics.median(r.alone for r in rates),
                statistics.median(r.during for r in rates),
                statistics.median(r.share for r in rates),
                any(r.outbox_ran_dry for r in rates),
                median_ingest([r.ingest for r in rates]),
            )
    batch = {
        label: median_ingest([r.batch for r in runs if r.label == label and r.batch is not None])
        for label in labels
        if any(r.batch is not None for r in runs if r.label == label)
    }
    return Summary(ceiling, ingest, worker, batch, ceilings)


def report(args: argparse.Namespace, summary: Summary, runs: list[ServeRun]) -> None:
    out = summary.out
    repeats = f"median of {args.repeat} run{'s' if args.repeat > 1 else ''}"
    if not args.batch_only:
        out(
            f"\nPOST /api/v1/messages ({repeats}; window {args.seconds:g} s after a "
            f"{args.warmup:g} s warm-up)"
        )
        out(
            "| server | conns | accepted/s | of ceiling | p50 | p99 | errors | CPU server "
            "| CPU client | CPU machine | sent/s meanwhile |"
        )
        out("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for c, f in summary.ceiling.items():
            out(
                f"| framework ceiling | {c} | {f.accepted_rate:,.0f} | 100% | {ms(f.p50)} | "
                f"{ms(f.p99)} | {f.errors} | {cpu(f)} | - |"
            )
        for (label, c), f in summary.ingest.items():
            share = f.accepted_rate / summary.ceiling[c].accepted_rate
            sent = "-" if f.sent_rate is None else f"{f.sent_rate:,.0f}"
            out(
                f"| {label} | {c} | {f.accepted_rate:,.0f} | {share:.1%} | {ms(f.p50)} | "
                f"{ms(f.p99)} | {f.errors} | {cpu(f)} | {sent} |"
            )
        out(
            f"CPU in cores (the machine has {os.cpu_count()}): the server process, the load "
            "process, and all that the machine had busy (PostgreSQL and any other work too)."
        )
        if len(summary.ceilings) > 1:
            spread = "; ".join(
                f"{c} conns {min(r[c].accepted_rate for r in summary.ceilings):,.0f} to "
                f"{max(r[c].accepted_rate for r in summary.ceilings):,.0f}/s"
                for c in args.concurrency
            )
            out(f"The ceiling over the repeats (drift, other work on the machine): {spread}")
    if summary.worker:
        out(f"\nWorker send rate (messages reaching `sent`/s, {repeats})")
        out(
            f"| server | alone | while the API takes {WORKER_LOAD_CONNECTIONS} conns "
            "| during / alone | accepted/s meanwhile | p99 meanwhile | CPU server |"
        )
        out("|---|---:|---:|---:|---:|---:|---:|")
        for label, w in summary.worker.items():
            floor = " (outbox ran dry: at least)" if w.ran_dry else ""
            out(
                f"| {label} | {w.alone:,.0f} | {w.during:,.0f}{floor} | {w.share:.0%} | "
                f"{w.api.accepted_rate:,.0f} | {ms(w.api.p99)} | {w.api.server_cores:.2f} |"
            )
    if not args.no_batch:
        if summary.batch:
            out(
                f"\nPOST /api/v1/messages/batch, {args.batch_size:,} per request, "
                f"{args.batch_concurrency} connections ({repeats})"
            )
            out(
                "| server | messages accepted/s | requests/s | p50 | p99 | errors "
                "| CPU server | CPU client | CPU machine |"
            )
            out("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
            for label, f in summary.batch.items():
                out(
                    f"| {label} | {f.accepted_rate:,.0f} | "
                    f"{f.accepted_rate / args.batch_size:,.1f} | {ms(f.p50)} | {ms(f.p99)} | "
                    f"{f.errors} | {cpu(f)} |"
                )
        elif any(r.batch_available is False for r in runs):
            out("\nbatch endpoint not available (POST /api/v1/messages/batch answers 404/405)")
    out("\nExactly once, per run:")
    for run in runs:
        if run.check is not None:
            out(f"  {run.label}: {run.check.describe()}")
        for note in run.notes:
            out(f"  {run.label}: note: {note}")
    targets(args, summary)


def targets(args: argparse.Namespace, summary: Summary) -> None:
    out = summary.out
    out("\nTargets (issue 16):")
    for kind in args.kinds:
        label = serve_label(kind, True)
        name = DB_NAMES[kind]
        for c in args.concurrency:
            f = summary.ingest.get((label, c))
            if f is not None:
                share = f.accepted_rate / summary.ceiling[c].accepted_rate
                out(
                    f"  {name}, worker in process, {c} conns: {f.accepted_rate:,.0f}/s = "
                    f"{share:.1%} of the ceiling (≥ 50 %): "
                    f"{verdict(share >= TARGET_SHARE_OF_CEILING)}"
                )
        f = summary.ingest.get((label, WORKER_LOAD_CONNECTIONS))
        if f is not None:
            out(
                f"  {name}, worker in process, p99 at {WORKER_LOAD_CONNECTIONS} conns: "
                f"{ms(f.p99)} (≤ 50 ms): {verdict(f.p99 <= TARGET_P99)}"
            )
        if label in summary.worker:
            w = summary.worker[label]
            least = "at least " if w.ran_dry else ""
            out(
                f"  {name}, worker send rate under load: {least}{w.during:,.0f}/s = "
                f"{w.share:.0%} of {w.alone:,.0f}/s alone (≥ 50 %): "
                f"{verdict(w.share >= TARGET_WORKER_SHARE)}"
            )
    if args.no_batch:
        return
    label = serve_label("sqlite", True)
    if label in summary.batch:
        rate = summary.batch[label].accepted_rate
        out(
            f"  SQLite, batch of {args.batch_size:,}, worker in process: {rate:,.0f} msg/s "
            f"(≥ 20,000): {verdict(rate >= TARGET_BATCH_RATE)}"
        )
    elif "sqlite" in args.kinds:
        out("  SQLite, batch ≥ 20,000 msg/s: not measured (batch endpoint not available)")


# --- main ----------------------------------------------------------------------------------


def connection_counts(text: str) -> list[int]:
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive counts, e.g. 32,256")
    return counts


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kind (medians)")
    parser.add_argument("--concurrency", type=connection_counts, default=[32, 256])
    parser.add_argument("--seconds", type=float, default=3.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured, before it")
    parser.add_argument("--only", choices=["sqlite", "pg"], help="one database only")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument(
        "--pg", default=DEFAULT_PG, help=f"PostgreSQL server (default {DEFAULT_PG})"
    )
    parser.add_argument(
        "--backlog", type=int, default=2000, help="messages the worker sends alone, at once"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--batch", dest="batch_only", action="store_true", help="only POST /api/v1/messages/batch"
    )
    mode.add_argument("--no-batch", action="store_true", help="skip the batch endpoint")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batch-concurrency", type=int, default=4)
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 1 repeat, 1.5 s windows, a small backlog"
    )
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--serve-ceiling", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.seconds, args.warmup, args.backlog = 1, 1.5, 0.5, 1000
    kinds: list[Kind] = ["sqlite", "pg"]
    if args.only:
        kinds = [args.only]
    elif args.no_pg:
        kinds = ["sqlite"]
    args.kinds = kinds
    return args


async def main(args: argparse.Namespace) -> int:
    print(machine())
    if "pg" in args.kinds and not await postgres_reachable(args.pg):
        print(f"PostgreSQL not reachable at {args.pg}: PostgreSQL runs skipped")
        args.kinds = [k for k in args.kinds if k != "pg"]
    print(
        f"connections {','.join(map(str, args.concurrency))}; window {args.seconds:g} s after "
        f"{args.warmup:g} s warm-up; {args.repeat} repeat(s); databases: "
        f"{', '.join(DB_NAMES[k] for k in args.kinds)}"
    )
    started = time.monotonic()
    ceilings: list[dict[int, Ingest]] = []
    runs: list[ServeRun] = []
    with tempfile.TemporaryDirectory(prefix="smsbridge-ingest-") as tmp:
        bench = Bench(args, Path(tmp))
        for repeat in range(args.repeat):
            if not args.batch_only:
                ceilings.append(await bench.ceiling())
                line = ", ".join(
                    f"{c} conns {f.accepted_rate:,.0f}/s p99 {ms(f.p99)}"
                    for c, f in ceilings[-1].items()
                )
                print(f"#{repeat + 1} framework ceiling: {line}")
            for kind in args.kinds:
                for worker in (False, True):
                    run = await bench.serve(kind, worker)
                    runs.append(run)
                    print(f"#{repeat + 1} {progress(run)}")
    summary = summarize(args, ceilings, runs) if ceilings else Summary({}, {}, {}, {})
    if not ceilings:  # --batch: no ceiling, only the batch figures
        summary.batch = summarize_batch(runs)
    report(args, summary, runs)
    print(f"\n({time.monotonic() - started:,.0f} s in all)")
    if args.json:
        write_json(args, summary, ceilings, runs)
    mismatches = [r for r in runs if r.check is not None and not r.check.ok]
    if mismatches:
        print(f"{len(mismatches)} run(s) did not store every accepted message exactly once")
        return 1
    return 0


def summarize_batch(runs: list[ServeRun]) -> dict[str, Ingest]:
    labels = dict.fromkeys(r.label for r in runs if r.batch is not None)
    return {
        label: median_ingest([r.batch for r in runs if r.label == label and r.batch is not None])
        for label in labels
    }


def progress(run: ServeRun) -> str:
    parts = [
        f"{c} conns {f.accepted_rate:,.0f}/s p50 {ms(f.p50)} p99 {ms(f.p99)} "
        f"errors {f.errors} (CPU: server {f.server_cores:.2f}, client {f.client_cores:.2f})"
        for c, f in run.ingest.items()
    ]
    if run.worker_rates is not None:
        w = run.worker_rates
        parts.append(
            f"worker alone {w.alone:,.0f}/s, under load {w.during:,.0f}/s "
            f"(meanwhile {w.ingest.accepted_rate:,.0f} accepted/s)"
        )
    if run.batch is not None:
        parts.append(f"batch {run.batch.accepted_rate:,.0f} msg/s")
    elif run.batch_available is False:
        parts.append("batch endpoint not available")
    if run.check is not None:
        parts.append(run.check.describe())
    parts.append(f"seconds: {run.phases.describe()}")
    return f"{run.label}: " + "; ".join(parts)


def write_json(
    args: argparse.Namespace,
    summary: Summary,
    ceilings: list[dict[int, Ingest]],
    runs: list[ServeRun],
) -> None:
    document = {
        "machine": machine(),
        "settings": {
            "concurrency": args.concurrency,
            "seconds": args.seconds,
            "warmup": args.warmup,
            "repeat": args.repeat,
            "databases": args.kinds,
            "batch_size": args.batch_size,
            "batch_concurrency": args.batch_concurrency,
        },
        "ceiling_runs": [{str(c): asdict(f) for c, f in r.items()} for r in ceilings],
        "runs": [
            {
                "label": r.label,
                "ingest": {str(c): asdict(f) for c, f in r.ingest.items()},
                "worker": asdict(r.worker_rates) if r.worker_rates else None,
                "batch": asdict(r.batch) if r.batch else None,
                "batch_available": r.batch_available,
                "exactly_once": asdict(r.check) | {"ok": r.check.ok} if r.check else None,
                "notes": r.notes,
                "seconds": r.phases.seconds,
            }
            for r in runs
        ],
        "medians": {
            "ceiling": {str(c): asdict(f) for c, f in summary.ceiling.items()},
            "ingest": [
                {"server": label, "connections": c} | asdict(f)
                for (label, c), f in summary.ingest.items()
            ],
            "worker": [{"server": label} | asdict(w) for label, w in summary.worker.items()],
            "batch": {label: asdict(f) for label, f in summary.batch.items()},
        },
        "report": summary.lines,
    }
    args.json.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    print(f"figures written to {args.json}")


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve_ceiling:
        serve_ceiling(arguments.serve_ceiling)
        sys.exit(0)
    run_script(lambda: main(arguments))
