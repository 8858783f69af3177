"""``GET /readyz``: the database answers, within a short time, and its schema is the code's.

``/healthz`` says the process is alive; readiness says it can do its work: a load balancer
sends it requests, an orchestrator lets a deployment proceed. Not ready when the database
does not answer within :data:`READY_TIMEOUT` seconds, or when its Alembic revision is not the
code's head (``smsbridge migrate`` not run yet, or this code older than the schema). The
reasons are fixed sentences: never a URL, a host or a driver's message.

The check never piles up on a slow database: one runs at a time, and a check that outlives
its timeout goes on by itself (it is not cancelled half-way through a driver call) while the
answers say the database is slow.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass

from sqlalchemy import text

from smsbridge.storage.database import Database

READY_TIMEOUT = 2.0


@functools.cache
def code_head() -> str:
    """The head revision of the migrations this code ships (read once)."""
    from alembic.script import ScriptDirectory

    from smsbridge.storage.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found")
    return head


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str = ""


async def _schema_revision(db: Database) -> str | None:
    async with db.read() as conn:
        try:
            revision = await conn.scalar(text("SELECT version_num FROM alembic_version"))
        except Exception:  # no such table: never migrated
            return None
    return None if revision is None else str(revision)


class ReadinessCheck:
    def __init__(self, db: Database, *, timeout: float = READY_TIMEOUT) -> None:
        self._db = db
        self.timeout = timeout
        self._checking: asyncio.Task[str | None] | None = None
        self._head: str | None = None

    async def check(self) -> Readiness:
        checking = self._checking
        if checking is None:
            checking = self._checking = asyncio.create_task(_schema_revision(self._db))
            checking.add_done_callback(self._done)
        done, _ = await asyncio.wait({checking}, timeout=self.timeout)
        if not done:
            return Readiness(False, "the database does not answer in time")
        if checking.exception() is not None:
            return Readiness(False, "the database is unavailable")
        revision = checking.result()
        if self._head is None:  # reads the migration scripts, once
            self._head = await asyncio.to_thread(code_head)
        head = self._head
        if revision is None:
            return Readiness(False, "the database has no schema yet: run `smsbridge migrate`")
        if revision != head:
            return Readiness(
                False, "the database schema is not this version's: run `smsbridge migrate`"
            )
        return Readiness(True)

    def _done(self, task: asyncio.Task[str | None]) -> None:
        self._checking = None
        if not task.cancelled():
            task.exception()  # retrieved: a check nobody waited for anymore fails quietly
