"""Start marks for at-most-once sends, written in groups.

A credential with ``retry_ambiguous: false`` promises that an attempt whose outcome is
unknown is never repeated. Timeouts are handled by the retry policy; a crash needs a trace
that survives the process: before an at-most-once request leaves, its outbox row is marked
(``storage.claim.StartMarkWriter``), fenced by the lease token. A claim that finds a mark knows
the attempt started and its outcome was never recorded, and ends the message instead.

Senders that reach the gate in the same turn of the event loop share one statement: under
load, one write covers dozens of sends, and a lone send pays one short transaction. The
request leaves only once its mark is committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from smsbridge.storage.claim import StartMarkWriter
from smsbridge.storage.database import Database


class StartMarks:
    def __init__(self, db: Database, *, worker: str, clock: Callable[[], datetime]) -> None:
        self._writer_db = StartMarkWriter(db, worker=worker)
        self._clock = clock
        self._waiting: list[tuple[str, int, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.writes = 0
        """Statements written (for the dispatch benchmark)."""
        self.marked = 0

    async def mark(self, message_id: str, lease_token: int) -> bool:
        """Wait until the start of this attempt is durable; False when the lease was lost
        (another worker holds the message: do not send)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((message_id, lease_token, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        return await future

    async def _write(self) -> None:
        try:
            await asyncio.sleep(0)  # the senders of this turn join the group
            while self._waiting:
                group, self._waiting = self._waiting, []
                try:
                    marked = await self._writer_db.mark(
                        [(message_id, token) for message_id, token, _ in group], self._clock()
                    )
                except BaseException as exc:  # nothing is sent: each sender retries later
                    for _, _, future in group:
                        if not future.done():
                            future.set_exception(
                                exc if isinstance(exc, Exception) else RuntimeError("stopped")
                            )
                    if not isinstance(exc, Exception):
                        raise
                    continue
                self.writes += 1
                self.marked += len(marked)
                for message_id, _, future in group:
                    if not future.done():
                        future.set_result(message_id in marked)
        finally:
            self._writer = None
            if not self._waiting:  # idle: give the writer's connection back
                await self._writer_db.close()
