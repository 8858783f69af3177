"""Profile rows: batch upserts, lookups, and the audience queries campaigns stream through."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, delete, func, or_, select, type_coerce
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.domain.campaigns import AttributeFilter, Audience
from smsbridge.domain.profiles import Profile
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
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(profiles)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[profiles.c.external_id],
            set_={
                "phone": statement.excluded.phone,
                "attributes": statement.excluded.attributes,
                "timezone": statement.excluded.timezone,
                "updated_at": statement.excluded.updated_at,
            },
        ),
        rows,
    )


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


def _attribute_matches(dialect: str, wanted: AttributeFilter) -> ColumnElement[bool]:
    """The attribute equals one of the values, compared as JSON values (``"1"`` ≠ ``1``)."""
    if dialect == "postgresql":
        document = type_coerce(profiles.c.attributes, postgresql.JSONB)
        return or_(*(document.contains({wanted.name: v}) for v in wanted.values))
    value = func.json_extract(profiles.c.attributes, f'$."{wanted.name}"')
    kind = func.json_type(profiles.c.attributes, f'$."{wanted.name}"')
    # json_extract gives 1/0 for true/false: the JSON type keeps booleans apart from numbers.
    conditions = []
    for v in wanted.values:
        if isinstance(v, bool):
            conditions.append(kind == ("true" if v else "false"))
        elif isinstance(v, str):
            conditions.append(and_(kind == "text", value == v))
        else:
            conditions.append(and_(kind.in_(("integer", "real")), value == v))
    return or_(*conditions)


async def audience_batch(
    conn: AsyncConnection, audience: Audience, *, after: str | None, limit: int
) -> list[tuple[str, str, dict[str, Any], str | None]]:
    """The next ``limit`` profiles of an ``all`` or ``filter`` audience, by external id."""
    query = select(*_AUDIENCE_COLUMNS).order_by(profiles.c.external_id).limit(limit)
    if after is not None:
        query = query.where(profiles.c.external_id > after)
    for wanted in audience.filters:
        query = query.where(_attribute_matches(conn.dialect.name, wanted))
    if conn.dialect.name == "sqlite":
        # The batch as ONE row of JSON, decoded at once: row-by-row fetching through the
        # driver thread, plus decoding each attributes document, cost more than the query.
        batch = query.subquery()
        folded = select(
            func.json_group_array(
                func.json_array(
                    batch.c.external_id,
                    batch.c.phone,
                    func.json(batch.c.attributes),
                    batch.c.timezone,
                )
            )
        )
        document = (await conn.execute(folded)).scalar_one()
        return [tuple(row) for row in orjson.loads(document)]
    return [tuple(r) for r in await conn.execute(query)]


async def profiles_by_id(
    conn: AsyncConnection, external_ids: Sequence[str]
) -> dict[str, tuple[str, str, dict[str, Any], str | None]]:
    if not external_ids:
        return {}
    rows = await conn.execute(
        select(*_AUDIENCE_COLUMNS).where(profiles.c.external_id.in_(set(external_ids)))
    )
    return {r[0]: tuple(r) for r in rows}
