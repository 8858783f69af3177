"""Consent state (``suppressions``) and its audit trail (``consent_events``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.storage.dialects import dialect_of
from smsbridge.storage.tables import consent_events, suppressions


async def suppress(
    conn: AsyncConnection,
    *,
    sender: str,
    phone: str,
    source: str,
    keyword: str | None,
    at: datetime,
) -> bool:
    """Opt ``phone`` out of ``sender``; False if it already was (the first opt-out stays)."""
    result = await conn.execute(
        dialect_of(conn)
        .insert_ignore(suppressions)
        .values(sender=sender, phone=phone, source=source, keyword=keyword, created_at=at)
    )
    return bool(result.rowcount)


async def lift(conn: AsyncConnection, *, sender: str, phone: str) -> bool:
    result = await conn.execute(
        delete(suppressions).where(suppressions.c.sender == sender, suppressions.c.phone == phone)
    )
    return bool(result.rowcount)


async def record(conn: AsyncConnection, event: dict[str, Any]) -> None:
    await conn.execute(insert(consent_events).values(**event))


async def of_phone(conn: AsyncConnection, phone: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(suppressions).where(suppressions.c.phone == phone).order_by(suppressions.c.sender)
    )
    return [dict(r._mapping) for r in rows]


async def history(conn: AsyncConnection, phone: str, *, limit: int = 100) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(consent_events)
        .where(consent_events.c.phone == phone)
        .order_by(consent_events.c.id.desc())
        .limit(limit)
    )
    return [dict(r._mapping) for r in rows]


async def opted_out_page(
    conn: AsyncConnection, *, after: tuple[str, str] | None, limit: int
) -> Sequence[dict[str, Any]]:
    """Current opt-outs ordered by (sender, phone), the page after ``after``."""
    query = select(suppressions).order_by(suppressions.c.sender, suppressions.c.phone).limit(limit)
    if after is not None:
        query = query.where(tuple_(suppressions.c.sender, suppressions.c.phone) > tuple_(*after))
    return [dict(r._mapping) for r in await conn.execute(query)]


async def is_suppressed(conn: AsyncConnection, *, sender: str, phone: str) -> bool:
    found = await conn.execute(
        select(suppressions.c.phone).where(
            suppressions.c.sender == sender, suppressions.c.phone == phone
        )
    )
    return found.first() is not None
