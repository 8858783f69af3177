"""Claiming outbox work with leases, and fenced completion.

* **Claim**: one ``UPDATE … WHERE message_id IN (due, unleased rows) RETURNING`` statement.
  On PostgreSQL the inner select uses ``FOR UPDATE SKIP LOCKED`` so concurrent workers take
  disjoint rows without waiting; on SQLite the statement runs under the single writer lock.
  Each claim increments ``lease_token``.
* **Fenced completion**: results are applied only where ``(message_id, lease_token)`` still
  matches, so a worker whose lease expired (and whose message was re-claimed) cannot
  overwrite the newer claim's outcome.

The hot path's statements (claim, complete, start marks) are each dialect's own
(``storage.dialects``); releasing and renewing leases are written once, here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, insert, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.storage.database import Database
from smsbridge.storage.messages import Event
from smsbridge.storage.records import ClaimedMessage as ClaimedMessage
from smsbridge.storage.records import Completion as Completion
from smsbridge.storage.tables import message_events, messages, outbox


async def claim_batch(
    db: Database, *, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[ClaimedMessage]:
    """Lease up to ``limit`` due messages to ``owner``, which must be unique to this claim
    (the batch is found again by owner and expiry). One transaction."""
    if limit < 1:  # LIMIT 0 is "none", but SQLite reads a negative LIMIT as "no limit"
        return []
    return await db.dialect_ops.claim(db, owner=owner, now=now, lease=lease, limit=limit)


def _fenced(pairs: Sequence[tuple[str, int]]) -> ColumnElement[bool]:
    """Rows whose (message_id, lease_token) is one of ``pairs``.

    The plain ``message_id IN`` lets SQLite use the primary key; it scans the whole table
    for a row-value ``IN (VALUES …)`` alone.
    """
    return and_(
        outbox.c.message_id.in_([m for m, _ in pairs]),
        tuple_(outbox.c.message_id, outbox.c.lease_token).in_(list(pairs)),
    )


def _pairs(items: Sequence[Completion]) -> list[tuple[str, int]]:
    return [(c.message_id, c.lease_token) for c in items]


async def complete_batch(
    db: Database, completions: Sequence[Completion], now: datetime
) -> set[str]:
    """Apply the completions whose lease still holds, in one transaction; returns the ids
    applied."""
    if not completions:
        return set()
    return await db.dialect_ops.complete(db, completions, now)


async def release(
    conn: AsyncConnection, claimed: Sequence[tuple[str, int]], now: datetime
) -> set[str]:
    """Give unstarted claims back (graceful shutdown): due now, unleased, status queued."""
    if not claimed:
        return set()
    result = await conn.execute(
        update(outbox)
        .where(_fenced(claimed))
        .values(lease_owner=None, lease_expires_at=None, started_at=None, started_by=None)
        .returning(outbox.c.message_id)
    )
    released = {r.message_id for r in result}
    if released:
        await conn.execute(
            update(messages)
            .where(messages.c.id.in_(released))
            .values(status="queued", updated_at=now)
        )
        await conn.execute(
            insert(message_events),
            [Event(m, now, "released", {"reason": "worker shutdown"}).row() for m in released],
        )
    return released


class StartMarkWriter:
    """Writes start marks (``started_at``/``started_by`` on outbox rows whose lease still
    holds) in one statement per group, as fast as the database allows: on PostgreSQL on a
    connection of its own in autocommit (one round trip: no pool check-out and its ping, no
    BEGIN/COMMIT), on SQLite as one ``UPDATE … RETURNING`` on the hot-path thread."""

    def __init__(self, db: Database, *, worker: str) -> None:
        self._marks = db.dialect_ops.start_marks(db, worker=worker)

    async def mark(self, pairs: Sequence[tuple[str, int]], now: datetime) -> set[str]:
        """The ids of ``pairs`` (message_id, lease_token) marked, committed when this returns."""
        if not pairs:
            return set()
        return await self._marks.mark(pairs, now)

    async def close(self) -> None:
        await self._marks.close()


async def renew_leases(
    conn: AsyncConnection, leases: Sequence[tuple[str, int]], until: datetime
) -> int:
    """Extend the leases still held, fenced by (message_id, lease_token)."""
    if not leases:
        return 0
    result = await conn.execute(
        update(outbox).where(_fenced(leases)).values(lease_expires_at=until)
    )
    return int(result.rowcount)
