"""Group commit: concurrent requests' writes committed together, each caller answered only
once the transaction holding its write has committed.

A request that must be durable before it is answered (an accepted message: "202 means
durable"; a webhook the provider must not have to send again) used to pay a transaction of
its own: a wait for the write lock and several driver round trips, one after the other. Here
a caller hands its unit of work to :meth:`GroupCommit.submit` and waits; one flusher task takes
every unit waiting (up to ``max_weight`` items), writes them in ONE transaction
(``write(units)``) and resolves each caller with its own result. While a group commits, the
next one gathers, so under load the cost of a transaction is shared by everyone who arrived
during the previous one, and alone a request pays what it paid before (no timer, no added
wait).

Failure stays per unit: ``write`` returns an outcome per unit (a value, or an exception to
raise at that caller: e.g. a field error for one message of the group). When the whole group
fails (the transaction raises), each unit is written again alone, so one bad unit can only
fail itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

U = TypeVar("U")
R = TypeVar("R")

log = logging.getLogger("smsbridge.group_commit")


@dataclass(slots=True)
class _Waiting(Generic[U, R]):
    unit: U
    weight: int
    done: asyncio.Future[R]


class GroupCommit(Generic[U, R]):
    """Batches ``submit``-ed units into ``write`` calls; ``parallel`` groups may be in flight
    at once (1 on SQLite, whose writes are serial anyway; a few on PostgreSQL, to overlap the
    round trips of one group with the next)."""

    def __init__(
        self,
        write: Callable[[Sequence[U]], Awaitable[Sequence[R | BaseException]]],
        *,
        name: str,
        max_weight: int = 2000,
        parallel: int = 1,
    ) -> None:
        self._write = write
        self._name = name
        self._max_weight = max_weight
        self._parallel = max(1, parallel)
        self._waiting: list[_Waiting[U, R]] = []
        self._wakeup: asyncio.Event | None = None
        self._flushers: list[asyncio.Task[None]] = []
        self._closed = False
        self.groups = 0
        """Transactions written so far (for tests and benchmarks: units ÷ groups)."""
        self.units = 0

    async def submit(self, unit: U, *, weight: int = 1) -> R:
        """Write ``unit`` with whatever else is waiting; return its outcome once committed
        (or raise the exception its write gave)."""
        if self._closed:
            raise RuntimeError(f"{self._name}: closed")
        loop = asyncio.get_running_loop()
        waiting = _Waiting[U, R](unit, max(1, weight), loop.create_future())
        self._waiting.append(waiting)
        self._start(loop)
        assert self._wakeup is not None
        self._wakeup.set()
        # Not cancelled with the caller: once handed over, the write happens (a client that
        # hangs up does not tear a group apart); the caller just stops waiting for it.
        return await asyncio.shield(waiting.done)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        self._flushers = [task for task in self._flushers if not task.done()]
        while len(self._flushers) < self._parallel:
            self._flushers.append(
                loop.create_task(self._flush_forever(), name=f"{self._name}-group-commit")
            )

    def _take(self) -> list[_Waiting[U, R]]:
        """The oldest waiting units, up to ``max_weight`` items (at least one unit)."""
        count, weight = 0, 0
        for waiting in self._waiting:
            if count and weight + waiting.weight > self._max_weight:
                break
            weight += waiting.weight
            count += 1
        taken = self._waiting[:count]
        del self._waiting[:count]
        return taken

    async def _flush_forever(self) -> None:
        assert self._wakeup is not None
        wakeup = self._wakeup
        while True:
            if not self._waiting:
                if self._closed:
                    return
                wakeup.clear()
                await wakeup.wait()
                continue
            group = self._take()
            if self._waiting:
                wakeup.set()  # more than one group's worth: another flusher may take it
            await self._flush(group)

    async def _flush(self, group: list[_Waiting[U, R]]) -> None:
        units = [w.unit for w in group]
        try:
            outcomes = await self._write(units)
        except Exception as failed:
            if len(group) == 1:
                outcomes = [failed]
            else:
                log.debug("%s: a group of %d failed; writing each alone", self._name, len(group))
                outcomes = [await self._write_alone(unit) for unit in units]
        except BaseException as exc:  # cancelled while writing: tell the callers, then stop
            for waiting in group:
                if not waiting.done.done():
                    waiting.done.set_exception(RuntimeError(f"{self._name}: stopped"))
            raise exc
        self.groups += 1
        self.units += len(group)
        for waiting, outcome in zip(group, outcomes, strict=True):
            if waiting.done.done():
                continue
            if isinstance(outcome, BaseException):
                waiting.done.set_exception(outcome)
            else:
                waiting.done.set_result(outcome)

    async def _write_alone(self, unit: U) -> R | BaseException:
        try:
            return (await self._write([unit]))[0]
        except Exception as failed:
            return failed

    async def close(self) -> None:
        """Write what is waiting, then stop the flushers."""
        self._closed = True
        if self._wakeup is not None:
            self._wakeup.set()
        for task in self._flushers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._flushers = []
