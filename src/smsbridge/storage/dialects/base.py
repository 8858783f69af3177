"""The one seam between storage and the database engines: :class:`Dialect`.

Every statement that SQLite and PostgreSQL write differently is an operation here, with one
implementation per engine (``sqlite.py``, ``postgresql.py``); the rest of storage is written
once. The dialect is chosen when the database opens (``Database.dialect_ops``), or from a
connection (:func:`smsbridge.storage.dialects.dialect_of`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, TypeVar

from sqlalchemy import ColumnElement, Select, Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.dml import Insert

from smsbridge.domain.profiles import Profile
from smsbridge.storage.records import ClaimedMessage, Click, Completion, FanoutBatch, Lifetimes

T = TypeVar("T")
S = TypeVar("S", bound=Select[Any])

Bucket = Literal["minute", "hour", "day"]


class OpenDatabase(Protocol):
    """What the dialects' whole-transaction operations need from ``storage.Database``."""

    @property
    def engine(self) -> AsyncEngine: ...

    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]: ...

    async def sqlite_write(self, work: Callable[[sqlite3.Connection], T]) -> T: ...


class StartMarks(Protocol):
    """Writes start marks (``started_at``/``started_by`` where the lease still holds)."""

    async def mark(self, pairs: Sequence[tuple[str, int]], now: datetime) -> set[str]: ...

    async def close(self) -> None: ...


class Dialect(Protocol):
    """The statements that differ between the engines, by what they do."""

    name: str
    single_writer: bool
    """One writer at a time (SQLite): this process's writers queue in front of it."""

    # statements on a connection
    def insert_ignore(self, table: Table) -> Insert:
        """``INSERT`` that skips rows clashing with a unique key."""
        ...

    def upsert(self, table: Table, key: Sequence[str], replace: Sequence[str]) -> Insert:
        """``INSERT`` that, on a clash on ``key``, sets the ``replace`` columns to the new row's."""
        ...

    def for_update(self, query: S) -> S:
        """``query`` locking the rows it reads until the transaction ends."""
        ...

    async def lock_table(self, conn: AsyncConnection, table: Table) -> None:
        """Serialize the transactions that check ``table`` before writing it."""
        ...

    def among(self, column: Any, values: Sequence[str]) -> ColumnElement[bool]:
        """``column IN values`` with the values bound as ONE parameter."""
        ...

    def json_matches(self, document: Any, name: str, values: Sequence[Any]) -> ColumnElement[bool]:
        """The JSON object's ``name`` equals one of ``values``, as JSON values (``"1"`` ≠ ``1``)."""
        ...

    async def fetch_tuples(
        self, conn: AsyncConnection, query: Select[Any]
    ) -> list[tuple[Any, ...]]:
        """The rows of ``query`` as tuples (on SQLite, fetched as one JSON row)."""
        ...

    def time_bucket(self, column: Any, bucket: Bucket) -> Any:
        """The start of ``column``'s ``bucket`` (as the engine gives it)."""
        ...

    # whole transactions of the send hot path, the fan-out and link clicks
    async def claim(
        self, db: OpenDatabase, *, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> list[ClaimedMessage]: ...

    async def complete(
        self, db: OpenDatabase, completions: Sequence[Completion], now: datetime
    ) -> set[str]: ...

    def start_marks(self, db: OpenDatabase, *, worker: str) -> StartMarks: ...

    async def write_fanout(self, db: OpenDatabase, batch: FanoutBatch) -> bool:
        """False when the cursor moved or the campaign stopped; ``Conflict`` on a recipient
        written twice."""
        ...

    async def import_profiles(
        self, db: OpenDatabase, batch: Sequence[Profile], now: datetime
    ) -> None:
        """Insert or replace ``batch`` (distinct external ids) in one transaction, with the
        database's bulk path."""
        ...

    async def imported(self, db: OpenDatabase, rows: int) -> None:
        """After an import that wrote ``rows`` profiles: bring the planner's statistics up to
        date where the database needs it."""
        ...

    async def targeted_phones(
        self, conn: AsyncConnection, campaign_id: str, phones: Sequence[str]
    ) -> set[str]:
        """Which of ``phones`` already have a message of the campaign."""
        ...

    async def follow_link(
        self, db: OpenDatabase, code: str, click: Click, lifetimes: Lifetimes
    ) -> str | None: ...


def upsert_into(
    make_insert: Callable[[Table], Any], table: Table, key: Sequence[str], replace: Sequence[str]
) -> Insert:
    """``INSERT … ON CONFLICT (key) DO UPDATE SET replace = excluded.replace``, written the
    same way by both dialects; ``make_insert`` is the dialect's own ``insert``."""
    statement = make_insert(table)
    upsert: Insert = statement.on_conflict_do_update(
        index_elements=[table.c[name] for name in key],
        set_={name: statement.excluded[name] for name in replace},
    )
    return upsert
