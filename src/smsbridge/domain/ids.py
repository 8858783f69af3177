"""Opaque, prefixed, time-sortable identifiers (``cred_01J…``).

26 Crockford base32 characters: 48 bits of milliseconds then 80 random bits, like a ULID, so
ids sort by creation time; list endpoints use the last id seen as their cursor.
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
