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
"""Ids whose random characters one read of the operating system's CSPRNG provides: the same
bits ``secrets`` would give one id at a time, without a system call per id (accepting a batch
of 1,000 messages spent a sixth of its time in them)."""
_RANDOM_CHARS = 16
"""80 random bits: 16 characters of 5 bits."""
_CHAR_OF_BYTE = bytes(ord(_ALPHABET[b & 31]) for b in range(256))
"""A random byte to a character: its 5 low bits (256 is a multiple of 32, so each character
is as likely as the others — uniform bits in, uniform characters out)."""

_lock = threading.Lock()
_pool = ""
_taken = 0
_clock: tuple[int, str] = (-1, "")
"""The last millisecond encoded, and its 10 characters (ids come by the thousand per ms)."""


def _random_chars() -> str:
    """16 characters (80 bits) from the operating system's CSPRNG."""
    global _pool, _taken
    with _lock:
        if _taken + _RANDOM_CHARS > len(_pool):
            drawn = os.urandom(_RANDOM_CHARS * _DRAWN_AT_ONCE)
            _pool, _taken = drawn.translate(_CHAR_OF_BYTE).decode("ascii"), 0
        chars = _pool[_taken : _taken + _RANDOM_CHARS]
        _taken += _RANDOM_CHARS
    return chars


def _forget_pool() -> None:
    """A forked child draws its own bits (never the ones its parent will hand out), under a
    lock of its own (another thread of the parent may have held it at the fork)."""
    global _lock, _pool, _taken
    _lock = threading.Lock()
    _pool, _taken = "", 0


os.register_at_fork(after_in_child=_forget_pool)


def _time_chars(millis: int) -> str:
    """The 48 bits of milliseconds as an id's first 10 characters (2 leading zero bits)."""
    global _clock
    last, chars = _clock
    if millis != last:
        value, digits = millis, []
        for _ in range(10):
            digits.append(_ALPHABET[value & 31])
            value >>= 5
        chars = "".join(reversed(digits))
        _clock = (millis, chars)  # one tuple: a thread reads a whole pair or the previous one
    return chars


def new_id(prefix: str, now_ms: int | None = None) -> str:
    millis = int(time.time() * 1000) if now_ms is None else now_ms
    return f"{prefix}_{_time_chars(millis)}{_random_chars()}"


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
