"""Short links and their clicks."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.storage.claim_sqlite import sqlite_time
from smsbridge.storage.database import Database
from smsbridge.storage.tables import clicks, links, surfaces

Lifetimes = Mapping[str, timedelta]
"""How long the links of a surface live, by surface id (surfaces absent: forever)."""


@dataclass(frozen=True)
class Click:
    at: datetime
    user_agent: str | None
    ip_hash: str | None
    is_bot: bool


async def insert_links(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(links), list(rows))


async def follow(db: Database, code: str, click: Click, lifetimes: Lifetimes) -> str | None:
    """The URL behind ``code`` (one primary-key lookup), with the click recorded; None for an
    unknown code, or one older than its surface's link lifetime. On SQLite, one call to the
    hot-path thread."""
    if db.dialect == "sqlite":
        return await db.sqlite_write(
            partial(_follow_sqlite, code=code, click=click, lifetimes=lifetimes)
        )
    async with db.transaction() as conn:
        found = (
            await conn.execute(
                select(
                    links.c.url,
                    links.c.message_id,
                    links.c.campaign_id,
                    links.c.surface_id,
                    links.c.created_at,
                ).where(links.c.code == code)
            )
        ).first()
        if found is None or _expired(found.surface_id, found.created_at, click.at, lifetimes):
            return None
        await conn.execute(
            insert(clicks).values(
                code=code,
                message_id=found.message_id,
                campaign_id=found.campaign_id,
                surface_id=found.surface_id,
                at=click.at,
                user_agent=click.user_agent,
                ip_hash=click.ip_hash,
                is_bot=click.is_bot,
            )
        )
    return str(found.url)


def _expired(surface_id: str, created: datetime, now: datetime, lifetimes: Lifetimes) -> bool:
    lifetime = lifetimes.get(surface_id)
    return lifetime is not None and created + lifetime <= now


def _follow_sqlite(
    conn: sqlite3.Connection, code: str, click: Click, lifetimes: Lifetimes
) -> str | None:
    found = conn.execute(
        "SELECT url, message_id, campaign_id, surface_id, created_at FROM links WHERE code = ?",
        (code,),
    ).fetchone()
    if found is None:
        return None
    url, message_id, campaign_id, surface_id, created_at = found
    if surface_id in lifetimes and _expired(
        surface_id, datetime.fromisoformat(created_at).replace(tzinfo=UTC), click.at, lifetimes
    ):
        return None
    conn.execute(
        "INSERT INTO clicks (code, message_id, campaign_id, surface_id, at, user_agent, ip_hash, "
        "is_bot) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            code,
            message_id,
            campaign_id,
            surface_id,
            sqlite_time(click.at),
            click.user_agent,
            click.ip_hash,
            click.is_bot,
        ),
    )
    return str(url)


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
