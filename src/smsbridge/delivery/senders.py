"""The worker's senders: tasks taking claimed work from its queue, as many as are needed.

As many senders as the send slots let send at once (:class:`~smsbridge.delivery.send_slots.
SendSlots`, whose limits move with the providers), plus one for each sender waiting in a
credential's line, so that a throttled credential's messages never keep another's from
being sent; never more than messages in hand. A sender beyond that number retires after
its send, so the pool follows a limit that falls as well as one that grows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Work = TypeVar("Work")


class SenderPool(Generic[Work]):
    def __init__(
        self,
        queue: asyncio.Queue[Work | None],
        handle: Callable[[Work], Awaitable[None]],
        wanted: Callable[[], int],
    ) -> None:
        """``handle`` sends one piece of work; ``wanted()`` says how many senders to keep."""
        self._queue = queue
        self._handle = handle
        self._wanted = wanted
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = 0
        self._stopping = False

    def __len__(self) -> int:
        return len(self._tasks)

    def staff(self) -> None:
        """Start senders for queued work when fewer than wanted are alive."""
        if self._stopping:
            return
        missing = min(self._wanted() - len(self._tasks), self._queue.qsize() - self._idle)
        for _ in range(missing):
            task = asyncio.create_task(self._sender())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _sender(self) -> None:
        me = asyncio.current_task()
        try:
            while len(self._tasks) <= self._wanted():  # one too many: retire
                self._idle += 1
                try:
                    work = await self._queue.get()
                finally:
                    self._idle -= 1
                if work is None:
                    return
                await self._handle(work)
                self.staff()
        finally:
            self._tasks.discard(me)  # at once: the next sender to check counts without it

    async def stop(self) -> None:
        """Let every sender finish its send, then end them all."""
        self._stopping = True
        tasks = list(self._tasks)
        for _ in tasks:
            self._queue.put_nowait(None)
        await asyncio.gather(*tasks, return_exceptions=True)
