"""Gauges read when Prometheus scrapes: the workers' state in memory, and the database's work.

* :class:`WorkerGauges` reads this process's workers (send limits, sends in flight, breaker
  states): dict copies, no I/O.
* :class:`DatabaseGauges` reads the outbox and the messages of recent campaigns, at most
  once per :attr:`~DatabaseGauges.max_age` seconds, on a read connection. A scrape waits for a
  read at most :attr:`~DatabaseGauges.timeout` seconds and is otherwise answered with the
  previous figures (their age is a gauge too); one read at a time, never cancelled half-way
  (a slow database makes the figures older, never piles up queries or stalls the sends).

What each query costs (docs/operations.md, "What the database gauges cost"): the outbox holds
only pending work (a row per message not yet finished); the campaign query reads the
covering report index of campaigns running or finished in the last hour. Nothing counts the
whole messages table.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import ColumnElement, case, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.storage.database import Database
from smsbridge.storage.tables import campaigns, messages, outbox

log = logging.getLogger("smsbridge.metrics")

BREAKER_STATES = ("closed", "open", "half_open")
OUTBOX_STATES = ("due", "leased", "scheduled")


class WorkerState(Protocol):
    """What the gauges read of a worker (:class:`smsbridge.delivery.worker.Worker`)."""

    def send_concurrency(self) -> dict[str, int]: ...
    @property
    def breakers(self) -> BreakerStates: ...


class BreakerStates(Protocol):
    def states(self) -> Mapping[str, str]: ...


class WorkerGauges(Collector):
    """Send limits and breaker states of this process's workers, by credential (a process
    usually runs one worker: limits are summed, the least healthy breaker shows). Sends in
    flight are a gauge the send slots keep (:class:`~smsbridge.observability.metrics.Metrics`)."""

    def __init__(self, workers: Callable[[], Iterable[WorkerState]]) -> None:
        self._workers = workers

    def describe(self) -> Iterator[Metric]:
        """The families :meth:`collect` yields, without reading the workers."""
        return self._families(())

    def collect(self) -> Iterator[Metric]:
        return self._families(self._workers())

    def _families(self, workers: Iterable[WorkerState]) -> Iterator[Metric]:
        limits = GaugeMetricFamily(
            "smsbridge_send_concurrency_limit",
            "Sends a credential may have in flight now (follows the provider's latency).",
            labels=["credential"],
        )
        breakers = GaugeMetricFamily(
            "smsbridge_breaker_state",
            "1 for the state each credential's circuit breaker is in (closed, open, half_open).",
            labels=["credential", "state"],
        )
        limit_sum: dict[str, int] = {}
        states: dict[str, str] = {}
        for worker in workers:
            for key, value in worker.send_concurrency().items():
                limit_sum[key] = limit_sum.get(key, 0) + value
            for key, state in worker.breakers.states().items():
                if states.get(key, "closed") == "closed":  # the least healthy one shows
                    states[key] = state
        for key, value in sorted(limit_sum.items()):
            limits.add_metric([key], value)
        for key in sorted(limit_sum.keys() | states.keys()):
            current = states.get(key, "closed")
            for state in BREAKER_STATES:
                breakers.add_metric([key, state], 1.0 if state == current else 0.0)
        yield limits
        yield breakers


@dataclass
class Snapshot:
    """What one read of the database found."""

    taken: float
    """``time.monotonic()`` when the read began."""
    outbox: dict[str, int] = field(default_factory=dict)
    expired_leases: int = 0
    oldest_due_age: float = 0.0
    campaign_messages: dict[tuple[str, str], int] = field(default_factory=dict)


RECENT_CAMPAIGNS = timedelta(hours=1)
"""Campaigns finished this recently still count in ``smsbridge_campaign_messages``."""


async def read_snapshot(conn: AsyncConnection, now: datetime, taken: float) -> Snapshot:
    """The outbox by state, its oldest due message, and the messages of recent campaigns by
    status and credential."""
    snapshot = Snapshot(taken)
    free = or_(outbox.c.lease_owner.is_(None), outbox.c.lease_expires_at < now)
    held = outbox.c.lease_owner.is_not(None)

    def when(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    row = (
        await conn.execute(
            select(
                when(free & (outbox.c.due_at <= now)),
                when(held & (outbox.c.lease_expires_at >= now)),
                when(free & (outbox.c.due_at > now)),
                when(held & (outbox.c.lease_expires_at < now)),
            )
        )
    ).one()
    due, leased, scheduled, expired = (int(v) for v in row)
    snapshot.outbox = {"due": due, "leased": leased, "scheduled": scheduled}
    snapshot.expired_leases = expired
    # walks ix_outbox_due_at from the oldest row, stops at the first one free to claim
    oldest = await conn.scalar(
        select(outbox.c.due_at)
        .where(outbox.c.due_at <= now, free)
        .order_by(outbox.c.due_at)
        .limit(1)
    )
    if oldest is not None:
        snapshot.oldest_due_age = max(0.0, (now - oldest).total_seconds())
    since = now - RECENT_CAMPAIGNS
    recent = select(campaigns.c.id).where(
        or_(
            campaigns.c.status == "running",
            campaigns.c.completed_at >= since,
            campaigns.c.cancelled_at >= since,
        )
    )
    rows = await conn.execute(
        select(messages.c.status, messages.c.credential_id, func.count())
        .where(messages.c.campaign_id.in_(recent))
        .group_by(messages.c.status, messages.c.credential_id)
    )
    for status, credential_id, count in rows:
        snapshot.campaign_messages[(status, credential_id or "none")] = int(count)
    return snapshot


class DatabaseGauges(Collector):
    """The outbox and recent campaigns, read at most every ``max_age`` seconds (module doc)."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], datetime],
        max_age: float = 5.0,
        timeout: float = 2.0,
    ) -> None:
        self._db = db
        self._clock = clock
        self.max_age = max_age
        self.timeout = timeout
        self._snapshot: Snapshot | None = None
        self._reading: asyncio.Task[Snapshot] | None = None
        self.failures = 0

    async def refresh(self) -> None:
        """Read the database again when the figures are older than ``max_age``; wait for the
        read at most ``timeout`` seconds (it goes on by itself past that)."""
        known = self._snapshot
        if known is not None and time.monotonic() - known.taken < self.max_age:
            return
        reading = self._reading
        if reading is None:
            reading = self._reading = asyncio.create_task(self._read(), name="metrics-database")
            reading.add_done_callback(self._read_done)
        await asyncio.wait({reading}, timeout=self.timeout)

    async def _read(self) -> Snapshot:
        taken = time.monotonic()
        async with self._db.read() as conn:
            if self._db.dialect == "postgresql":  # the server gives up on a stuck statement
                milliseconds = int(max(self.timeout, 1.0) * 5000)
                await conn.execute(text(f"SET LOCAL statement_timeout = {milliseconds}"))
            return await read_snapshot(conn, self._clock(), taken)

    async def close(self) -> None:
        reading = self._reading
        if reading is not None:
            await asyncio.wait({reading})

    def _read_done(self, task: asyncio.Task[Snapshot]) -> None:
        self._reading = None
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            self._snapshot = task.result()
            return
        self.failures += 1
        log.warning("reading the metrics' database figures failed: %s", type(error).__name__)

    def describe(self) -> Iterator[Metric]:
        """The families :meth:`collect` yields, without reading the database."""
        return self._families(Snapshot(time.monotonic()), self.failures)

    def collect(self) -> Iterator[Metric]:
        snapshot = self._snapshot
        if snapshot is None:  # never read yet: the failures alone
            return self._families(None, self.failures)
        return self._families(snapshot, self.failures)

    @staticmethod
    def _families(snapshot: Snapshot | None, failed: int) -> Iterator[Metric]:
        failures = CounterMetricFamily(
            "smsbridge_metrics_database_failures",
            "Reads of the database gauges that failed (the previous figures are shown).",
        )
        failures.add_metric([], failed)
        yield failures
        if snapshot is None:
            return
        age = GaugeMetricFamily(
            "smsbridge_metrics_database_age_seconds",
            "How old the database-derived figures below are.",
        )
        age.add_metric([], time.monotonic() - snapshot.taken)
        depth = GaugeMetricFamily(
            "smsbridge_outbox_messages",
            "Messages waiting in the outbox: due (claimable now), leased (claimed by a "
            "worker), scheduled (due later: send_at, quiet hours or a retry's backoff).",
            labels=["state"],
        )
        for state in OUTBOX_STATES:
            depth.add_metric([state], snapshot.outbox.get(state, 0))
        expired = GaugeMetricFamily(
            "smsbridge_outbox_expired_leases",
            "Outbox rows whose lease expired unreleased (their worker died or stalls); "
            "counted among the due.",
        )
        expired.add_metric([], snapshot.expired_leases)
        oldest = GaugeMetricFamily(
            "smsbridge_outbox_oldest_due_age_seconds",
            "How long the oldest claimable message has been due (0 when none is).",
        )
        oldest.add_metric([], snapshot.oldest_due_age)
        recent = GaugeMetricFamily(
            "smsbridge_campaign_messages",
            "Messages of the campaigns running or finished within the last hour, by status "
            "and the credential of their last attempt (none: not attempted yet).",
            labels=["status", "credential"],
        )
        for (status, credential_id), count in sorted(snapshot.campaign_messages.items()):
            recent.add_metric([status, credential_id], count)
        yield from (age, depth, expired, oldest, recent)
