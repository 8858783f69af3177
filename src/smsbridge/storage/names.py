"""Unique names: a name clashes with another row's when they differ only in case or spacing.

The columns' UNIQUE constraints catch exact duplicates even under a race; the folded
comparison (:func:`smsbridge.domain.names.name_key`) happens here, under a transaction-scoped
lock on PostgreSQL so that two concurrent writers cannot both take ``Acme`` and ``acme``
(SQLite runs one writer at a time).
"""

from __future__ import annotations

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.domain.names import name_key
from smsbridge.errors import Conflict, phrase
from smsbridge.storage.dialects import dialect_of


def name_taken(kind: str, name: str) -> Conflict:
    if kind == "surface":
        said = phrase(
            "a surface named %(name)r already exists (names differing only in case or spaces "
            "are the same name)",
            name=name,
        )
    else:
        said = phrase(
            "a credential named %(name)r already exists (names differing only in case or "
            "spaces are the same name)",
            name=name,
        )
    return Conflict.on("name", said)


async def require_free_name(
    conn: AsyncConnection, table: Table, row_id: str, name: str, kind: str
) -> None:
    """Raise :func:`name_taken` when a row of ``table`` other than ``row_id`` has ``name``."""
    await dialect_of(conn).lock_table(conn, table)
    key = name_key(name)
    others = await conn.execute(select(table.c.name).where(table.c.id != row_id))
    for other in others.scalars():
        if name_key(other) == key:
            raise name_taken(kind, other)
