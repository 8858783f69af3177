"""API key rows: only a SHA-256 hash of each key is stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.storage.tables import api_keys


@dataclass(frozen=True)
class ApiKeyRow:
    id: str
    name: str
    role: str
    key_hash: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


def _row(r: Any) -> ApiKeyRow:
    return ApiKeyRow(r.id, r.name, r.role, r.key_hash, r.prefix, r.created_at, r.revoked_at)


async def insert_key(conn: AsyncConnection, row: ApiKeyRow) -> None:
    await conn.execute(insert(api_keys).values(**row.__dict__))


async def find_by_hash(conn: AsyncConnection, key_hash: str) -> ApiKeyRow | None:
    found = (await conn.execute(select(api_keys).where(api_keys.c.key_hash == key_hash))).first()
    return _row(found) if found else None


async def list_keys(conn: AsyncConnection) -> list[ApiKeyRow]:
    return [_row(r) for r in await conn.execute(select(api_keys).order_by(api_keys.c.id))]


async def revoke(conn: AsyncConnection, key_id: str, at: datetime) -> bool:
    result = await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    return bool(result.rowcount)


async def get_key(conn: AsyncConnection, key_id: str) -> ApiKeyRow | None:
    found = (await conn.execute(select(api_keys).where(api_keys.c.id == key_id))).first()
    return _row(found) if found else None
