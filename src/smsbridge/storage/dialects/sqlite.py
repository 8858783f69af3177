"""SQLite: every statement that it writes its own way (the embedded default).

SQLite runs one writer at a time, stores times as text (naive UTC) and has JSON functions but
no arrays. The send hot path's transactions (claim, complete, start marks, fan-out, link
follow) each run as one call in the hot-path thread (:meth:`Database.sqlite_write`), with the
statements of ``sqlite_outbox`` and ``sqlite_fanout``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar, cast

import orjson
from sqlalchemy import (
    JSON,
    ColumnElement,
    Select,
    String,
    Table,
    and_,
    bindparam,
    func,
    or_,
    select,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert

from smsbridge.domain.profiles import Profile
from smsbridge.storage.dialects import sqlite_fanout, sqlite_outbox
from smsbridge.storage.dialects.base import Bucket, OpenDatabase, upsert_into
from smsbridge.storage.records import (
    ClaimedMessage,
    Click,
    Completion,
    FanoutBatch,
    Lifetimes,
    link_expired,
)
from smsbridge.storage.tables import messages

S = TypeVar("S", bound=Select[Any])

# SQLite stores times as text, "YYYY-MM-DD HH:MM:SS.ffffff" in UTC: a bucket is a prefix of
# it, far cheaper per row than strftime().
BUCKET_PREFIX = {"minute": 16, "hour": 13, "day": 10}


class SqliteDialect:
    name = "sqlite"
    single_writer = True

    def insert_ignore(self, table: Table) -> Insert:
        return sqlite.insert(table).on_conflict_do_nothing()

    def upsert(self, table: Table, key: Sequence[str], replace: Sequence[str]) -> Insert:
        return upsert_into(sqlite.insert, table, key, replace)

    def for_update(self, query: S) -> S:
        return query  # one writer at a time: a write transaction already excludes the others

    async def lock_table(self, conn: AsyncConnection, table: Table) -> None:
        return None  # one writer at a time (BEGIN IMMEDIATE)

    def among(self, column: Any, values: Sequence[str]) -> ColumnElement[bool]:
        listed = orjson.dumps(list(values)).decode()
        each = func.json_each(bindparam("among", listed, type_=String())).table_valued("value")
        condition: ColumnElement[bool] = column.in_(select(each.c.value).scalar_subquery())
        return condition

    def json_matches(self, document: Any, name: str, values: Sequence[Any]) -> ColumnElement[bool]:
        value = func.json_extract(document, f'$."{name}"')
        kind = func.json_type(document, f'$."{name}"')
        # json_extract gives 1/0 for true/false: the JSON type keeps booleans apart from numbers.
        conditions = []
        for v in values:
            if isinstance(v, bool):
                conditions.append(kind == ("true" if v else "false"))
            elif isinstance(v, str):
                conditions.append(and_(kind == "text", value == v))
            else:
                conditions.append(and_(kind.in_(("integer", "real")), value == v))
        return or_(*conditions)

    async def fetch_tuples(
        self, conn: AsyncConnection, query: Select[Any]
    ) -> list[tuple[Any, ...]]:
        # The rows as ONE row of JSON, decoded at once: row-by-row fetching through the
        # driver thread, plus decoding each JSON document, cost more than the query.
        rows = query.subquery()
        folded = select(
            func.json_group_array(
                func.json_array(*(func.json(c) if isinstance(c.type, JSON) else c for c in rows.c))
            )
        )
        document = (await conn.execute(folded)).scalar_one()
        return [tuple(row) for row in orjson.loads(document)]

    def time_bucket(self, column: Any, bucket: Bucket) -> Any:
        return func.substr(column, 1, BUCKET_PREFIX[bucket])

    async def claim(
        self, db: OpenDatabase, *, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> list[ClaimedMessage]:
        rows = await db.sqlite_write(
            partial(sqlite_outbox.claim, owner=owner, now=now, lease=lease, limit=limit)
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
                _fallbacks(message, versions)
            if message.started_at is not None:  # rare: after a crash
                text = cast(str, message.started_at)
                message.started_at = datetime.fromisoformat(text).replace(tzinfo=UTC)
        return claimed

    async def complete(
        self, db: OpenDatabase, completions: Sequence[Completion], now: datetime
    ) -> set[str]:
        return await db.sqlite_write(
            partial(sqlite_outbox.complete, completions=completions, now=now)
        )

    def start_marks(self, db: OpenDatabase, *, worker: str) -> SqliteStartMarks:
        return SqliteStartMarks(db, worker)

    async def write_fanout(self, db: OpenDatabase, batch: FanoutBatch) -> bool:
        return await sqlite_fanout.write_fanout(db, batch)

    async def import_profiles(
        self, db: OpenDatabase, batch: Sequence[Profile], now: datetime
    ) -> None:
        stamp = sqlite_outbox.sqlite_time(now)
        rows = [
            (p.external_id, p.phone, orjson.dumps(p.attributes).decode(), p.timezone, stamp, stamp)
            for p in batch
        ]
        await db.sqlite_write(partial(_import_profiles, rows=rows))

    async def imported(self, db: OpenDatabase, rows: int) -> None:
        return None  # SQLite's planner picks the primary key's order without statistics

    async def targeted_phones(
        self, conn: AsyncConnection, campaign_id: str, phones: Sequence[str]
    ) -> set[str]:
        rows = await conn.execute(
            select(messages.c.to_number).where(
                messages.c.campaign_id == campaign_id, self.among(messages.c.to_number, phones)
            )
        )
        return {r[0] for r in rows}

    async def follow_link(
        self, db: OpenDatabase, code: str, click: Click, lifetimes: Lifetimes
    ) -> str | None:
        return await db.sqlite_write(partial(_follow, code=code, click=click, lifetimes=lifetimes))


def _fallbacks(message: ClaimedMessage, versions: dict[str | None, datetime | None]) -> None:
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


class SqliteStartMarks:
    """One ``UPDATE … RETURNING`` per group of marks, on the hot-path thread."""

    def __init__(self, db: OpenDatabase, worker: str) -> None:
        self._db = db
        self._worker = worker

    async def mark(self, pairs: Sequence[tuple[str, int]], now: datetime) -> set[str]:
        return await self._db.sqlite_write(
            partial(sqlite_outbox.mark_started, pairs=pairs, worker=self._worker, now=now)
        )

    async def close(self) -> None:
        return None


def _follow(conn: sqlite3.Connection, code: str, click: Click, lifetimes: Lifetimes) -> str | None:
    found = conn.execute(
        "SELECT url, message_id, campaign_id, surface_id, created_at FROM links WHERE code = ?",
        (code,),
    ).fetchone()
    if found is None:
        return None
    url, message_id, campaign_id, surface_id, created_at = found
    if surface_id in lifetimes and link_expired(
        surface_id, datetime.fromisoformat(created_at).replace(tzinfo=UTC), click.at, lifetimes
    ):
        return None
    conn.execute(
        "INSERT INTO clicks (code, message_id, campaign_id, surface_id, at, user_agent, ip_hash, "
        "is_bot) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            code,
            message_id,
            campaign_id,
            surface_id,
            sqlite_outbox.sqlite_time(click.at),
            click.user_agent,
            click.ip_hash,
            click.is_bot,
        ),
    )
    return str(url)


_IMPORT_PROFILES = (
    "INSERT INTO profiles (external_id, phone, attributes, timezone, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (external_id) DO UPDATE SET phone = excluded.phone,"
    " attributes = excluded.attributes, timezone = excluded.timezone,"
    " updated_at = excluded.updated_at"
)


def _import_profiles(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    conn.executemany(_IMPORT_PROFILES, rows)
