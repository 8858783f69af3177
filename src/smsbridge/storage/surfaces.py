"""Surface rows and the surface → credential references."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.storage.names import name_taken, require_free_name
from smsbridge.storage.tables import (
    campaigns,
    credentials,
    messages,
    surface_credentials,
    surfaces,
)

PENDING_STATUSES = ("scheduled", "queued", "sending")


@dataclass(frozen=True)
class SurfaceRow:
    id: str
    name: str
    document: dict[str, Any]
    inbound_token: str
    status_token: str
    created_at: datetime
    updated_at: datetime


def _row(r: Any) -> SurfaceRow:
    return SurfaceRow(
        r.id, r.name, dict(r.document), r.inbound_token, r.status_token, r.created_at, r.updated_at
    )


async def missing_credentials(conn: AsyncConnection, ids: list[str]) -> list[str]:
    if not ids:
        return []
    found = await conn.execute(select(credentials.c.id).where(credentials.c.id.in_(ids)))
    present = {r.id for r in found}
    return [i for i in ids if i not in present]


async def _set_references(
    conn: AsyncConnection, surface_id: str, credential_ids: list[str]
) -> None:
    await conn.execute(
        delete(surface_credentials).where(surface_credentials.c.surface_id == surface_id)
    )
    await conn.execute(
        insert(surface_credentials),
        [
            {"surface_id": surface_id, "position": i, "credential_id": c}
            for i, c in enumerate(credential_ids)
        ],
    )


async def insert_surface(conn: AsyncConnection, row: SurfaceRow, credential_ids: list[str]) -> None:
    await require_free_name(conn, surfaces, row.id, row.name, "surface")
    try:
        async with conn.begin_nested():
            await conn.execute(insert(surfaces).values(**row.__dict__))
    except IntegrityError as exc:
        raise name_taken("surface", row.name) from exc
    await _set_references(conn, row.id, credential_ids)


async def update_surface(conn: AsyncConnection, row: SurfaceRow, credential_ids: list[str]) -> None:
    await require_free_name(conn, surfaces, row.id, row.name, "surface")
    try:
        async with conn.begin_nested():
            await conn.execute(
                update(surfaces)
                .where(surfaces.c.id == row.id)
                .values(name=row.name, document=row.document, updated_at=row.updated_at)
            )
    except IntegrityError as exc:
        raise name_taken("surface", row.name) from exc
    await _set_references(conn, row.id, credential_ids)


async def get_surface(conn: AsyncConnection, surface_id: str) -> SurfaceRow | None:
    found = (await conn.execute(select(surfaces).where(surfaces.c.id == surface_id))).first()
    return _row(found) if found else None


async def list_surfaces(
    conn: AsyncConnection, *, limit: int, after: str | None = None
) -> list[SurfaceRow]:
    query = select(surfaces).order_by(surfaces.c.id).limit(limit)
    if after is not None:
        query = query.where(surfaces.c.id > after)
    return [_row(r) for r in await conn.execute(query)]


async def has_pending_messages(conn: AsyncConnection, surface_id: str) -> bool:
    query = (
        select(messages.c.id)
        .where(messages.c.surface_id == surface_id, messages.c.status.in_(PENDING_STATUSES))
        .limit(1)
    )
    return (await conn.execute(query)).first() is not None


async def campaigns_using(
    conn: AsyncConnection, surface_id: str, *, limit: int = 5
) -> tuple[list[str], int]:
    """Names of (up to ``limit``) campaigns on the surface, and how many there are."""
    names = (
        await conn.execute(
            select(campaigns.c.name)
            .where(campaigns.c.surface_id == surface_id)
            .order_by(campaigns.c.created_at)
            .limit(limit)
        )
    ).scalars()
    shown = [str(n) for n in names]
    if len(shown) < limit:
        return shown, len(shown)
    total = (
        await conn.execute(
            select(func.count()).select_from(campaigns).where(campaigns.c.surface_id == surface_id)
        )
    ).scalar_one()
    return shown, int(total)


async def delete_surface(conn: AsyncConnection, surface_id: str) -> None:
    await conn.execute(delete(surfaces).where(surfaces.c.id == surface_id))


async def by_status_token(conn: AsyncConnection, token: str) -> SurfaceRow | None:
    found = (await conn.execute(select(surfaces).where(surfaces.c.status_token == token))).first()
    return _row(found) if found else None


async def primary_credential_id(conn: AsyncConnection, surface_id: str) -> str | None:
    found = (
        await conn.execute(
            select(surface_credentials.c.credential_id).where(
                surface_credentials.c.surface_id == surface_id,
                surface_credentials.c.position == 0,
            )
        )
    ).scalar_one_or_none()
    return None if found is None else str(found)


async def by_inbound_token(conn: AsyncConnection, token: str) -> SurfaceRow | None:
    found = (await conn.execute(select(surfaces).where(surfaces.c.inbound_token == token))).first()
    return _row(found) if found else None


async def set_tokens(
    conn: AsyncConnection, surface_id: str, *, inbound: str, status: str, at: datetime
) -> bool:
    result = await conn.execute(
        update(surfaces)
        .where(surfaces.c.id == surface_id)
        .values(inbound_token=inbound, status_token=status, updated_at=at)
    )
    return bool(result.rowcount)
