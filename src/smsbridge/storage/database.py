"""Engine construction and transactions; the dialect is chosen here, once, when the database
opens (``Database.dialect_ops``)."""

from __future__ import annotations

import asyncio
import collections
import sqlite3
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from smsbridge.storage.dialects import Dialect, dialect_named, is_embedded


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # Transactions are begun explicitly (see _sqlite_begin), not by the driver's legacy
    # "BEGIN before the first DML" mode, so reads and writes of one transaction are isolated.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed while the worker writes; busy_timeout makes writers queue
    # instead of failing with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    # Write transactions take the write lock up front (BEGIN IMMEDIATE): a deferred
    # transaction that reads and then writes can fail at once with "database is locked" when
    # another process wrote in between; an immediate one waits its turn (busy_timeout).
    if connection.get_execution_options().get(_READ_ONLY):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


_READ_ONLY = "smsbridge_read_only"
HOT_PATH_CACHE_KIB = 65_536

T = TypeVar("T")


def create_engine(url: str, **options: Any) -> AsyncEngine:
    """An async engine for ``url`` (``sqlite+aiosqlite://…`` or ``postgresql+asyncpg://…``)."""
    options.setdefault("json_serializer", _dump_json)
    options.setdefault("json_deserializer", orjson.loads)
    if is_embedded(url):
        engine = create_async_engine(url, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    options.setdefault("pool_size", 10)
    options.setdefault("max_overflow", 10)
    options.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **options)


def migrates_itself(database_url: str) -> bool:
    """Whether a process opening this database applies the migrations itself: an embedded
    (SQLite) database does; a server database is migrated once, by ``smsbridge migrate``."""
    return is_embedded(database_url)


def _dump_json(value: Any) -> str:
    return orjson.dumps(value).decode()


class WriteTurns:
    """SQLite's one writer, taken in turns by this process's writers.

    Two queues: **urgent** writes, which a client is waiting on (group commits of accepted
    messages and webhooks), and **background** writes (the worker's claims and completions,
    fan-outs). The lock goes to an urgent waiter first, so an API request waits for the write
    in progress, not for a worker's backlog of them; but never more than
    :attr:`URGENT_IN_A_ROW` times in a row while background work waits, so the worker keeps
    sending under any load.
    """

    URGENT_IN_A_ROW = 2

    def __init__(self) -> None:
        self._held = False
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()
        self._background: collections.deque[asyncio.Future[None]] = collections.deque()
        self._urgent_run = 0

    @asynccontextmanager
    async def turn(self, *, urgent: bool) -> AsyncIterator[None]:
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, urgent: bool) -> None:
        if not self._held and not self._urgent and not self._background:
            self._held = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._background
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed the turn just as it was cancelled: pass it on
            else:
                queue.remove(waiter)
            raise

    def _release(self) -> None:
        while self._urgent or self._background:
            take_urgent = bool(self._urgent) and (
                not self._background or self._urgent_run < self.URGENT_IN_A_ROW
            )
            waiter = (self._urgent if take_urgent else self._background).popleft()
            if waiter.done():
                continue
            self._urgent_run = self._urgent_run + 1 if take_urgent else 0
            waiter.set_result(None)  # the turn passes on: still held
            return
        self._held = False
        self._urgent_run = 0


class _LentConnection:
    """The hot-path connection lent to a synchronous SQLAlchemy engine inside a transaction
    that :meth:`Database._run_write` owns: the engine's commit, rollback and close do nothing
    (the owner commits, or rolls back when the work raises)."""

    def __init__(self, raw: sqlite3.Connection | None) -> None:
        if raw is None:
            raise RuntimeError("the hot-path connection is not open")
        self._raw = raw

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass


class Database:
    """The engine plus the transaction boundary services use."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect_ops: Dialect = dialect_named(engine.dialect.name)
        # SQLite has one writer at a time. Queueing this process's writers here hands the
        # lock over at once, instead of in SQLite's busy-handler sleeps of up to 100 ms.
        self._write_lock = WriteTurns() if self.dialect_ops.single_writer else None
        self._hot_thread: ThreadPoolExecutor | None = None
        self._hot_connection: sqlite3.Connection | None = None
        self._hot_engine: Engine | None = None

    @property
    def dialect(self) -> str:
        """The engine's name (``sqlite``, ``postgresql``), for reports and benchmarks."""
        return self.dialect_ops.name

    @asynccontextmanager
    async def transaction(self, *, urgent: bool = False) -> AsyncIterator[AsyncConnection]:
        """A read-write transaction, committed when the block ends without error. ``urgent``:
        a request waits on it (see :class:`WriteTurns`)."""
        if self._write_lock is None:
            async with self.engine.begin() as connection:
                yield connection
            return
        async with self._write_lock.turn(urgent=urgent), self.engine.begin() as connection:
            yield connection

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads (on SQLite a deferred transaction that never writes)."""
        async with self.engine.connect() as connection:
            await connection.execution_options(**{_READ_ONLY: True})
            yield connection

    async def sqlite_write(
        self, work: Callable[[sqlite3.Connection], T], *, urgent: bool = False
    ) -> T:
        """SQLite only: run ``work`` in one write transaction, in a single hop to a thread.

        For the send hot path. Through the async driver every statement, every fetch and the
        commit is a round trip between the event loop and the driver's thread, and each one
        waits for the busy loop's next turn (milliseconds apiece under load). Here the whole
        transaction is one call on a dedicated connection to the same file, in a dedicated
        thread, queued behind this process's other writers like :meth:`transaction`.
        """
        if self._write_lock is None:
            raise RuntimeError("sqlite_write needs a SQLite database")
        async with self._write_lock.turn(urgent=urgent):
            if self._hot_thread is None:
                self._hot_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-hot-path")
            done = asyncio.get_running_loop().run_in_executor(
                self._hot_thread, self._run_write, work
            )
            try:
                return await asyncio.shield(done)
            except asyncio.CancelledError:
                # the thread's transaction goes on: keep others out of it until it ends
                await asyncio.wait([done])
                raise

    def _run_write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        connection = self._hot_connection
        if connection is None:
            path = self.engine.url.database
            if not path or path == ":memory:":
                raise RuntimeError("the SQLite hot path needs a database file")
            connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            _sqlite_pragmas(connection, None)  # type: ignore[arg-type]
            # This connection writes every batch (claims, completions, fan-out): a 64 MB page
            # cache (default 2 MB) keeps the messages indexes it appends to in memory, ~10 %
            # faster fan-out on a million recipients. Other connections keep the default.
            connection.execute(f"PRAGMA cache_size=-{HOT_PATH_CACHE_KIB}")
            self._hot_connection = connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            result = work(connection)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return result

    async def run_transaction(self, work: Callable[[Connection], T], *, urgent: bool = True) -> T:
        """Run ``work`` in one read-write transaction, on a synchronous SQLAlchemy connection,
        committed when it returns.

        The one-hop write for group commits (``services/group_commit.py``): on SQLite the
        whole transaction runs in the hot-path thread, queued behind this process's other
        writers, so its statements cost no event-loop turns; on PostgreSQL it runs through the
        async driver (``run_sync``), a round trip per statement but no thread. Same code,
        same tables and column types on both. Urgent by default: a request waits on it.
        """
        if self._write_lock is None:
            async with self.engine.begin() as connection:
                return await connection.run_sync(work)
        return await self.sqlite_write(partial(self._run_on_hot_engine, work), urgent=urgent)

    def _run_on_hot_engine(self, work: Callable[[Connection], T], _raw: sqlite3.Connection) -> T:
        # Called inside _run_write's BEGIN IMMEDIATE … COMMIT on the hot connection; the
        # SQLAlchemy engine below wraps that same connection and leaves the transaction to it.
        if self._hot_engine is None:
            lent = _LentConnection(self._hot_connection)
            self._hot_engine = create_sync_engine(
                "sqlite://",
                creator=lambda: lent,
                poolclass=StaticPool,
                pool_reset_on_return=None,
                json_serializer=_dump_json,
                json_deserializer=orjson.loads,
            )
        with self._hot_engine.connect() as connection:
            result = work(connection)
            connection.commit()  # a no-op on the lent connection: _run_write commits
            return result

    def _close_hot_path(self) -> None:
        if self._hot_engine is not None:
            self._hot_engine.dispose(close=False)
            self._hot_engine = None
        if self._hot_connection is not None:
            self._hot_connection.close()
            self._hot_connection = None

    async def ping(self) -> bool:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return True

    async def dispose(self) -> None:
        if self._hot_thread is not None:
            await asyncio.get_running_loop().run_in_executor(self._hot_thread, self._close_hot_path)
            self._hot_thread.shutdown()
            self._hot_thread = None
        await self.engine.dispose()
