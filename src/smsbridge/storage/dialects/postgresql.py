"""PostgreSQL: every statement that it writes its own way (for scale-out).

Concurrent writers are many: claims take disjoint rows with ``FOR UPDATE SKIP LOCKED``, name
checks take an advisory lock. The send hot path's statements are hand-written for asyncpg
(``$1`` placeholders, arrays in through ``unnest``): one round trip per claim, per
completion, per group of start marks.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

import asyncpg
import orjson
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Select,
    String,
    Table,
    bindparam,
    func,
    insert,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert

from smsbridge.domain.profiles import Profile
from smsbridge.errors import Conflict
from smsbridge.storage.dialects import postgresql_bulk as bulk
from smsbridge.storage.dialects.base import Bucket, OpenDatabase, upsert_into
from smsbridge.storage.records import (
    ClaimedMessage,
    Click,
    Completion,
    FanoutBatch,
    Lifetimes,
    link_expired,
)
from smsbridge.storage.tables import clicks, links

S = TypeVar("S", bound=Select[Any])


class PostgresqlDialect:
    name = "postgresql"
    single_writer = False

    def insert_ignore(self, table: Table) -> Insert:
        return postgresql.insert(table).on_conflict_do_nothing()

    def upsert(self, table: Table, key: Sequence[str], replace: Sequence[str]) -> Insert:
        return upsert_into(postgresql.insert, table, key, replace)

    def for_update(self, query: S) -> S:
        return query.with_for_update()

    async def lock_table(self, conn: AsyncConnection, table: Table) -> None:
        await conn.execute(select(func.pg_advisory_xact_lock(zlib.crc32(table.name.encode()))))

    def among(self, column: Any, values: Sequence[str]) -> ColumnElement[bool]:
        condition: ColumnElement[bool] = column == func.any(
            bindparam("among", list(values), type_=ARRAY(String()))
        )
        return condition

    def json_matches(self, document: Any, name: str, values: Sequence[Any]) -> ColumnElement[bool]:
        jsonb = type_coerce(document, postgresql.JSONB)
        return or_(*(jsonb.contains({name: v}) for v in values))

    async def fetch_tuples(
        self, conn: AsyncConnection, query: Select[Any]
    ) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in await conn.execute(query)]

    def time_bucket(self, column: Any, bucket: Bucket) -> Any:
        return func.date_trunc(bucket, column)

    async def claim(
        self, db: OpenDatabase, *, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> list[ClaimedMessage]:
        async with db.transaction() as conn:
            result = await conn.exec_driver_sql(_CLAIM, (now, now, limit, owner, now + lease, now))
            return [ClaimedMessage(*cast(tuple[Any, ...], row)) for row in result]

    async def complete(
        self, db: OpenDatabase, completions: Sequence[Completion], now: datetime
    ) -> set[str]:
        async with db.transaction() as conn:
            return await _complete(conn, completions, now)

    def start_marks(self, db: OpenDatabase, *, worker: str) -> PostgresqlStartMarks:
        return PostgresqlStartMarks(db, worker)

    async def write_fanout(self, db: OpenDatabase, batch: FanoutBatch) -> bool:
        try:
            return await bulk.write_fanout(db, batch)
        except (IntegrityError, asyncpg.UniqueViolationError) as exc:
            raise Conflict("another fan-out of this campaign wrote these recipients first") from exc

    async def import_profiles(
        self, db: OpenDatabase, batch: Sequence[Profile], now: datetime
    ) -> None:
        """``COPY`` into a session-lived staging table (emptied at every commit), then one
        set-based upsert from it."""
        async with db.engine.connect() as conn:
            driver = await bulk.driver_of(conn)
            # the driver's own transaction: SQLAlchemy begins one only at its first statement
            async with driver.transaction():
                await bulk.import_profiles(driver, batch, now)

    async def imported(self, db: OpenDatabase, rows: int) -> None:
        """``ANALYZE profiles`` after a large import. Without fresh statistics the planner
        takes a freshly filled table for a small one and reads a campaign's audience batches
        by sorting the whole table for each (54 ms instead of 1.3 ms per 5,000 profiles of
        200,000), until autovacuum gets to it."""
        if rows >= bulk.ANALYZE_AFTER_IMPORT:
            async with db.engine.connect() as conn:
                await conn.exec_driver_sql("ANALYZE profiles")
                await conn.commit()

    async def targeted_phones(
        self, conn: AsyncConnection, campaign_id: str, phones: Sequence[str]
    ) -> set[str]:
        """One probe of the campaign's unique index per number (``to_number = ANY(…)`` was
        planned as a scan of the campaign's messages while a fan-out was writing them: 50 ms
        per 5,000 numbers of 200,000 instead of 12)."""
        rows = await conn.exec_driver_sql(bulk.TARGETED, (list(phones), campaign_id))
        return {r[0] for r in rows}

    async def follow_link(
        self, db: OpenDatabase, code: str, click: Click, lifetimes: Lifetimes
    ) -> str | None:
        async with db.transaction() as conn:
            found = (
                await conn.execute(
                    select(
                        links.c.url,
                        links.c.message_id,
                        links.c.campaign_id,
                        links.c.surface_id,
                        links.c.created_at,
                    ).where(links.c.code == code)
                )
            ).first()
            if found is None or link_expired(
                found.surface_id, found.created_at, click.at, lifetimes
            ):
                return None
            await conn.execute(
                insert(clicks).values(
                    code=code,
                    message_id=found.message_id,
                    campaign_id=found.campaign_id,
                    surface_id=found.surface_id,
                    at=click.at,
                    user_agent=click.user_agent,
                    ip_hash=click.ip_hash,
                    is_bot=click.is_bot,
                )
            )
        return str(found.url)


def numbered(sql: str) -> str:
    """``?`` placeholders as asyncpg's ``$1, $2…``."""
    parts = sql.split("?")
    return "".join(f"{part}${i}" for i, part in enumerate(parts[:-1], start=1)) + parts[-1]


# One round trip: pick due, unleased rows (SKIP LOCKED: concurrent workers take disjoint
# batches), lease them, mark their messages ``sending`` and read what the senders need. The
# final SELECT sees the rows as they were before the CTEs' updates, which is all it reads.
# A surface's fallback credentials come as two arrays (NULL when it has none).
_CLAIM = numbered(
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


async def _complete(
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
        _COMPLETE, (*[list(column) for column in rows], now, *columns)
    )
    owned = {row[0] for row in result}
    opt_outs = [
        (c.opt_out, c.last_error)
        for c in completions
        if c.opt_out is not None and c.message_id in owned
    ]
    if opt_outs:
        await conn.exec_driver_sql(
            _SUPPRESS, [(sender, phone, now) for (sender, phone), _ in opt_outs]
        )
        await conn.exec_driver_sql(
            _CONSENT_EVENT, [(phone, sender, note, now) for (sender, phone), note in opt_outs]
        )
    return owned


# Fenced completion in one statement: the outbox rows whose lease token still matches are
# deleted (done) or released with their next due time (retry); only those messages are
# updated and get their events. A delivery report may have landed while the send was being
# recorded: it wins.
_COMPLETE = numbered(
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
_SUPPRESS = numbered(
    "INSERT INTO suppressions (sender, phone, source, keyword, created_at) "
    "VALUES (?, ?, 'provider', NULL, ?) ON CONFLICT DO NOTHING"
)
_CONSENT_EVENT = numbered(
    "INSERT INTO consent_events (phone, sender, action, source, keyword, actor, note, at) "
    "VALUES (?, ?, 'opted_out', 'provider', NULL, NULL, ?, ?)"
)


def _json(detail: dict[str, Any]) -> str:
    return orjson.dumps(detail).decode()


class PostgresqlStartMarks:
    """On a connection of its own in autocommit: one round trip per group of marks (no pool
    check-out and its ping, no BEGIN/COMMIT)."""

    def __init__(self, db: OpenDatabase, worker: str) -> None:
        self._db = db
        self._worker = worker
        self._connection: AsyncConnection | None = None

    async def mark(self, pairs: Sequence[tuple[str, int]], now: datetime) -> set[str]:
        try:
            if self._connection is None:
                connection = await self._db.engine.connect()
                self._connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            result = await self._connection.exec_driver_sql(
                _MARK_STARTED,
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


_MARK_STARTED = numbered(
    "UPDATE outbox o SET started_at = ?, started_by = ?"
    " FROM unnest(?::text[], ?::bigint[]) AS t(id, token)"
    " WHERE o.message_id = t.id AND o.lease_token = t.token"
    " RETURNING o.message_id"
)
