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

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, cast

import orjson
from sqlalchemy import ColumnElement, and_, insert, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.storage import claim_sqlite
from smsbridge.storage.database import Database
from smsbridge.storage.messages import Event
from smsbridge.storage.tables import (
    message_events,
    messages,
    outbox,
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
    fallback_ids: list[str] | None = None
    """The surface's fallback credentials, in order (None when it has none)."""
    fallback_versions: list[datetime] | None = None
    """Their ``updated_at``, like ``credential_version``."""
    started_at: datetime | None = None
    """Set when an at-most-once attempt started under an earlier lease and its outcome was
    never recorded (its worker died): the message must not be sent again."""
    started_by: str | None = None
    """The worker that started that attempt."""


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
            if message.fallback_ids:
                _sqlite_fallbacks(message, versions)
            if message.started_at is not None:  # rare: after a crash
                text = cast(str, message.started_at)
                message.started_at = datetime.fromisoformat(text).replace(tzinfo=UTC)
        return claimed
    async with db.transaction() as conn:
        return await _claim_postgresql(conn, owner=owner, now=now, lease=lease, limit=limit)


def _sqlite_fallbacks(message: ClaimedMessage, versions: dict[str | None, datetime | None]) -> None:
    """SQLite hands the fallbacks over as one JSON list of (position, id, version) rows, in no
    set order (before 3.44 its aggregates take no ORDER BY): sorted and split here."""
    rows = cast(list[tuple[int, str, str]] | str, message.fallback_ids)
    if isinstance(rows, str):  # a SQLite that drops the JSON subtype across the subquery
        rows = orjson.loads(rows)
    ordered = sorted(rows)
    message.fallback_ids = [credential_id for _, credential_id, _ in ordered]
    found: list[datetime] = []
    for _, _, text in ordered:
        if text not in versions:
            versions[text] = datetime.fromisoformat(text).replace(tzinfo=UTC)
        found.append(cast(datetime, versions[text]))
    message.fallback_versions = found


def numbered(sql: str) -> str:
    """``?`` placeholders as asyncpg's ``$1, $2…``."""
    parts = sql.split("?")
    return "".join(f"{part}${i}" for i, part in enumerate(parts[:-1], start=1)) + parts[-1]


# One round trip: pick due, unleased rows (SKIP LOCKED: concurrent workers take disjoint
# batches), lease them, mark their messages ``sending`` and read what the senders need. The
# final SELECT sees the rows as they were before the CTEs' updates, which is all it reads.
# A surface's fallback credentials come as two arrays (NULL when it has none).
_PG_CLAIM = numbered(
    "WITH due AS ("
    " SELECT message_id FROM outbox"
    " WHERE due_at <= ? AND (lease_owner IS NULL OR lease_expires_at < ?)"
    " ORDER BY due_at LIMIT ? FOR UPDATE SKIP LOCKED"
    "), leased AS ("
    " UPDATE outbox o SET lease_owner = ?, lease_expires_at = ?, lease_token = o.lease_token + 1"
    " FROM due WHERE o.message_id = due.message_id"
    " RETURNING o.message_id, o.lease_token, o.due_at, o.started_at, o.started_by"
    "), marked AS ("
    " UPDATE messages m SET status = 'sending', updated_at = ?"
    " FROM leased WHERE m.id = leased.message_id AND m.status <> 'sending'"
    ")"
    " SELECT m.id, leased.lease_token, m.surface_id, sc.credential_id, s.status_token,"
    " m.to_number, m.from_number, m.body, m.attempts, 'sending',"
    " (NOT m.ignore_opt_out AND EXISTS (SELECT 1 FROM suppressions x"
    "  WHERE x.sender = m.from_number AND x.phone = m.to_number)),"
    " c.updated_at, fb.ids, fb.versions, leased.started_at, leased.started_by"
    " FROM leased JOIN messages m ON m.id = leased.message_id"
    " LEFT JOIN surfaces s ON s.id = m.surface_id"
    " LEFT JOIN surface_credentials sc ON sc.surface_id = m.surface_id AND sc.position = 0"
    " LEFT JOIN credentials c ON c.id = sc.credential_id"
    " LEFT JOIN LATERAL (SELECT array_agg(f.credential_id ORDER BY f.position) AS ids,"
    "  array_agg(fc.updated_at ORDER BY f.position) AS versions"
    "  FROM surface_credentials f JOIN credentials fc ON fc.id = f.credential_id"
    "  WHERE f.surface_id = m.surface_id AND f.position > 0) fb ON true"
    # senders start in due order: a STOP's reply goes out before a later START's
    " ORDER BY leased.due_at, m.created_at, m.id"
)


async def _claim_postgresql(
    conn: AsyncConnection, *, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[ClaimedMessage]:
    result = await conn.exec_driver_sql(_PG_CLAIM, (now, now, limit, owner, now + lease, now))
    return [ClaimedMessage(*cast(tuple[Any, ...], row)) for row in result]


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
    """One round trip for the whole batch (arrays in, a fixed statement the driver prepares
    once); provider opt-outs, rare, follow in two more statements."""
    rows = list(
        zip(
            *(
                (
                    c.message_id,
                    c.lease_token,
                    c.status,
                    c.attempts,
                    c.credential_id,
                    c.provider_message_id,
                    c.last_error,
                    c.sent_at,
                    c.retry_at,
                )
                for c in completions
            ),
            strict=True,
        )
    )
    events = [
        (e.message_id, e.at, e.type, None if e.detail is None else _json(e.detail))
        for c in completions
        for e in c.events
    ]
    columns = [list(column) for column in zip(*events, strict=True)] if events else [[]] * 4
    result = await conn.exec_driver_sql(
        _PG_COMPLETE, (*[list(column) for column in rows], now, *columns)
    )
    owned = {row[0] for row in result}
    opt_outs = [
        (c.opt_out, c.last_error)
        for c in completions
        if c.opt_out is not None and c.message_id in owned
    ]
    if opt_outs:
        await conn.exec_driver_sql(
            _PG_SUPPRESS, [(sender, phone, now) for (sender, phone), _ in opt_outs]
        )
        await conn.exec_driver_sql(
            _PG_CONSENT_EVENT, [(phone, sender, note, now) for (sender, phone), note in opt_outs]
        )
    return owned


# Fenced completion in one statement: the outbox rows whose lease token still matches are
# deleted (done) or released with their next due time (retry); only those messages are
# updated and get their events. A delivery report may have landed while the send was being
# recorded: it wins.
_PG_COMPLETE = numbered(
    "WITH input AS ("
    " SELECT * FROM unnest(?::text[], ?::bigint[], ?::text[], ?::int[], ?::text[], ?::text[],"
    " ?::text[], ?::timestamptz[], ?::timestamptz[])"
    " AS t(id, token, status, attempts, credential_id, provider_message_id, last_error,"
    " sent_at, retry_at)"
    "), done AS ("
    " DELETE FROM outbox o USING input i"
    " WHERE o.message_id = i.id AND o.lease_token = i.token AND i.retry_at IS NULL"
    " RETURNING o.message_id"
    "), again AS ("
    " UPDATE outbox o SET lease_owner = NULL, lease_expires_at = NULL, due_at = i.retry_at,"
    " started_at = NULL, started_by = NULL"
    " FROM input i"
    " WHERE o.message_id = i.id AND o.lease_token = i.token AND i.retry_at IS NOT NULL"
    " RETURNING o.message_id"
    "), owned AS (SELECT message_id FROM done UNION ALL SELECT message_id FROM again"
    "), changed AS ("
    " UPDATE messages m SET"
    " status = CASE WHEN m.status IN ('delivered', 'undelivered') THEN m.status"
    " ELSE i.status END,"
    " attempts = i.attempts, credential_id = i.credential_id,"
    " provider_message_id = i.provider_message_id, last_error = i.last_error,"
    " sent_at = i.sent_at, updated_at = ?"
    " FROM input i JOIN owned ON owned.message_id = i.id WHERE m.id = i.id"
    "), logged AS ("
    " INSERT INTO message_events (message_id, at, type, detail)"
    " SELECT e.message_id, e.at, e.type, e.detail::jsonb"
    " FROM unnest(?::text[], ?::timestamptz[], ?::text[], ?::text[]) WITH ORDINALITY"
    " AS e(message_id, at, type, detail, n)"
    " WHERE e.message_id IN (SELECT message_id FROM owned) ORDER BY e.n"
    ")"
    " SELECT message_id FROM owned"
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
        self._db = db
        self._worker = worker
        self._connection: AsyncConnection | None = None

    async def mark(self, pairs: Sequence[tuple[str, int]], now: datetime) -> set[str]:
        """The ids of ``pairs`` (message_id, lease_token) marked, committed when this returns."""
        if not pairs:
            return set()
        if self._db.dialect == "sqlite":
            return await self._db.sqlite_write(
                partial(claim_sqlite.mark_started, pairs=pairs, worker=self._worker, now=now)
            )
        try:
            if self._connection is None:
                connection = await self._db.engine.connect()
                self._connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            result = await self._connection.exec_driver_sql(
                _PG_MARK_STARTED,
                (now, self._worker, [m for m, _ in pairs], [t for _, t in pairs]),
            )
            return {row[0] for row in result}
        except BaseException:
            await self.close()  # a broken connection is replaced on the next mark
            raise

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()


_PG_MARK_STARTED = numbered(
    "UPDATE outbox o SET started_at = ?, started_by = ?"
    " FROM unnest(?::text[], ?::bigint[]) AS t(id, token)"
    " WHERE o.message_id = t.id AND o.lease_token = t.token"
    " RETURNING o.message_id"
)


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
