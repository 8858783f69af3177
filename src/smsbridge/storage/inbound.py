"""Inbound messages and pending double opt-ins."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.storage.dialects import dialect_of
from smsbridge.storage.tables import consent_pending, inbound_messages


async def insert(conn: AsyncConnection, row: dict[str, Any]) -> bool:
    """Store an inbound message; False when the provider already delivered this one (its id
    was seen on this surface): a replay, to be acknowledged without effect."""
    result = await conn.execute(dialect_of(conn).insert_ignore(inbound_messages).values(**row))
    return bool(result.rowcount)


async def pending(conn: AsyncConnection, sender: str, phone: str) -> bool:
    found = await conn.execute(
        select(consent_pending.c.phone).where(
            consent_pending.c.sender == sender, consent_pending.c.phone == phone
        )
    )
    return found.first() is not None


async def set_pending(conn: AsyncConnection, sender: str, phone: str, at: datetime) -> None:
    statement = dialect_of(conn).upsert(consent_pending, ("sender", "phone"), ("created_at",))
    await conn.execute(statement.values(sender=sender, phone=phone, created_at=at))


async def clear_pending(conn: AsyncConnection, sender: str, phone: str) -> None:
    await conn.execute(
        delete(consent_pending).where(
            consent_pending.c.sender == sender, consent_pending.c.phone == phone
        )
    )
