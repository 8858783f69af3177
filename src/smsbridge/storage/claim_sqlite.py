"""SQLite forms of the claim and completion statements, shaped for the send hot path.

The SQLite driver runs in a thread of the worker process and takes Python's GIL back for
every row it steps through (each row of a ``RETURNING`` or a ``SELECT``, each row of an
``executemany``), so a row-at-a-time exchange makes the event loop and the driver hand the
GIL to each other several times per message. These forms exchange whole batches instead:
one multi-row statement per write, and reads folded into a single JSON row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

# SQLite accepts at most 32,766 bound parameters per statement.
MAX_PARAMETERS = 32_000


def sqlite_time(value: datetime | None) -> str | None:
    """A UTC datetime as SQLAlchemy stores it in SQLite (naive UTC, microseconds always)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _chunks(rows: Sequence[tuple[Any, ...]]) -> list[Sequence[tuple[Any, ...]]]:
    if not rows:
        return []
    size = max(1, MAX_PARAMETERS // len(rows[0]))
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def _placeholders(row_count: int, width: int) -> str:
    row = "(" + ", ".join(["?"] * width) + ")"
    return ", ".join([row] * row_count)


async def claim(
    conn: AsyncConnection, *, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[tuple[Any, ...]]:
    """Lease up to ``limit`` due rows; their message data as tuples (see ``_CLAIMED``)."""
    at = sqlite_time(now)
    until = sqlite_time(now + lease)
    await conn.exec_driver_sql(
        "UPDATE outbox SET lease_owner = ?, lease_expires_at = ?, lease_token = lease_token + 1 "
        "WHERE message_id IN (SELECT message_id FROM outbox WHERE due_at <= ? "
        "AND (lease_owner IS NULL OR lease_expires_at < ?) ORDER BY due_at LIMIT ?)",
        (owner, until, at, at, limit),
    )
    batch = "SELECT message_id FROM outbox WHERE lease_owner = ? AND lease_expires_at = ?"
    await conn.exec_driver_sql(
        f"UPDATE messages SET status = 'sending', updated_at = ? "
        f"WHERE id IN ({batch}) AND status != 'sending'",
        (at, owner, until),
    )
    result = await conn.exec_driver_sql(_CLAIMED, (owner, until))
    document = result.scalar_one()
    return [tuple(row) for row in orjson.loads(document)] if document else []


_CLAIMED = """
SELECT json_group_array(json_array(
    m.id, o.lease_token, m.surface_id, sc.credential_id, s.status_token,
    m.to_number, m.from_number, m.body, m.attempts, m.status))
FROM outbox AS o
JOIN messages AS m ON m.id = o.message_id
LEFT JOIN surfaces AS s ON s.id = m.surface_id
LEFT JOIN surface_credentials AS sc ON sc.surface_id = m.surface_id AND sc.position = 0
WHERE o.lease_owner = ? AND o.lease_expires_at = ?
"""


async def owned(conn: AsyncConnection, pairs: Sequence[tuple[str, int]]) -> set[str]:
    """Which of these (message_id, lease_token) still hold their lease, in one result row."""
    found: set[str] = set()
    for chunk in _chunks(pairs):
        ids = ", ".join(["?"] * len(chunk))
        result = await conn.exec_driver_sql(
            f"SELECT group_concat(message_id, ',') FROM outbox WHERE message_id IN ({ids}) "
            f"AND (message_id, lease_token) IN (VALUES {_placeholders(len(chunk), 2)})",
            tuple(m for m, _ in chunk) + tuple(x for pair in chunk for x in pair),
        )
        joined = result.scalar_one()
        if joined:
            found.update(joined.split(","))
    return found


async def delete_entries(conn: AsyncConnection, message_ids: Sequence[str]) -> None:
    for chunk in _chunks([(m,) for m in message_ids]):
        await conn.exec_driver_sql(
            f"DELETE FROM outbox WHERE message_id IN ({', '.join(['?'] * len(chunk))})",
            tuple(m for (m,) in chunk),
        )


async def update_messages(conn: AsyncConnection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows of (status, attempts, credential_id, provider_message_id, last_error, sent_at,
    updated_at, id), written by one ``UPDATE … FROM`` per chunk."""
    for chunk in _chunks(rows):
        await conn.exec_driver_sql(
            "WITH v(status, attempts, credential_id, provider_message_id, last_error, sent_at, "
            f"updated_at, id) AS (VALUES {_placeholders(len(chunk), 8)}) "
            "UPDATE messages SET status = v.status, attempts = v.attempts, "
            "credential_id = v.credential_id, provider_message_id = v.provider_message_id, "
            "last_error = v.last_error, sent_at = v.sent_at, updated_at = v.updated_at "
            "FROM v WHERE messages.id = v.id",
            tuple(x for row in chunk for x in row),
        )


async def insert_events(conn: AsyncConnection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows of (message_id, at, type, detail JSON), one multi-row INSERT per chunk."""
    for chunk in _chunks(rows):
        await conn.exec_driver_sql(
            "INSERT INTO message_events (message_id, at, type, detail) "
            f"VALUES {_placeholders(len(chunk), 4)}",
            tuple(x for row in chunk for x in row),
        )
