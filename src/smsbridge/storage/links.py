"""Short links and their clicks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.storage.database import Database
from smsbridge.storage.records import Click as Click
from smsbridge.storage.records import Lifetimes as Lifetimes
from smsbridge.storage.tables import links, surfaces


async def insert_links(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(links), list(rows))


async def follow(db: Database, code: str, click: Click, lifetimes: Lifetimes) -> str | None:
    """The URL behind ``code`` (one primary-key lookup), with the click recorded; None for an
    unknown code, or one older than its surface's link lifetime. On SQLite, one call to the
    hot-path thread."""
    return await db.dialect_ops.follow_link(db, code, click, lifetimes)


async def link_lifetimes(db: Database) -> dict[str, timedelta]:
    """Every surface whose links expire, with their lifetime."""
    async with db.read() as conn:
        rows = (await conn.execute(select(surfaces.c.id, surfaces.c.document))).all()
    lifetimes: dict[str, timedelta] = {}
    for surface_id, document in rows:
        tracking = (document or {}).get("link_tracking") or {}
        days = tracking.get("expire_after_days") if isinstance(tracking, dict) else None
        if isinstance(days, int) and days > 0:
            lifetimes[surface_id] = timedelta(days=days)
    return lifetimes
