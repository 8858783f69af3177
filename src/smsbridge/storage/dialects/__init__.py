"""What differs between SQLite and PostgreSQL, behind one :class:`Dialect` protocol.

The dialect is picked here, from the engine's name, and only here: when the database opens
(``Database.dialect_ops``) or, for a repository function given a connection, by
:func:`dialect_of`.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.storage.dialects.base import Dialect
from smsbridge.storage.dialects.postgresql import PostgresqlDialect
from smsbridge.storage.dialects.sqlite import SqliteDialect

_DIALECTS: dict[str, Dialect] = {"sqlite": SqliteDialect(), "postgresql": PostgresqlDialect()}


def dialect_named(name: str) -> Dialect:
    """The dialect of an engine named ``name`` (``engine.dialect.name``)."""
    try:
        return _DIALECTS[name]
    except KeyError:
        raise ValueError(f"smsbridge runs on SQLite or PostgreSQL, not {name}") from None


def dialect_of(conn: AsyncConnection) -> Dialect:
    """The dialect of the database ``conn`` is connected to."""
    return _DIALECTS[conn.dialect.name]


def is_embedded(database_url: str) -> bool:
    """An embedded database (SQLite, a file next to the process): the process that opens it
    applies its migrations itself."""
    return database_url.startswith("sqlite")


__all__ = ["Dialect", "dialect_named", "dialect_of", "is_embedded"]
