"""Opaque, prefixed, time-sortable identifiers (``cred_01J…``).

26 Crockford base32 characters: 48 bits of milliseconds then 80 random bits, like a ULID, so
ids sort by creation time; list endpoints use the last id seen as their cursor.

The time part reads the wall clock, not the injected clock, on purpose: it only orders ids
for cursors, and must keep doing so in tests whose clock stands still (a frozen clock would
give every id of a test the same 48 bits, and lists an order drawn at random). Times that
mean something (``created_at``, ``send_at``…) come from the injected clock; give ``now_ms``
to tie an id to one of them.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DRAWN_AT_ONCE = 512
"""Ids whose random bits one read of the operating system's CSPRNG provides: the same bytes
``secrets`` would give one id at a time, without a system call per id (accepting a batch of
1,000 messages spent a sixth of its time in them)."""

_lock = threading.Lock()
_pool = b""
_taken = 0


def _random80() -> int:
    """80 random bits from the operating system's CSPRNG."""
    global _pool, _taken
    with _lock:
        if _taken + 10 > len(_pool):
            _pool, _taken = os.urandom(10 * _DRAWN_AT_ONCE), 0
        drawn = _pool[_taken : _taken + 10]
        _taken += 10
    return int.from_bytes(drawn, "big")


def _forget_pool() -> None:
    """A forked child draws its own bits (never the ones its parent will hand out)."""
    global _pool, _taken
    _pool, _taken = b"", 0


os.register_at_fork(after_in_child=_forget_pool)


def new_id(prefix: str, now_ms: int | None = None) -> str:
    millis = int(time.time() * 1000) if now_ms is None else now_ms
    value = (millis << 80) | _random80()
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


def new_ids(prefix: str, count: int, now_ms: int | None = None) -> list[str]:
    """``count`` ids for one bulk write (a campaign batch): the same ordering and shape as
    :func:`new_id` — 48 bits of milliseconds first, so they sort by creation time — but the
    80 low bits are 30 random bits drawn once for the batch followed by the position in the
    batch (10 decimal digits, all Crockford characters). One random draw per batch instead of
    one per id: bulk fan-out creates hundreds of thousands of ids a second."""
    if count >= 10**10:
        raise ValueError("too many ids for one batch")
    head = new_id(prefix, now_ms)[: len(prefix) + 1 + 16]  # time (10) + 6 random characters
    return [f"{head}{n:010d}" for n in range(count)]
