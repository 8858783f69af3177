"""Reservations of send slots under a per-credential rate (``rate_limits.tat``), shared by
every worker process on the database (the limiter itself: ``delivery.ratelimit``)."""

from __future__ import annotations

from sqlalchemy import case, update

from smsbridge.storage.database import Database
from smsbridge.storage.tables import rate_limits


async def reserve(db: Database, key: str, *, now: float, span: float) -> float:
    """Move ``key``'s theoretical arrival time to ``span`` seconds past itself (or past
    ``now``, if that is later), in one transaction; the new time."""
    async with db.transaction() as conn:
        await conn.execute(
            db.dialect_ops.insert_ignore(rate_limits).values(credential_id=key, tat=now)
        )
        result = await conn.execute(
            update(rate_limits)
            .where(rate_limits.c.credential_id == key)
            .values(tat=case((rate_limits.c.tat > now, rate_limits.c.tat), else_=now) + span)
            .returning(rate_limits.c.tat)
        )
        return float(result.scalar_one())
