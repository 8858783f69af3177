"""Per-credential rate limits that hold across every worker process sharing the database.

GCRA with reservations: a worker atomically moves the credential's *theoretical arrival
time* (``rate_limits.tat``) forward by ``k / rate`` and owns the ``k`` send slots in between.
Slots of different workers never overlap, so the sum of all workers' sends respects the rate;
reserving a small window (``k`` ≈ rate x 100 ms) at a time keeps the database writes per
send low. A reserved slot found stale (its time long past) is dropped rather than used, so
unused reservations never turn into a burst.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

from smsbridge.observability.metrics import Metrics
from smsbridge.storage import rate_limits
from smsbridge.storage.database import Database


class SharedRateLimiter:
    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        window: float = 0.1,
        metrics: Metrics | None = None,
    ) -> None:
        self._db = db
        self._metrics = metrics
        self._clock = clock
        self._sleep = sleep
        self._window = window
        self._slots: dict[str, deque[float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def acquire(self, key: str, rate: float) -> float:
        """Wait until this process may make one request under ``rate`` per second for ``key``;
        returns the seconds waited for the slot (0 when it was already due)."""
        slots = self._slots.setdefault(key, deque())
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            now = self._clock()
            while slots and slots[0] < now - 1.0 / rate:
                slots.popleft()  # stale: its moment passed unused; using it now would burst
            if not slots:
                slots.extend(await self._reserve(key, rate))
            slot = slots.popleft()
        delay = slot - self._clock()
        if delay <= 0:
            return 0.0
        if self._metrics is not None:
            self._metrics.rate_waited(key, delay)
        await self._sleep(delay)
        return delay

    async def _reserve(self, key: str, rate: float) -> list[float]:
        count = max(1, math.ceil(rate * self._window))
        now = self._clock()
        span = count / rate
        end = await rate_limits.reserve(self._db, key, now=now, span=span)
        start = end - span
        return [start + i / rate for i in range(count)]
