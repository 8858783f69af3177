"""Claiming outbox work with leases, and fenced completion, per dialect.

* **Claim**: one ``UPDATE … WHERE message_id IN (due, unleased rows) RETURNING`` statement.
  On PostgreSQL the inner select uses ``FOR UPDATE SKIP LOCKED`` so concurrent workers take
  disjoint rows without waiting; on SQLite the statement runs under the single writer lock.
  Each claim increments ``lease_token``.
* **Fenced completion**: results are applied only where ``(message_id, lease_token)`` still
  matches, so a worker whose lease expired (and whose message was re-claimed) cannot
  overwrite the newer claim's outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.storage.messages import Event
from smsbridge.storage.tables import message_events, messages, outbox, surface_credentials, surfaces


@dataclass(frozen=True)
class ClaimedMessage:
    id: str
    lease_token: int
    surface_id: str
    credential_id: str | None
    status_token: str | None
    to_number: str
    from_number: str
    body: str
    attempts: int
    status: str


@dataclass(frozen=True)
class Completion:
    """The outcome of one attempt, to apply if the lease still holds."""

    message_id: str
    lease_token: int
    status: str
    attempts: int
    events: list[Event] = field(default_factory=list)
    credential_id: str | None = None
    provider_message_id: str | None = None
    last_error: str | None = None
    sent_at: datetime | None = None
    retry_at: datetime | None = None
    """When set, the message goes back to the outbox, due then."""


async def claim_batch(
    conn: AsyncConnection, *, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[ClaimedMessage]:
    due = (
        select(outbox.c.message_id)
        .where(
            outbox.c.due_at <= now,
            or_(outbox.c.lease_owner.is_(None), outbox.c.lease_expires_at < now),
        )
        .order_by(outbox.c.due_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claimed = await conn.execute(
        update(outbox)
        .where(outbox.c.message_id.in_(due.scalar_subquery()))
        .values(
            lease_owner=owner,
            lease_expires_at=now + lease,
            lease_token=outbox.c.lease_token + 1,
        )
        .returning(outbox.c.message_id, outbox.c.lease_token)
    )
    tokens = {r.message_id: r.lease_token for r in claimed}
    if not tokens:
        return []
    ids = list(tokens)
    await conn.execute(
        update(messages)
        .where(messages.c.id.in_(ids), messages.c.status != "sending")
        .values(status="sending", updated_at=now)
    )
    rows = await conn.execute(
        select(
            messages.c.id,
            messages.c.surface_id,
            messages.c.to_number,
            messages.c.from_number,
            messages.c.body,
            messages.c.attempts,
            messages.c.status,
            surface_credentials.c.credential_id,
            surfaces.c.status_token,
        )
        .select_from(
            messages.outerjoin(surfaces, surfaces.c.id == messages.c.surface_id).outerjoin(
                surface_credentials,
                and_(
                    surface_credentials.c.surface_id == messages.c.surface_id,
                    surface_credentials.c.position == 0,
                ),
            )
        )
        .where(messages.c.id.in_(ids))
    )
    return [
        ClaimedMessage(
            id=r.id,
            lease_token=tokens[r.id],
            surface_id=r.surface_id,
            credential_id=r.credential_id,
            status_token=r.status_token,
            to_number=r.to_number,
            from_number=r.from_number,
            body=r.body,
            attempts=r.attempts,
            status=r.status,
        )
        for r in rows
    ]


def _pairs(items: Sequence[Completion]) -> list[tuple[str, int]]:
    return [(c.message_id, c.lease_token) for c in items]


async def complete_batch(
    conn: AsyncConnection, completions: Sequence[Completion], now: datetime
) -> set[str]:
    """Apply the completions whose lease still holds; returns the ids applied."""
    if not completions:
        return set()
    finished = [c for c in completions if c.retry_at is None]
    retrying = [c for c in completions if c.retry_at is not None]
    owned: set[str] = set()
    if finished:
        result = await conn.execute(
            outbox.delete()
            .where(tuple_(outbox.c.message_id, outbox.c.lease_token).in_(_pairs(finished)))
            .returning(outbox.c.message_id)
        )
        owned.update(r.message_id for r in result)
    if retrying:
        result = await conn.execute(
            update(outbox)
            .where(tuple_(outbox.c.message_id, outbox.c.lease_token).in_(_pairs(retrying)))
            .values(lease_owner=None, lease_expires_at=None)
            .returning(outbox.c.message_id)
        )
        owned_retry = {r.message_id for r in result}
        owned.update(owned_retry)
        if owned_retry:
            await conn.execute(
                update(outbox)
                .where(outbox.c.message_id == bindparam("m_id"))
                .values(due_at=bindparam("m_due")),
                [
                    {"m_id": c.message_id, "m_due": c.retry_at}
                    for c in retrying
                    if c.message_id in owned_retry
                ],
            )
    applied = [c for c in completions if c.message_id in owned]
    if not applied:
        return owned
    await conn.execute(
        update(messages)
        .where(messages.c.id == bindparam("m_id"))
        .values(
            status=bindparam("m_status"),
            attempts=bindparam("m_attempts"),
            credential_id=bindparam("m_credential"),
            provider_message_id=bindparam("m_provider_id"),
            last_error=bindparam("m_error"),
            sent_at=bindparam("m_sent_at"),
            updated_at=now,
        ),
        [
            {
                "m_id": c.message_id,
                "m_status": c.status,
                "m_attempts": c.attempts,
                "m_credential": c.credential_id,
                "m_provider_id": c.provider_message_id,
                "m_error": c.last_error,
                "m_sent_at": c.sent_at,
            }
            for c in applied
        ],
    )
    events: list[dict[str, Any]] = [e.row() for c in applied for e in c.events]
    if events:
        await conn.execute(insert(message_events), events)
    return owned


async def release(
    conn: AsyncConnection, claimed: Sequence[tuple[str, int]], now: datetime
) -> set[str]:
    """Give unstarted claims back (graceful shutdown): due now, unleased, status queued."""
    if not claimed:
        return set()
    result = await conn.execute(
        update(outbox)
        .where(tuple_(outbox.c.message_id, outbox.c.lease_token).in_(list(claimed)))
        .values(lease_owner=None, lease_expires_at=None)
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


async def renew_leases(
    conn: AsyncConnection, *, owner: str, message_ids: Sequence[str], until: datetime
) -> int:
    if not message_ids:
        return 0
    result = await conn.execute(
        update(outbox)
        .where(outbox.c.lease_owner == owner, outbox.c.message_id.in_(list(message_ids)))
        .values(lease_expires_at=until)
    )
    return int(result.rowcount)


async def next_due(conn: AsyncConnection) -> datetime | None:
    """When the earliest outbox entry falls due (for idle workers to sleep until then)."""
    found = await conn.execute(select(outbox.c.due_at).order_by(outbox.c.due_at).limit(1))
    row = found.first()
    return row.due_at if row else None
