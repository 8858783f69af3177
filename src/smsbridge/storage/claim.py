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
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, cast

import orjson
from sqlalchemy import ColumnElement, and_, bindparam, exists, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.storage import claim_sqlite
from smsbridge.storage.database import Database
from smsbridge.storage.messages import Event
from smsbridge.storage.tables import (
    credentials,
    message_events,
    messages,
    outbox,
    suppressions,
    surface_credentials,
    surfaces,
)

# The records of the send hot path are plain slotted dataclasses, not frozen ones: a frozen
# dataclass's __init__ costs several times more, once per message.


@dataclass(slots=True)
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
    suppressed: bool
    """The number opted out of this sender (checked at claim: nothing is sent)."""
    credential_version: datetime | None
    """The credential's ``updated_at``: its cached compiled form is used while this matches."""


@dataclass(slots=True)
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
    opt_out: tuple[str, str] | None = None
    """(sender, number) to suppress: the provider said the recipient opted out."""


async def claim_batch(
    db: Database, *, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[ClaimedMessage]:
    """Lease up to ``limit`` due messages to ``owner``, which must be unique to this claim
    (the batch is found again by owner and expiry). One transaction."""
    if limit < 1:  # LIMIT 0 is "none", but SQLite reads a negative LIMIT as "no limit"
        return []
    if db.dialect == "sqlite":
        rows = await db.sqlite_write(
            partial(claim_sqlite.claim, owner=owner, now=now, lease=lease, limit=limit)
        )
        # the credential version arrives as SQLite's text form: parsed once per credential
        versions: dict[str | None, datetime | None] = {None: None}
        claimed = [ClaimedMessage(*row) for row in rows]
        for message in claimed:
            message.suppressed = bool(message.suppressed)
        for message in claimed:
            text = cast(str | None, message.credential_version)
            if text is not None and text not in versions:
                versions[text] = datetime.fromisoformat(text).replace(tzinfo=UTC)
            message.credential_version = versions[text]
        return claimed
    async with db.transaction() as conn:
        return await _claim_postgresql(conn, owner=owner, now=now, lease=lease, limit=limit)


async def _claim_postgresql(
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
        .with_for_update(skip_locked=True)
    )
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
    # This claim's rows are the ones leased to us until exactly this instant: selecting them
    # so avoids sending hundreds of ids back as parameters, twice.
    batch = select(outbox.c.message_id).where(
        outbox.c.lease_owner == owner, outbox.c.lease_expires_at == now + lease
    )
    await conn.execute(
        update(messages)
        .where(messages.c.id.in_(batch.scalar_subquery()), messages.c.status != "sending")
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
            credentials.c.updated_at,
            and_(
                messages.c.ignore_opt_out.is_(False),
                exists().where(
                    suppressions.c.sender == messages.c.from_number,
                    suppressions.c.phone == messages.c.to_number,
                ),
            ).label("suppressed"),
        )
        .select_from(
            messages.outerjoin(surfaces, surfaces.c.id == messages.c.surface_id)
            .outerjoin(
                surface_credentials,
                and_(
                    surface_credentials.c.surface_id == messages.c.surface_id,
                    surface_credentials.c.position == 0,
                ),
            )
            .outerjoin(credentials, credentials.c.id == surface_credentials.c.credential_id)
        )
        .where(messages.c.id.in_(batch.scalar_subquery()))
    )
    return [
        ClaimedMessage(
            message_id,
            tokens[message_id],
            surface_id,
            credential_id,
            status_token,
            to_number,
            from_number,
            body,
            attempts,
            status,
            suppressed,
            version,
        )
        for (
            message_id,
            surface_id,
            to_number,
            from_number,
            body,
            attempts,
            status,
            credential_id,
            status_token,
            version,
            suppressed,
        ) in rows
    ]


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
    if db.dialect == "sqlite":
        return await db.sqlite_write(
            partial(claim_sqlite.complete, completions=completions, now=now)
        )
    async with db.transaction() as conn:
        return await _complete_postgresql(conn, completions, now)


async def _complete_postgresql(
    conn: AsyncConnection, completions: Sequence[Completion], now: datetime
) -> set[str]:
    finished = [c for c in completions if c.retry_at is None]
    retrying = [c for c in completions if c.retry_at is not None]
    owned: set[str] = set()
    if finished:
        result = await conn.execute(
            outbox.delete().where(_fenced(_pairs(finished))).returning(outbox.c.message_id)
        )
        owned.update(r.message_id for r in result)
    if retrying:
        result = await conn.execute(
            update(outbox)
            .where(_fenced(_pairs(retrying)))
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
    # The two statements below run once per message sent: they are written for the driver
    # directly (executemany with plain tuples), which skips SQLAlchemy's per-row parameter
    # processing, the largest cost of recording in the send hot path.
    await conn.exec_driver_sql(
        _PG_UPDATE_MESSAGE,
        [
            (
                c.status,
                c.attempts,
                c.credential_id,
                c.provider_message_id,
                c.last_error,
                c.sent_at,
                now,
                c.message_id,
            )
            for c in applied
        ],
    )
    events = [
        (e.message_id, e.at, e.type, None if e.detail is None else _json(e.detail))
        for c in applied
        for e in c.events
    ]
    if events:
        await conn.exec_driver_sql(_PG_INSERT_EVENT, events)
    opt_outs = [(c.opt_out, c.last_error) for c in applied if c.opt_out is not None]
    if opt_outs:
        await conn.exec_driver_sql(
            _PG_SUPPRESS, [(sender, phone, now) for (sender, phone), _ in opt_outs]
        )
        await conn.exec_driver_sql(
            _PG_CONSENT_EVENT, [(phone, sender, note, now) for (sender, phone), note in opt_outs]
        )
    return owned


def numbered(sql: str) -> str:
    """``?`` placeholders as asyncpg's ``$1, $2…``."""
    parts = sql.split("?")
    return "".join(f"{part}${i}" for i, part in enumerate(parts[:-1], start=1)) + parts[-1]


# A delivery report may have landed while the send was being recorded: it wins.
_PG_UPDATE_MESSAGE = numbered(
    "UPDATE messages SET status = CASE WHEN status IN ('delivered', 'undelivered') THEN status "
    "ELSE ? END, attempts = ?, credential_id = ?, provider_message_id = ?, "
    "last_error = ?, sent_at = ?, updated_at = ? WHERE id = ?"
)
_PG_SUPPRESS = numbered(
    "INSERT INTO suppressions (sender, phone, source, keyword, created_at) "
    "VALUES (?, ?, 'provider', NULL, ?) ON CONFLICT DO NOTHING"
)
_PG_CONSENT_EVENT = numbered(
    "INSERT INTO consent_events (phone, sender, action, source, keyword, actor, note, at) "
    "VALUES (?, ?, 'opted_out', 'provider', NULL, NULL, ?, ?)"
)
_PG_INSERT_EVENT = numbered(
    "INSERT INTO message_events (message_id, at, type, detail) VALUES (?, ?, ?, ?)"
)


def _json(detail: dict[str, Any]) -> str:
    return orjson.dumps(detail).decode()


async def release(
    conn: AsyncConnection, claimed: Sequence[tuple[str, int]], now: datetime
) -> set[str]:
    """Give unstarted claims back (graceful shutdown): due now, unleased, status queued."""
    if not claimed:
        return set()
    result = await conn.execute(
        update(outbox)
        .where(_fenced(claimed))
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
    conn: AsyncConnection, leases: Sequence[tuple[str, int]], until: datetime
) -> int:
    """Extend the leases still held, fenced by (message_id, lease_token)."""
    if not leases:
        return 0
    result = await conn.execute(
        update(outbox).where(_fenced(leases)).values(lease_expires_at=until)
    )
    return int(result.rowcount)
