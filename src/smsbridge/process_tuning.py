"""Process tuning that the long-running commands (``serve``, ``worker``) apply once started.

Measured on a campaign fan-out of 1,000,000 recipients (SQLite, 2 cores; see
docs/performance.md): without it, about a third of the time went to the garbage collector
and to the writer thread waiting for the interpreter lock.
"""

from __future__ import annotations

import gc
import sys

YOUNG_GENERATION_THRESHOLD = 10_000
"""Allocations between two young-generation collections (Python's default is 700)."""

SWITCH_INTERVAL = 0.001
"""Seconds a thread may hold the interpreter lock while another waits (default 0.005)."""


def settle() -> None:
    """Call once the process has started (services built, before serving).

    * What startup built — modules, SQLAlchemy metadata, compiled statements, the services —
      lives as long as the process. Frozen, the collector stops walking it again at every full
      collection; fan-out and dispatch allocate millions of short-lived objects, which keep
      setting those off.
    * The young generation is collected every 10,000 allocations instead of 700: the batches
      being built are live anyway, so frequent collections only re-examine them.
    * The SQLite hot-path thread releases the interpreter lock while SQLite works and needs
      it back between statements; with a 1 ms switch interval it waits at most 1 ms for the
      event loop's thread to yield, not 5.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
    sys.setswitchinterval(SWITCH_INTERVAL)
