"""Credential rows: the secret-free document, the sealed secrets and their hints."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.domain.names import listed_names
from smsbridge.errors import Conflict, phrase
from smsbridge.storage.dialects import dialect_of
from smsbridge.storage.names import name_taken, require_free_name
from smsbridge.storage.tables import credentials, surface_credentials, surfaces


@dataclass(frozen=True)
class CredentialRow:
    id: str
    name: str
    document: dict[str, Any]
    secrets: str
    secret_hints: dict[str, str]
    created_at: datetime
    updated_at: datetime


def _row(r: Any) -> CredentialRow:
    return CredentialRow(
        id=r.id,
        name=r.name,
        document=dict(r.document),
        secrets=r.secrets,
        secret_hints=dict(r.secret_hints),
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


async def insert_credential(conn: AsyncConnection, row: CredentialRow) -> None:
    await require_free_name(conn, credentials, row.id, row.name, "credential")
    try:
        async with conn.begin_nested():
            await conn.execute(insert(credentials).values(**row.__dict__))
    except IntegrityError as exc:
        raise name_taken("credential", row.name) from exc


async def update_credential(conn: AsyncConnection, row: CredentialRow) -> None:
    await require_free_name(conn, credentials, row.id, row.name, "credential")
    try:
        async with conn.begin_nested():
            await conn.execute(
                update(credentials)
                .where(credentials.c.id == row.id)
                .values(
                    name=row.name,
                    document=row.document,
                    secrets=row.secrets,
                    secret_hints=row.secret_hints,
                    updated_at=row.updated_at,
                )
            )
    except IntegrityError as exc:
        raise name_taken("credential", row.name) from exc


async def get_credential(
    conn: AsyncConnection, credential_id: str, *, for_update: bool = False
) -> CredentialRow | None:
    query = select(credentials).where(credentials.c.id == credential_id)
    if for_update:
        query = dialect_of(conn).for_update(query)
    found = (await conn.execute(query)).first()
    return _row(found) if found else None


async def versions(conn: AsyncConnection, ids: set[str]) -> dict[str, datetime]:
    rows = await conn.execute(
        select(credentials.c.id, credentials.c.updated_at).where(credentials.c.id.in_(ids))
    )
    return {r.id: r.updated_at for r in rows}


async def get_credentials(conn: AsyncConnection, ids: list[str]) -> list[CredentialRow]:
    if not ids:
        return []
    return [
        _row(r) for r in await conn.execute(select(credentials).where(credentials.c.id.in_(ids)))
    ]


async def list_credentials(
    conn: AsyncConnection, *, limit: int, after: str | None = None
) -> list[CredentialRow]:
    query = select(credentials).order_by(credentials.c.id).limit(limit)
    if after is not None:
        query = query.where(credentials.c.id > after)
    return [_row(r) for r in await conn.execute(query)]


async def all_secret_tokens(conn: AsyncConnection) -> list[tuple[str, str]]:
    rows = await conn.execute(select(credentials.c.id, credentials.c.secrets))
    return [(r.id, r.secrets) for r in rows]


async def set_secret_token(conn: AsyncConnection, credential_id: str, token: str) -> None:
    await conn.execute(
        update(credentials).where(credentials.c.id == credential_id).values(secrets=token)
    )


async def users(conn: AsyncConnection, credential_id: str) -> list[str]:
    """Names of the surfaces using this credential, as primary or fallback."""
    query = (
        select(surfaces.c.name)
        .where(
            surfaces.c.id.in_(
                select(surface_credentials.c.surface_id).where(
                    surface_credentials.c.credential_id == credential_id
                )
            )
        )
        .order_by(surfaces.c.name)
    )
    return [str(name) for name in (await conn.execute(query)).scalars()]


async def delete_credential(conn: AsyncConnection, credential_id: str) -> None:
    using = await users(conn, credential_id)
    if using:
        raise Conflict(
            phrase(
                "credential is used by %(count)s surface(s): %(names)s; point them at another "
                "credential before deleting it",
                count=len(using),
                names=listed_names(using, len(using)),
            )
        )
    try:
        async with conn.begin_nested():
            await conn.execute(delete(credentials).where(credentials.c.id == credential_id))
    except IntegrityError as exc:  # a surface started using it meanwhile
        raise Conflict(phrase("credential is used by a surface")) from exc
