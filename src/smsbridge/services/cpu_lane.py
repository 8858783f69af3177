"""One lane for the CPU work that requests bring: rendering templates, parsing imports.

Such work must not run on the event loop (a template may take up to its render deadline; a
64 KB chunk of CSV takes a tenth of a second to parse and check), and it must not crowd it out
either: every thread doing pure-Python work competes with the loop for the interpreter lock,
so ten concurrent renders in ten threads would leave the loop a tenth of the CPU. All of it
queues for one thread instead: the loop always gets at least half of the lock (every switch
interval it asks for it back), so health checks, webhooks and deliveries keep answering while
one sender posts the heaviest templates and files it can build; that sender's own requests
wait their turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")


class CpuLane:
    def __init__(self, name: str = "cpu-lane") -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=name)

    async def run(self, work: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``work(*args, **kwargs)`` on the lane's thread, once the work queued before it is
        done. Cancelling the caller does not stop it (each piece of work is bounded)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(work, *args, **kwargs))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
