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

import secrets
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(prefix: str, now_ms: int | None = None) -> str:
    millis = int(time.time() * 1000) if now_ms is None else now_ms
    value = (millis << 80) | secrets.randbits(80)
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
