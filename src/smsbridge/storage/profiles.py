"""Profile rows: batch upserts, lookups, and the audience queries campaigns stream through."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.domain.campaigns import Audience
from smsbridge.domain.profiles import Profile
from smsbridge.storage.dialects import dialect_of
from smsbridge.storage.tables import profiles


async def upsert_many(conn: AsyncConnection, batch: Sequence[Profile], now: datetime) -> None:
    """Insert or replace profiles (the last one wins when an id repeats in ``batch``)."""
    if not batch:
        return
    latest = {p.external_id: p for p in batch}
    rows = [
        {
            "external_id": p.external_id,
            "phone": p.phone,
            "attributes": p.attributes,
            "timezone": p.timezone,
            "created_at": now,
            "updated_at": now,
        }
        for p in latest.values()
    ]
    statement = dialect_of(conn).upsert(
        profiles, ("external_id",), ("phone", "attributes", "timezone", "updated_at")
    )
    await conn.execute(statement, rows)


async def get_profile(conn: AsyncConnection, external_id: str) -> dict[str, Any] | None:
    found = (
        await conn.execute(select(profiles).where(profiles.c.external_id == external_id))
    ).first()
    return dict(found._mapping) if found else None


async def delete_profile(conn: AsyncConnection, external_id: str) -> bool:
    result = await conn.execute(delete(profiles).where(profiles.c.external_id == external_id))
    return bool(result.rowcount)


async def list_profiles(
    conn: AsyncConnection, *, limit: int, after: str | None, phone: str | None = None
) -> list[dict[str, Any]]:
    query = select(profiles).order_by(profiles.c.external_id).limit(limit)
    if after is not None:
        query = query.where(profiles.c.external_id > after)
    if phone is not None:
        query = query.where(profiles.c.phone == phone)
    return [dict(r._mapping) for r in await conn.execute(query)]


async def count_profiles(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(profiles))).scalar_one())


_AUDIENCE_COLUMNS = (
    profiles.c.external_id,
    profiles.c.phone,
    profiles.c.attributes,
    profiles.c.timezone,
)


async def audience_batch(
    conn: AsyncConnection, audience: Audience, *, after: str | None, limit: int
) -> list[tuple[str, str, dict[str, Any], str | None]]:
    """The next ``limit`` profiles of an ``all`` or ``filter`` audience, by external id."""
    query = select(*_AUDIENCE_COLUMNS).order_by(profiles.c.external_id).limit(limit)
    if after is not None:
        query = query.where(profiles.c.external_id > after)
    return await dialect_of(conn).fetch_tuples(conn, audience_where(conn, query, audience))


def audience_where(conn: AsyncConnection, query: Select[Any], audience: Audience) -> Select[Any]:
    """``query`` on ``profiles`` narrowed to an ``all`` or ``filter`` audience."""
    dialect = dialect_of(conn)
    for wanted in audience.filters:
        # compared as JSON values ("1" is not 1)
        query = query.where(dialect.json_matches(profiles.c.attributes, wanted.name, wanted.values))
    return query


async def profiles_by_id(
    conn: AsyncConnection, external_ids: Sequence[str]
) -> dict[str, tuple[str, str, dict[str, Any], str | None]]:
    if not external_ids:
        return {}
    rows = await conn.execute(
        select(*_AUDIENCE_COLUMNS).where(profiles.c.external_id.in_(set(external_ids)))
    )
    return {r[0]: tuple(r) for r in rows}
