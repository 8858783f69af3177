"""Open admin sessions: one row per sign-in, deleted at sign-out (or swept once expired)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.storage.tables import admin_sessions


async def open_session(
    conn: AsyncConnection, session_hash: str, key_id: str, created: datetime, expires: datetime
) -> None:
    await conn.execute(
        insert(admin_sessions).values(
            id=session_hash, key_id=key_id, created_at=created, expires_at=expires
        )
    )


async def session_key(conn: AsyncConnection, session_hash: str, now: datetime) -> str | None:
    """The key id of this session while it is open and unexpired, else None."""
    found = await conn.execute(
        select(admin_sessions.c.key_id).where(
            admin_sessions.c.id == session_hash, admin_sessions.c.expires_at > now
        )
    )
    key_id = found.scalar_one_or_none()
    return None if key_id is None else str(key_id)


async def close_session(conn: AsyncConnection, session_hash: str) -> None:
    await conn.execute(delete(admin_sessions).where(admin_sessions.c.id == session_hash))


async def sweep_expired(conn: AsyncConnection, now: datetime) -> None:
    await conn.execute(delete(admin_sessions).where(admin_sessions.c.expires_at <= now))
