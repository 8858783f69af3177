"""Webhooks: how fast a real ``smsbridge serve`` takes in delivery reports and inbound STOPs
over HTTP while its worker is sending (issue 22).

    python benchmarks/webhooks.py [--quick] [--repeat 3] [--only sqlite|pg] [--pg URL]
                                  [--concurrency 32,256] [--seconds 3] [--warmup 1]
                                  [--max-window 15] [--max-round 45] [--pool 150000]
                                  [--drain 10000] [--provider-latency 0] [--no-background]
                                  [--json out.json]

Set-up, once per database (a fresh SQLite file, a fresh PostgreSQL database), kept for every
repeat: ``smsbridge serve`` (worker in process) and a fake Infobip (aiohttp, a process of its
own: ``POST /{lane}/sms/3/messages`` answered as Infobip's SMS API v3 answers, with a new
``messageId`` per message: ``lane-0``, ``lane-1``…). Three Infobip-preset credentials on it
(lanes ``pool``, ``replies``, ``bg``), created through the API with the master key, and a
surface on each:

* ``pool`` (transactional): ``--pool`` messages enqueued and sent by the worker; once all are
  ``sent``, their provider ids are read back from the database (they must be exactly
  ``pool-0`` … ``pool-<N-1>``). The delivery-report loads report on them; after each load the
  delivered ones are put back to ``sent`` (their ``delivered`` events deleted), so every report
  measured is a first report on a message awaiting one;
* ``replies`` (marketing): receives the inbound STOPs (a new number each), each of which
  suppresses the number and queues the opt-out reply the worker then sends;
* ``bg`` (transactional): the background stream. While each load runs, its outbox is kept
  stocked (at least 1,000 messages due), so the worker sends all along ("sent/s meanwhile":
  what it sent inside the window). ``--no-background``: the worker idle, for comparison.

Per repeat, in this order (so that drift hits every kind alike):

1. The framework ceiling: a trivial FastAPI app defined here (``POST /hooks/{kind}/{token}``:
   the body parsed with orjson as smsbridge reads it, every item's ``messageId`` picked,
   answered 200 with a small JSON body), served by uvicorn as ``smsbridge serve`` serves
   (``uvicorn.run(app, host, port, log_level)``; ``process_tuning.settle()`` once up).
2. Per database, the drain: ``--drain`` reports (10,000) in 100-report bodies posted at 32
   connections (the worker sending meanwhile); the delivered count is polled from the last
   answer on: the time until it reaches them all is the apply lag ("0" when the first look
   already saw them all: every report was applied before it was answered).
3. Per database, from a load process of its own (``serve_harness.run_load``: aiohttp,
   keep-alive, 32 and 256 connections): Infobip bodies (``{"results": [...]}``, read with the
   preset's mappings) of one item and of 100 items, to ``POST /hooks/status/{token}``
   (``DELIVERED``) and ``POST /hooks/inbound/{token}`` (``STOP``). A warm-up (``--warmup`` and
   until every connection had an answer), then a measured window: items/s counts the items of
   the 2xx answers completed inside it, p50/p99 are their latencies. The window lasts
   ``--seconds``, or two rounds (every connection answered once) when a round is longer, up to
   ``--max-window``; a load whose round would take over ``--max-round`` (from the rates
   measured so far) is not run, and says so. After each load, "2xx means applied" is checked:
   the delivered messages (or the inbound rows) equal the items answered 2xx, warm-up included.

Prints medians over ``--repeat`` runs, their ratio to the ceiling for the same bodies at the
same connections, CPU use, and PASS/MISS against the targets of the issue (never a failure
for a miss); exits non-zero when a run broke "2xx means applied".
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
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import aiohttp
import orjson
from common import machine
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
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
    free_port,
    postgres_reachable,
    run_load,
    run_script,
    scratch_database,
    stop_process,
    wait_ready,
)
from sqlalchemy import delete, func, select, update

SCRIPT = Path(__file__).resolve()
Shape = Literal["reports", "stops"]
SHAPES: dict[Shape, str] = {"reports": "delivery reports", "stops": "inbound STOPs"}
HOOKS: dict[Shape, str] = {"reports": "status", "stops": "inbound"}
PER_REQUEST = (1, 100)
TARGET_CONNECTIONS = 32
TARGET_SHARE_OF_CEILING = 0.5
TARGET_P99 = 0.050
TARGET_DRAIN = 2.0
SENDER = "Acme"
BODY = "Your parcel 12345 is on its way: https://acme.example/t/abc"
STOP_FIRST_N = 10_000_000
"""STOP numbers are ``336<n>`` (Infobip sends digits, no "+"): +33 6 10 00 00 00 onwards."""
JSON_ONLY = {"Content-Type": "application/json"}

# One item of each webhook, as Infobip posts them (``{n}``: the load's counter).
REPORT_ITEM = orjson.dumps(
    {
        "bulkId": "bench-bulk",
        "messageId": "pool-{n}",
        "to": "33612345678",
        "sentAt": "2026-12-02T10:00:00.000+0000",
        "doneAt": "2026-12-02T10:00:02.000+0000",
        "smsCount": 1,
        "mccMnc": "20801",
        "price": {"pricePerMessage": 0.01, "currency": "EUR"},
        "status": {
            "groupId": 3,
            "groupName": "DELIVERED",
            "id": 5,
            "name": "DELIVERED_TO_HANDSET",
            "description": "Message delivered to handset",
        },
        "error": {
            "groupId": 0,
            "groupName": "OK",
            "id": 0,
            "name": "NO_ERROR",
            "description": "No Error",
            "permanent": False,
        },
    }
).decode()
STOP_ITEM = orjson.dumps(
    {
        "messageId": "mo-{n}",
        "from": "336{n}",
        "to": SENDER,
        "text": "STOP",
        "cleanText": "STOP",
        "keyword": "STOP",
        "receivedAt": "2026-12-02T10:00:00.000+0000",
        "smsCount": 1,
        "price": {"pricePerMessage": 0, "currency": "EUR"},
    }
).decode()
ITEMS: dict[Shape, str] = {"reports": REPORT_ITEM, "stops": STOP_ITEM}


def report_body(numbers: range) -> bytes:
    """The delivery report webhook on ``pool-<n>`` for each ``n`` in ``numbers``."""
    items = ",".join(REPORT_ITEM.replace("{n}", str(n)) for n in numbers)
    return f'{{"results":[{items}]}}'.encode()


# --- the fake Infobip and the framework ceiling (each served in a process of its own) -------


def serve_fake_infobip(port: int, latency: float) -> None:
    """``POST /{lane}/sms/3/messages`` answered as Infobip's SMS API v3 does (``messages[0]``:
    ``messageId``, ``status``, ``destination``), ids ``<lane>-0``, ``<lane>-1``… in arrival
    order."""
    from aiohttp import web

    counters: dict[str, itertools.count[int]] = {}

    async def send(request: web.Request) -> web.Response:
        lane = request.match_info["lane"]
        sent = orjson.loads(await request.read())
        destination = sent["messages"][0]["destinations"][0]["to"]
        number = next(counters.setdefault(lane, itertools.count()))
        if latency:
            await asyncio.sleep(latency)
        answer = {
            "bulkId": f"{lane}-bulk",
            "messages": [
                {
                    "messageId": f"{lane}-{number}",
                    "status": {
                        "groupId": 1,
                        "groupName": "PENDING",
                        "id": 26,
                        "name": "PENDING_ACCEPTED",
                        "description": "Message sent to next instance",
                    },
                    "destination": destination,
                }
            ],
        }
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{lane}/sms/3/messages", send)
    app.router.add_get("/healthz", healthz)
    try:
        import uvloop
    except ImportError:
        loop = None
    else:
        loop = uvloop.new_event_loop()
    web.run_app(
        app, host="127.0.0.1", port=port, access_log=None, print=None, backlog=1024, loop=loop
    )


def ceiling_app() -> FastAPI:
    """What FastAPI costs per webhook on this machine, with the body parsed as smsbridge parses
    it (orjson) and every item's id picked, and nothing else."""
    from smsbridge import process_tuning

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        process_tuning.settle()  # as create_app(settle=True) does for `serve`
        yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/hooks/{kind}/{token}")
    async def hook(kind: str, token: str, request: Request) -> JSONResponse:
        document = orjson.loads(await request.body())
        ids = [item["messageId"] for item in document["results"]]
        return JSONResponse({"received": len(ids), "applied": len(ids), "ignored": 0})

    return app


def serve_ceiling(port: int) -> None:
    """The ceiling server, as ``smsbridge serve`` runs uvicorn (cli/server.py)."""
    import uvicorn

    uvicorn.run(ceiling_app(), host="127.0.0.1", port=port, log_level="warning")


# --- figures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Intake:
    """One load: one webhook shape, items per request, number of connections."""

    shape: Shape
    per_request: int
    connections: int
    item_rate: float
    """Items (reports or STOPs) of the 2xx answers completed inside the window, per second."""
    p50: float
    p99: float
    errors: int
    server_cores: float
    client_cores: float
    machine_cores: float
    sent_rate: float | None = None
    """Messages the in-process worker sent per second inside the window (background stream)."""
    applied_ok: bool | None = None
    """Whether the items answered 2xx (warm-up included) are exactly those applied."""
    overflow: int = 0
    """Reports for ids beyond the pool (parked as unknown: the pool was too small)."""
    window: float = 0.0
    """Seconds the measured window lasted."""

    @property
    def request_rate(self) -> float:
        return self.item_rate / self.per_request


@dataclass(frozen=True)
class Drain:
    reports: int
    per_request: int
    connections: int
    post_seconds: float
    """From the first request to the last answer."""
    lag: float
    """From the last answer until the database showed every report applied (0: the first look
    after the last answer already did)."""
    looks: int
    errors: int
    sent_rate: float

    @property
    def rate(self) -> float:
        return self.reports / self.post_seconds if self.post_seconds else 0.0


LoadKey = tuple[Shape, int, int]
"""(shape, items per request, connections)."""


@dataclass
class ServeRun:
    kind: Kind
    worker: str
    """What the in-process worker did during the loads: ``sending`` or ``idle``."""
    intake: dict[LoadKey, Intake] = field(default_factory=dict)
    drain: Drain | None = None
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"smsbridge serve (worker {self.worker}), {DB_NAMES[self.kind]}"

    @property
    def broken(self) -> bool:
        return any(f.applied_ok is False for f in self.intake.values())


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (Linux ``/proc/stat``; 0 elsewhere)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


@dataclass
class Window:
    """Taken as the load's window opens and closes: monotonic and wall-clock time, the
    server's CPU, the machine's busy CPU."""

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

    def per_second(self, index: Literal[2, 3]) -> float:
        if self.seconds <= 0:
            return 0.0
        return (self.samples[-1][index] - self.samples[0][index]) / self.seconds


def intake_of(shape: Shape, per: int, connections: int, load: LoadResult, window: Window) -> Intake:
    return Intake(
        shape,
        per,
        connections,
        load.accepted_rate * per,
        load.percentile(0.50),
        load.percentile(0.99),
        load.window_errors,
        window.per_second(2),
        load.client_cores,
        window.per_second(3),
        window=window.seconds,
    )


# --- the benchmark's own look at the server's database -------------------------------------


class Direct:
    """Reads and set-up writes on the server's database, through smsbridge's storage."""

    def __init__(self, services: Any) -> None:
        from smsbridge.storage import tables

        self.services = services
        self.t = tables

    async def scalar(self, query: Any) -> int:
        async with self.services.db.read() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def count(self, surface_id: str, *statuses: str) -> int:
        m = self.t.messages.c
        query = select(func.count()).where(m.surface_id == surface_id)
        if statuses:
            query = query.where(m.status.in_(statuses))
        return await self.scalar(query)

    async def outbox_size(self) -> int:
        return await self.scalar(select(func.count()).select_from(self.t.outbox))

    async def enqueue(self, surface_id: str, count: int, first_n: int) -> None:
        from smsbridge.services.message_rows import SendRequest

        for start in range(0, count, 1000):
            await self.services.messages.enqueue_many(
                [
                    SendRequest(surface_id, f"+3362{(first_n + n) % 10**7:07d}", BODY)
                    for n in range(start, min(count, start + 1000))
                ]
            )

    async def wait_outbox_empty(self, limit: float) -> bool:
        deadline = time.monotonic() + limit
        while await self.outbox_size():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    async def pool_ids(self, surface_id: str) -> list[str]:
        m = self.t.messages.c
        query = select(m.provider_message_id).where(m.surface_id == surface_id, m.status == "sent")
        async with self.services.db.read() as conn:
            return [row[0] for row in await conn.execute(query)]

    async def sent_times(self, surface_id: str) -> list[datetime]:
        m = self.t.messages.c
        query = select(m.sent_at).where(m.surface_id == surface_id, m.sent_at.is_not(None))
        async with self.services.db.read() as conn:
            return sorted(row[0] for row in await conn.execute(query))

    async def sent_between(self, surface_id: str, start: datetime, end: datetime) -> int:
        m = self.t.messages.c
        return await self.scalar(
            select(func.count()).where(
                m.surface_id == surface_id, m.sent_at >= start, m.sent_at < end
            )
        )

    async def parked(self) -> int:
        return await self.scalar(select(func.count()).select_from(self.t.early_delivery_reports))

    async def inbound(self, surface_id: str) -> int:
        i = self.t.inbound_messages.c
        return await self.scalar(select(func.count()).where(i.surface_id == surface_id))

    async def recycle(self, surface_id: str) -> None:
        """The pool's messages back to ``sent`` (their ``delivered`` events gone) and parked
        reports forgotten: ready for another load of first reports."""
        m, e = self.t.messages, self.t.message_events
        pool = select(m.c.id).where(m.c.surface_id == surface_id).scalar_subquery()
        async with self.services.db.transaction() as conn:
            await conn.execute(
                update(m)
                .where(m.c.surface_id == surface_id, m.c.status != "sent")
                .values(status="sent", delivered_at=None, last_error=None)
            )
            await conn.execute(delete(e).where(e.c.message_id.in_(pool), e.c.type == "delivered"))
            await conn.execute(delete(self.t.early_delivery_reports))


class Feeder:
    """Keeps at least ``LOW_WATER`` messages due in the outbox (adding ``CHUNK`` when it holds
    fewer), so that the worker sends all along a load, without a pile left behind."""

    LOW_WATER = 1000
    CHUNK = 1000

    def __init__(self, db: Direct, surface_id: str) -> None:
        self.db = db
        self.surface_id = surface_id
        self.next_n = 0
        self.ran_dry = False
        self._stopped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.enabled = True

    async def _run(self) -> None:
        while not self._stopped.is_set():
            size = await self.db.outbox_size()
            if size == 0:
                self.ran_dry = True
            if size < self.LOW_WATER:
                await self.db.enqueue(self.surface_id, self.CHUNK, self.next_n)
                self.next_n += self.CHUNK
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), 0.05)

    async def __aenter__(self) -> Feeder:
        if not self.enabled:
            return self
        await self.db.enqueue(self.surface_id, self.CHUNK, self.next_n)
        self.next_n += self.CHUNK
        self._stopped.clear()
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stopped.set()
        if self._task is not None:
            await self._task
            self._task = None


# --- one database: a server, a fake Infobip, the pool (kept across repeats) ---------------


@dataclass
class Site:
    """One database's ``smsbridge serve`` (worker in process), its fake Infobip, the
    benchmark's own services on the database, the three surfaces and the pool."""

    kind: Kind
    server: Server
    db: Direct
    feeder: Feeder
    pool: str
    stops: str
    status_url: str
    inbound_url: str
    pool_sent_rate: float = 0.0
    next_stop: int = STOP_FIRST_N
    notes: list[str] = field(default_factory=list)


async def infobip_surface(
    session: aiohttp.ClientSession, fake: str, lane: str, message_type: str
) -> dict[str, Any]:
    """An Infobip-preset credential on the fake's ``lane`` and a surface on it, through the
    API with the master key."""
    credential = {
        "preset": "infobip",
        "name": f"infobip-{lane}",
        "provider_url": f"{fake}/{lane}/sms/3/messages",
        "auth": {"token": "bench-infobip-key"},
    }
    async with session.post("/api/v1/credentials", json=credential) as response:
        created = await response.json()
        if response.status != 201:
            raise RuntimeError(f"credential not created ({response.status}): {created}")
    surface = {
        "name": lane,
        "credential_id": created["id"],
        "sender": SENDER,
        "message_type": message_type,
    }
    async with session.post("/api/v1/surfaces", json=surface) as response:
        made: dict[str, Any] = await response.json()
        if response.status != 201:
            raise RuntimeError(f"surface not created ({response.status}): {made}")
    return made


@contextlib.asynccontextmanager
async def open_site(kind: Kind, args: argparse.Namespace, directory: Path) -> AsyncIterator[Site]:
    from smsbridge.container import build_services

    fake_port = free_port()
    fake_url = f"http://127.0.0.1:{fake_port}"
    fake = subprocess.Popen(
        [
            *(sys.executable, str(SCRIPT), "--fake-infobip", str(fake_port)),
            *("--provider-latency", str(args.provider_latency)),
        ]
    )
    CHILDREN.add(fake)
    try:
        await wait_ready(f"{fake_url}/healthz", fake)
        async with (
            scratch_database(kind, directory, pg=args.pg, name="webhooks") as url,
            Server(url, directory, worker=True, allow_private_provider_urls="true") as server,
        ):
            services = await build_services(server.settings())
            try:
                db = Direct(services)
                async with aiohttp.ClientSession(server.base_url, headers=AUTH) as session:
                    pool = await infobip_surface(session, fake_url, "pool", "transactional")
                    stops = await infobip_surface(session, fake_url, "replies", "marketing")
                    background = await infobip_surface(session, fake_url, "bg", "transactional")
                feeder = Feeder(db, background["id"])
                feeder.enabled = not args.no_background
                site = Site(
                    kind,
                    server,
                    db,
                    feeder,
                    pool["id"],
                    stops["id"],
                    pool["status_webhook_url"],
                    stops["inbound_webhook_url"],
                )
                site.pool_sent_rate = await fill_pool(site, args.pool)
                yield site
            finally:
                await services.close()
    finally:
        await stop_process(fake)


async def fill_pool(site: Site, size: int) -> float:
    """``size`` messages sent by the worker, their provider ids read back and checked; the
    worker's send rate on them (between 10 % and 90 % of the sends)."""
    db = site.db
    await db.enqueue(site.pool, size, 0)
    deadline = time.monotonic() + 900
    while await db.count(site.pool, "queued", "sending", "scheduled"):
        if time.monotonic() > deadline:
            raise RuntimeError("the pool was not sent within 900 s")
        await asyncio.sleep(0.2)
    ids = set(await db.pool_ids(site.pool))
    missing = {f"pool-{n}" for n in range(size)} - ids
    if missing or len(ids) != size:
        site.notes.append(
            f"pool: {len(ids):,} sent of {size:,}, {len(missing):,} ids missing (a send "
            "retried?): reports on those are parked as unknown"
        )
    times = await db.sent_times(site.pool)
    low, high = len(times) // 10, len(times) * 9 // 10
    seconds = (times[high] - times[low]).total_seconds() if len(times) > 10 else 0
    return (high - low) / seconds if seconds > 0 else 0.0


def spec(
    url: str, shape: Shape, per: int, connections: int, window: float, warmup: float, **extra: Any
) -> LoadSpec:
    item = ITEMS[shape]
    return LoadSpec(
        url=url,
        body=item if per > 1 else f'{{"results":[{item}]}}',
        concurrency=connections,
        seconds=window,
        warmup=warmup,
        headers=dict(JSON_ONLY),
        accept="none",
        batch_size=per if per > 1 else None,
        batch_key="results",
        **extra,
    )


@dataclass(frozen=True)
class Plan:
    """How long one load's warm-up and window last, or why it is not run. A round (every
    connection answered once) takes about ``connections * per / rate`` seconds: the window
    lasts two rounds at least (at most ``--max-window``), and a load whose round would take
    over ``--max-round`` seconds is not run (at a few dozen STOPs a second, 25,600 STOPs in
    flight would take minutes per round, and every request would time out)."""

    window: float
    warmup: float
    rate: float | None
    """The items/s expected (from earlier loads), or None when nothing is known yet."""
    skipped: str | None = None
    requests: int | None = None
    """The window also ends once this many requests completed in it (the pool's limit)."""


class Bench:
    def __init__(self, args: argparse.Namespace, directory: Path) -> None:
        self.args = args
        self.dir = directory
        self.rates: dict[tuple[str, LoadKey], float] = {}
        """Items/s last measured per server and load: what the next plans go by."""

    def loads(self) -> list[LoadKey]:
        return [
            (shape, per, connections)
            for shape in SHAPES
            for per in PER_REQUEST
            for connections in self.args.concurrency
        ]

    def plan(self, server: str, key: LoadKey) -> Plan:
        shape, per, connections = key
        alike = [key, *((shape, per, c) for c in self.args.concurrency)]
        if shape == "stops":  # each STOP costs about the same, however many in a body
            alike.append((shape, 1, connections))
        rate = next((r for k in alike if (r := self.rates.get((server, k)))), None)
        if rate is None:
            return Plan(self.args.seconds, self.args.warmup, None)
        in_flight = connections * per
        round_seconds = in_flight / rate
        if round_seconds > self.args.max_round:
            return Plan(
                0,
                0,
                rate,
                f"not run: {in_flight:,} items in flight at ~{rate:,.0f}/s make a round of "
                f"~{round_seconds:,.0f} s (over --max-round {self.args.max_round:g})",
            )
        window = min(self.args.max_window, max(self.args.seconds, 2 * round_seconds))
        if shape == "stops" or server == "ceiling":
            return Plan(window, self.args.warmup, rate)
        # Reports must stay within the pool. The warm-up lasts until every connection has had
        # an answer: the early ones post again meanwhile, so two rounds or more complete in it
        # (three, seen on PostgreSQL, whose groups commit four at a time and are not answered
        # in arrival order); one more is in flight at the end of the window.
        budget = self.args.pool - 4 * in_flight - self.args.warmup * rate
        if budget < in_flight:
            return Plan(0, 0, rate, f"not run: a pool of {self.args.pool:,} is too small")
        requests = max(connections, int(min(window * rate, budget) / per))
        return Plan(window, self.args.warmup, rate, requests=requests)

    async def ceiling(self) -> dict[LoadKey, Intake]:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--serve-ceiling", str(port)],
            env={k: v for k, v in os.environ.items() if not k.startswith("SMSBRIDGE_")},
        )
        CHILDREN.add(process)
        figures: dict[LoadKey, Intake] = {}
        try:
            await wait_ready(f"http://127.0.0.1:{port}/healthz", process)
            for key in self.loads():
                shape, per, connections = key
                plan = self.plan("ceiling", key)
                url = f"http://127.0.0.1:{port}/hooks/{HOOKS[shape]}/t"
                load_spec = spec(
                    url, shape, per, connections, plan.window, plan.warmup, first_n=STOP_FIRST_N
                )
                window = Window(process.pid)
                load = await run_load(
                    load_spec, self.dir, on_window_start=window.sample, on_window_end=window.sample
                )
                figures[key] = intake_of(shape, per, connections, load, window)
                self.rates[("ceiling", key)] = figures[key].item_rate
        finally:
            await stop_process(process)
        return figures

    async def measure(self, site: Site) -> ServeRun:
        run = ServeRun(site.kind, "idle" if self.args.no_background else "sending")
        clock = time.monotonic()
        run.drain = await self.drain(site)
        run.seconds["drain"] = time.monotonic() - clock
        drained: LoadKey = ("reports", run.drain.per_request, run.drain.connections)
        self.rates.setdefault((site.kind, drained), run.drain.rate)  # a first estimate
        clock = time.monotonic()
        for key in self.loads():
            shape, per, connections = key
            plan = self.plan(site.kind, key)
            if plan.skipped is not None:
                run.notes.append(
                    f"{SHAPES[shape]}, {per}/request, {connections} conns: {plan.skipped}"
                )
                if plan.rate is not None:  # what the loads planned after this one go by
                    self.rates.setdefault((site.kind, key), plan.rate)
                continue
            if shape == "reports":
                figure = await self.reports(site, key, plan)
            else:
                figure = await self.stops(site, key, plan)
            run.intake[key] = figure
            self.rates[(site.kind, key)] = figure.item_rate
            if figure.overflow:
                run.notes.append(
                    f"{figure.overflow:,} reports beyond the pool of {self.args.pool:,} at "
                    f"{per}/request, {connections} conns (parked as unknown): raise --pool"
                )
            if not await site.db.wait_outbox_empty(300):
                run.notes.append("the outbox did not empty within 300 s after a load")
        run.seconds["loads"] = time.monotonic() - clock
        if site.feeder.ran_dry:
            run.notes.append("the outbox ran dry during a load: sent/s is a floor")
            site.feeder.ran_dry = False
        return run

    async def window_load(
        self, site: Site, load_spec: LoadSpec
    ) -> tuple[LoadResult, Window, float]:
        """The load, the worker sending all along; (load, window, sent/s inside it)."""
        window = Window(site.server.pid)
        async with site.feeder:
            load = await run_load(
                load_spec, self.dir, on_window_start=window.sample, on_window_end=window.sample
            )
        sent = await site.db.sent_between(site.feeder.surface_id, *window.wall)
        return load, window, sent / window.seconds if window.seconds else 0.0

    async def reports(self, site: Site, key: LoadKey, plan: Plan) -> Intake:
        _, per, connections = key
        load_spec = spec(
            site.status_url,
            "reports",
            per,
            connections,
            plan.window,
            plan.warmup,
            requests=plan.requests,
        )
        load, window, sent = await self.window_load(site, load_spec)
        answered = load.statuses.get("200", 0) * per
        delivered = await site.db.count(site.pool, "delivered")
        parked = await site.db.parked()
        await site.db.recycle(site.pool)
        figure = intake_of("reports", per, connections, load, window)
        errors = sum(n for status, n in load.statuses.items() if status != "200")
        applied = delivered + parked
        ok = applied == answered if errors == 0 else applied >= answered
        return replace(figure, sent_rate=sent, applied_ok=ok, overflow=parked)

    async def stops(self, site: Site, key: LoadKey, plan: Plan) -> Intake:
        _, per, connections = key
        before = await site.db.inbound(site.stops)
        load_spec = spec(
            site.inbound_url,
            "stops",
            per,
            connections,
            plan.window,
            plan.warmup,
            first_n=site.next_stop,
        )
        load, window, sent = await self.window_load(site, load_spec)
        site.next_stop += load.requests_sent * per
        answered = load.statuses.get("200", 0) * per
        stored = await site.db.inbound(site.stops) - before
        figure = intake_of("stops", per, connections, load, window)
        errors = sum(n for status, n in load.statuses.items() if status != "200")
        ok = stored == answered if errors == 0 else stored >= answered
        return replace(figure, sent_rate=sent, applied_ok=ok)

    async def drain(self, site: Site) -> Drain:
        """``--drain`` reports in 100-report bodies at 32 connections; then the delivered count,
        polled until it has them all."""
        count, per, connections = self.args.drain, 100, TARGET_CONNECTIONS
        bodies = [
            report_body(range(first, min(count, first + per))) for first in range(0, count, per)
        ]
        errors = 0
        window = Window(site.server.pid)
        connector = aiohttp.TCPConnector(limit=connections)
        async with (
            site.feeder,
            aiohttp.ClientSession(connector=connector, headers=JSON_ONLY) as session,
        ):
            queue = iter(bodies)

            async def connection() -> None:
                nonlocal errors
                for body in queue:
                    async with session.post(site.status_url, data=body) as response:
                        await response.read()
                        errors += response.status != 200

            await window.sample()
            started = time.perf_counter()
            await asyncio.gather(*(connection() for _ in range(connections)))
            last_answer = time.perf_counter()
            await window.sample()
            looks = 1
            while await site.db.count(site.pool, "delivered") < count:
                if time.perf_counter() - last_answer > 60:
                    break
                looks += 1
                await asyncio.sleep(0.005)
            seen = time.perf_counter()
        sent = await site.db.sent_between(site.feeder.surface_id, *window.wall)
        await site.db.recycle(site.pool)
        return Drain(
            count,
            per,
            connections,
            last_answer - started,
            0.0 if looks == 1 else seen - last_answer,
            looks,
            errors,
            sent / window.seconds if window.seconds else 0.0,
        )


# --- reporting -----------------------------------------------------------------------------


def ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    return f"{seconds * 1000:,.1f} ms" if seconds < 1 else f"{seconds:,.2f} s"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def median_intake(figures: list[Intake]) -> Intake:
    first = figures[0]
    sent = [f.sent_rate for f in figures if f.sent_rate is not None]
    checks = [f.applied_ok for f in figures if f.applied_ok is not None]
    return Intake(
        first.shape,
        first.per_request,
        first.connections,
        median([f.item_rate for f in figures]),
        median([f.p50 for f in figures]),
        median([f.p99 for f in figures]),
        sum(f.errors for f in figures),
        median([f.server_cores for f in figures]),
        median([f.client_cores for f in figures]),
        median([f.machine_cores for f in figures]),
        median(sent) if sent else None,
        all(checks) if checks else None,
        sum(f.overflow for f in figures),
        median([f.window for f in figures]),
    )


def median_drain(drains: list[Drain]) -> Drain:
    return Drain(
        drains[0].reports,
        drains[0].per_request,
        drains[0].connections,
        median([d.post_seconds for d in drains]),
        median([d.lag for d in drains]),
        max(d.looks for d in drains),
        sum(d.errors for d in drains),
        median([d.sent_rate for d in drains]),
    )


@dataclass
class Summary:
    ceiling: dict[LoadKey, Intake]
    intake: dict[tuple[Kind, LoadKey], Intake]
    drain: dict[Kind, tuple[Drain, float]]
    """Per database: the medians, and the worst lag of any run."""
    pool_rate: dict[Kind, float]
    lines: list[str] = field(default_factory=list)

    def out(self, line: str = "") -> None:
        print(line)
        self.lines.append(line)


def summarize(
    ceilings: list[dict[LoadKey, Intake]], runs: list[ServeRun], pool_rate: dict[Kind, float]
) -> Summary:
    ceiling = {
        key: median_intake([c[key] for c in ceilings if key in c])
        for key in dict.fromkeys(k for c in ceilings for k in c)
    }
    intake = {}
    drain = {}
    for kind in dict.fromkeys(r.kind for r in runs):
        mine = [r for r in runs if r.kind == kind]
        for key in dict.fromkeys(k for r in mine for k in r.intake):
            intake[(kind, key)] = median_intake([r.intake[key] for r in mine if key in r.intake])
        drains = [r.drain for r in mine if r.drain is not None]
        if drains:
            drain[kind] = (median_drain(drains), max(d.lag for d in drains))
    return Summary(ceiling, intake, drain, pool_rate)


def report(
    args: argparse.Namespace,
    summary: Summary,
    runs: list[ServeRun],
    site_notes: list[tuple[Kind, str]],
) -> None:
    out = summary.out
    repeats = f"median of {args.repeat} run{'s' if args.repeat > 1 else ''}"
    for shape, title in SHAPES.items():
        out(
            f"\n{title}: POST /hooks/{HOOKS[shape]}/{{token}}, Infobip bodies ({repeats}; "
            f"after a warm-up of {args.warmup:g} s and until every connection had an answer)"
        )
        out(
            "| server | per request | conns | items/s | requests/s | of ceiling | p50 | p99 "
            "| errors | window | CPU server | CPU client | CPU machine | sent/s meanwhile "
            "| 2xx = applied |"
        )
        out("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for (s, per, c), f in summary.ceiling.items():
            if s == shape:
                out(
                    f"| framework ceiling | {per} | {c} | {f.item_rate:,.0f} | "
                    f"{f.request_rate:,.0f} | 100% | {ms(f.p50)} | {ms(f.p99)} | {f.errors} | "
                    f"{f.window:.1f} s | {cpu(f)} | - | - |"
                )
        for (kind, (s, per, c)), f in summary.intake.items():
            if s == shape:
                share = f.item_rate / summary.ceiling[(s, per, c)].item_rate
                sent = "-" if f.sent_rate is None else f"{f.sent_rate:,.0f}"
                ok = {True: "yes", False: "NO", None: "-"}[f.applied_ok]
                out(
                    f"| {DB_NAMES[kind]} | {per} | {c} | {f.item_rate:,.0f} | "
                    f"{f.request_rate:,.0f} | {share:.1%} | {ms(f.p50)} | {ms(f.p99)} | "
                    f"{f.errors} | {f.window:.1f} s | {cpu(f)} | {sent} | {ok} |"
                )
    out(
        f"CPU in cores (the machine has {os.cpu_count()}): the server process, the load "
        "process, and all that the machine had busy (PostgreSQL, the fake Infobip, this "
        "script, and any other work)."
    )
    if summary.drain:
        out(f"\nDrain: {args.drain:,} reports in 100-report bodies, 32 conns ({repeats})")
        out(
            "| server | posted in | reports/s | apply lag after the last answer (worst) "
            "| errors | sent/s meanwhile |"
        )
        out("|---|---:|---:|---:|---:|---:|")
        for kind, (d, worst) in summary.drain.items():
            out(
                f"| {DB_NAMES[kind]} | {ms(d.post_seconds)} | {d.rate:,.0f} | "
                f"{ms(d.lag)} ({ms(worst)}) | {d.errors} | {d.sent_rate:,.0f} |"
            )
    out(
        "\nWorker send rate while filling the pool (no load): "
        + ", ".join(f"{DB_NAMES[k]} {rate:,.0f}/s" for k, rate in summary.pool_rate.items())
    )
    notes = list(site_notes)
    notes += [(run.kind, note) for run in runs for note in run.notes]
    for kind, note in dict.fromkeys(notes):
        out(f"  {DB_NAMES[kind]}: note: {note}")
    targets(args, summary)


def cpu(f: Intake) -> str:
    return f"{f.server_cores:.2f} | {f.client_cores:.2f} | {f.machine_cores:.2f}"


def targets(args: argparse.Namespace, summary: Summary) -> None:
    out = summary.out
    worker = "worker idle (--no-background)" if args.no_background else "worker sending"
    out("\nTargets (issue 22, while the worker is sending):")
    for kind in args.kinds:
        name = DB_NAMES[kind]
        for shape, title in SHAPES.items():
            for per in PER_REQUEST:
                key = (shape, per, TARGET_CONNECTIONS)
                f = summary.intake.get((kind, key))
                if f is None or key not in summary.ceiling:
                    continue
                share = f.item_rate / summary.ceiling[key].item_rate
                out(
                    f"  {name}, {title}, {per}/request, {TARGET_CONNECTIONS} conns, {worker}: "
                    f"{share:.1%} of the ceiling (≥ 50 %): "
                    f"{verdict(share >= TARGET_SHARE_OF_CEILING)}; p99 {ms(f.p99)} (≤ 50 ms): "
                    f"{verdict(f.p99 <= TARGET_P99)}"
                )
        if kind in summary.drain:
            _, worst = summary.drain[kind]
            out(
                f"  {name}, {args.drain:,} reports in 100-report bodies all applied "
                f"{ms(worst)} after the last answer, worst run (≤ 2 s): "
                f"{verdict(worst <= TARGET_DRAIN)}"
            )


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
    parser.add_argument(
        "--pg", default=DEFAULT_PG, help=f"PostgreSQL server (default {DEFAULT_PG})"
    )
    parser.add_argument(
        "--pool", type=int, default=150_000, help="messages sent first, for the reports"
    )
    parser.add_argument("--drain", type=int, default=10_000, help="reports of the drain check")
    parser.add_argument(
        "--max-window", type=float, default=15.0, help="the longest a window is stretched to"
    )
    parser.add_argument(
        "--max-round",
        type=float,
        default=45.0,
        help="a load is not run when one answer on every connection would take longer",
    )
    parser.add_argument(
        "--provider-latency", type=float, default=0.0, help="seconds the fake Infobip waits"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 1 repeat, 1.5 s windows, a small pool"
    )
    parser.add_argument(
        "--no-background",
        action="store_true",
        help="no background stream: the worker idle during the loads (for comparison)",
    )
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--serve-ceiling", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--fake-infobip", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.seconds, args.warmup, args.pool = 1, 1.5, 0.5, 30_000
        args.max_window, args.max_round = 6.0, 20.0
    args.pool = max(args.pool, args.drain)
    args.kinds = [args.only] if args.only else ["sqlite", "pg"]
    return args


async def main(args: argparse.Namespace) -> int:
    print(machine())
    if "pg" in args.kinds and not await postgres_reachable(args.pg):
        print(f"PostgreSQL not reachable at {args.pg}: PostgreSQL runs skipped")
        args.kinds = [k for k in args.kinds if k != "pg"]
    print(
        f"connections {','.join(map(str, args.concurrency))}; window {args.seconds:g} s after "
        f"{args.warmup:g} s warm-up; {args.repeat} repeat(s); pool {args.pool:,}; databases: "
        f"{', '.join(DB_NAMES[k] for k in args.kinds)}"
    )
    started = time.monotonic()
    ceilings: list[dict[LoadKey, Intake]] = []
    runs: list[ServeRun] = []
    with tempfile.TemporaryDirectory(prefix="smsbridge-webhooks-") as tmp:
        bench = Bench(args, Path(tmp))
        async with AsyncExitStack() as stack:
            sites: dict[Kind, Site] = {}
            for kind in args.kinds:
                opened = time.monotonic()
                sites[kind] = await stack.enter_async_context(open_site(kind, args, Path(tmp)))
                print(
                    f"{DB_NAMES[kind]}: serve up, pool of {args.pool:,} sent at "
                    f"{sites[kind].pool_sent_rate:,.0f}/s ({time.monotonic() - opened:,.0f} s)"
                )
            for repeat in range(args.repeat):
                ceilings.append(await bench.ceiling())
                print(f"#{repeat + 1} framework ceiling: {progress(ceilings[-1])}")
                for site in sites.values():
                    run = await bench.measure(site)
                    runs.append(run)
                    lag = "-" if run.drain is None else f"drain lag {ms(run.drain.lag)}"
                    seconds = ", ".join(f"{k} {v:.0f}" for k, v in run.seconds.items())
                    print(f"#{repeat + 1} {run.label}: {progress(run.intake)}; {lag}; s: {seconds}")
                    if args.json:  # what is measured so far survives an interrupted run
                        pool_rates = {kind: site.pool_sent_rate for kind, site in sites.items()}
                        write_json(args, summarize(ceilings, runs, pool_rates), ceilings, runs)
            pool_rates = {kind: site.pool_sent_rate for kind, site in sites.items()}
            site_notes = [(kind, note) for kind, site in sites.items() for note in site.notes]
    summary = summarize(ceilings, runs, pool_rates)
    report(args, summary, runs, site_notes)
    print(f"\n({time.monotonic() - started:,.0f} s in all)")
    if args.json:
        write_json(args, summary, ceilings, runs)
    broken = [r for r in runs if r.broken]
    if broken:
        print(f"{len(broken)} run(s) answered 2xx for items not applied")
        return 1
    return 0


def progress(figures: dict[LoadKey, Intake]) -> str:
    return "; ".join(
        f"{shape} {per}/req {c} conns {f.item_rate:,.0f}/s p99 {ms(f.p99)}"
        for (shape, per, c), f in figures.items()
    )


def write_json(
    args: argparse.Namespace,
    summary: Summary,
    ceilings: list[dict[LoadKey, Intake]],
    runs: list[ServeRun],
) -> None:
    def keyed(figures: dict[LoadKey, Intake]) -> list[dict[str, Any]]:
        return [asdict(f) for f in figures.values()]

    document = {
        "machine": machine(),
        "settings": {
            "concurrency": args.concurrency,
            "seconds": args.seconds,
            "warmup": args.warmup,
            "repeat": args.repeat,
            "databases": args.kinds,
            "pool": args.pool,
            "drain": args.drain,
            "provider_latency": args.provider_latency,
            "max_window": args.max_window,
            "max_round": args.max_round,
        },
        "pool_sent_rate": summary.pool_rate,
        "ceiling_runs": [keyed(c) for c in ceilings],
        "runs": [
            {
                "database": r.kind,
                "worker": r.worker,
                "intake": keyed(r.intake),
                "drain": asdict(r.drain) if r.drain else None,
                "notes": r.notes,
            }
            for r in runs
        ],
        "report": summary.lines,
    }
    args.json.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    if summary.lines:
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve_ceiling:
        serve_ceiling(arguments.serve_ceiling)
        sys.exit(0)
    if arguments.fake_infobip:
        serve_fake_infobip(arguments.fake_infobip, arguments.provider_latency)
        sys.exit(0)
    run_script(lambda: main(arguments))
