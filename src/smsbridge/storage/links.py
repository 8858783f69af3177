"""Short links and their clicks."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.storage.claim_sqlite import sqlite_time
from smsbridge.storage.database import Database
from smsbridge.storage.tables import clicks, links


@dataclass(frozen=True)
class Click:
    at: datetime
    user_agent: str | None
    ip_hash: str | None
    is_bot: bool


async def insert_links(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(links), list(rows))


async def follow(db: Database, code: str, click: Click) -> str | None:
    """The URL behind ``code`` (one primary-key lookup), with the click recorded; None for an
    unknown code. On SQLite, one call to the hot-path thread."""
    if db.dialect == "sqlite":
        return await db.sqlite_write(partial(_follow_sqlite, code=code, click=click))
    async with db.transaction() as conn:
        found = (
            await conn.execute(
                select(
                    links.c.url, links.c.message_id, links.c.campaign_id, links.c.surface_id
                ).where(links.c.code == code)
            )
        ).first()
        if found is None:
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


def _follow_sqlite(conn: sqlite3.Connection, code: str, click: Click) -> str | None:
    found = conn.execute(
        "SELECT url, message_id, campaign_id, surface_id FROM links WHERE code = ?", (code,)
    ).fetchone()
    if found is None:
        return None
    url, message_id, campaign_id, surface_id = found
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
