"""The reads and writes of a group of accepted messages, set-based: one statement per table
for the whole group, on a synchronous connection (``Database.run_transaction``: on SQLite
the transaction is one hop to the hot-path thread)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, tuple_
from sqlalchemy.exc import IntegrityError

from smsbridge.errors import Conflict
from smsbridge.storage.dialects import sqlite_rows
from smsbridge.storage.messages import PACED_STATUSES, NewMessage, insert_rows
from smsbridge.storage.tables import (
    idempotency_keys,
    links,
    message_events,
    messages,
    outbox,
    suppressions,
    surfaces,
)


def surface_documents(conn: Connection, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The documents of the surfaces among ``ids`` that exist."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = conn.execute(select(surfaces.c.id, surfaces.c.document).where(surfaces.c.id.in_(wanted)))
    return {row.id: dict(row.document) for row in rows}


def idempotency_records(
    conn: Connection, keys: Sequence[tuple[str, str]], since: datetime
) -> dict[tuple[str, str], dict[str, Any]]:
    """The live records among ``(scope, key)`` pairs."""
    if not keys:
        return {}
    rows = conn.execute(
        select(idempotency_keys).where(
            tuple_(idempotency_keys.c.scope, idempotency_keys.c.key).in_(sorted(set(keys))),
            idempotency_keys.c.created_at >= since,
        )
    )
    return {(row.scope, row.key): dict(row._mapping) for row in rows}


def suppressed(conn: Connection, sender: str, phones: Iterable[str]) -> set[str]:
    """The numbers among ``phones`` that opted out of ``sender``."""
    wanted = sorted(set(phones))
    if not wanted:
        return set()
    rows = conn.execute(
        select(suppressions.c.phone).where(
            suppressions.c.sender == sender, suppressions.c.phone.in_(wanted)
        )
    )
    return {row[0] for row in rows}


def marketing_counts(
    conn: Connection, surface_id: str, phones: Iterable[str], since: datetime
) -> dict[str, int]:
    """How many marketing messages of the surface each number got since ``since``."""
    wanted = sorted(set(phones))
    if not wanted:
        return {}
    rows = conn.execute(
        select(messages.c.to_number, func.count())
        .where(
            messages.c.to_number.in_(wanted),
            messages.c.surface_id == surface_id,
            messages.c.message_type == "marketing",
            messages.c.created_at >= since,
            messages.c.status.in_(PACED_STATUSES),
        )
        .group_by(messages.c.to_number)
    )
    return {phone: int(count) for phone, count in rows}


def write_accepted(
    conn: Connection,
    new: Sequence[NewMessage],
    due: Sequence[datetime | None],
    link_rows: Sequence[dict[str, Any]],
    idempotent: Sequence[dict[str, Any]],
    expired_before: datetime,
) -> None:
    """Insert the group's messages, first events, outbox entries, links and Idempotency-Key
    records. :class:`Conflict` when a live record of one of the keys exists (a concurrent
    twin request committed first; the transaction is then spoilt)."""
    if conn.dialect.name == "sqlite":  # thousands of rows: straight through the driver
        raw = conn.connection.dbapi_connection
        if new:
            sqlite_rows.insert_messages(raw, new, due)  # type: ignore[arg-type]
        if link_rows:
            sqlite_rows.insert_rows(raw, links.name, link_rows)  # type: ignore[arg-type]
    else:
        rows, events, entries = insert_rows(new, due) if new else ([], [], [])
        for table, values in (
            (messages, rows),
            (message_events, events),
            (outbox, entries),
            (links, link_rows),
        ):
            if values:
                conn.execute(insert(table), list(values))
    if idempotent:
        # Only expired records may be replaced; a live one makes the insert conflict.
        conn.execute(
            delete(idempotency_keys).where(
                tuple_(idempotency_keys.c.scope, idempotency_keys.c.key).in_(
                    sorted({(r["scope"], r["key"]) for r in idempotent})
                ),
                idempotency_keys.c.created_at < expired_before,
            )
        )
        try:
            conn.execute(insert(idempotency_keys), list(idempotent))
        except IntegrityError as exc:
            raise Conflict("a request with this Idempotency-Key was recorded first") from exc
