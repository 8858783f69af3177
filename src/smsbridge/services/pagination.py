"""Opaque list cursors: the last id of a page, base64url-encoded."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from smsbridge.errors import InvalidInput

T = TypeVar("T")
R = TypeVar("R")
MAX_LIMIT = 500


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, *, prefixed: bool = True) -> str | None:
    """The last id of the previous page. ``prefixed``: our own ids (``msg_…``); False for the
    customer's own ids (a profile's ``external_id``: any text, ``12345`` or ``clé-7`` too)."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput.one("cursor", "not a cursor returned by this API") from None
    if prefixed and ("_" not in raw or not raw.isascii()):
        raise InvalidInput.one("cursor", "not a cursor returned by this API")
    return raw


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput.one("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


def page_of(
    rows: list[R], limit: int, *, last_id: Callable[[R], str], view: Callable[[R], T]
) -> Page[T]:
    """A page from ``limit + 1`` fetched rows: the extra row only tells that more follow."""
    shown = rows[:limit]
    more = len(rows) > limit and bool(shown)
    return Page([view(r) for r in shown], encode_cursor(last_id(shown[-1])) if more else None)
