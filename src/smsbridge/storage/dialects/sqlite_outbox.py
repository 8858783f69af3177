"""SQLite forms of the claim, completion and start-mark statements, shaped for the send hot
path.

They run as plain functions on a :class:`sqlite3.Connection`, each claim and each completion
as one transaction handed to a thread in one hop (:meth:`Database.sqlite_write`): through the
async driver, every statement and fetch would be a round trip waiting for the busy event
loop's next turn. The thread still takes Python's GIL back for every row it steps through
(each row of a ``SELECT``, each row of an ``executemany``), competing with the event loop,
so the statements exchange whole batches: one multi-row statement per write, and reads
folded into a single JSON row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from smsbridge.storage.records import Completion

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


def claim(
    conn: sqlite3.Connection, *, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[tuple[Any, ...]]:
    """Lease up to ``limit`` due rows; their message data as tuples (see ``_CLAIMED``; after
    the credential version come the surface's fallback credentials as (position, id, version)
    rows, a placeholder, and the row's start mark)."""
    at = sqlite_time(now)
    until = sqlite_time(now + lease)
    leased = conn.execute(
        "UPDATE outbox SET lease_owner = ?, lease_expires_at = ?, lease_token = lease_token + 1 "
        "WHERE message_id IN (SELECT message_id FROM outbox WHERE due_at <= ? "
        "AND (lease_owner IS NULL OR lease_expires_at < ?) ORDER BY due_at LIMIT ?) "
        "RETURNING message_id",
        (owner, until, at, at, limit),
    ).fetchall()
    if not leased:
        return []
    # The leased rows by id (json_each: one parameter for any count): looking them up by
    # owner and lease end would scan the whole outbox, which has no index on them and may
    # hold millions of entries (a scheduled campaign's), at every claim.
    ids = orjson.dumps([message_id for (message_id,) in leased]).decode()
    conn.execute(
        "UPDATE messages SET status = 'sending', updated_at = ? "
        "WHERE id IN (SELECT value FROM json_each(?)) AND status != 'sending'",
        (at, ids),
    )
    (document,) = conn.execute(_CLAIMED, (ids,)).fetchone()
    return [tuple(row) for row in orjson.loads(document)] if document else []


_CLAIMED = """
SELECT json_group_array(json_array(
    m.id, o.lease_token, m.surface_id, sc.credential_id, s.status_token,
    m.to_number, m.from_number, m.body, m.attempts, m.status,
    NOT m.ignore_opt_out AND EXISTS (SELECT 1 FROM suppressions AS sp
        WHERE sp.sender = m.from_number AND sp.phone = m.to_number),
    c.updated_at,
    (SELECT json_group_array(json_array(f.position, f.credential_id, fc.updated_at))
        FROM surface_credentials AS f JOIN credentials AS fc ON fc.id = f.credential_id
        WHERE f.surface_id = m.surface_id AND f.position > 0),
    NULL, o.started_at, o.started_by))
FROM outbox AS o
JOIN messages AS m ON m.id = o.message_id
LEFT JOIN surfaces AS s ON s.id = m.surface_id
LEFT JOIN surface_credentials AS sc ON sc.surface_id = m.surface_id AND sc.position = 0
LEFT JOIN credentials AS c ON c.id = sc.credential_id
WHERE o.message_id IN (SELECT value FROM json_each(?))
"""


def owned(conn: sqlite3.Connection, pairs: Sequence[tuple[str, int]]) -> set[str]:
    """Which of these (message_id, lease_token) still hold their lease, in one result row."""
    found: set[str] = set()
    for chunk in _chunks(pairs):
        ids = ", ".join(["?"] * len(chunk))
        (joined,) = conn.execute(
            f"SELECT group_concat(message_id, ',') FROM outbox WHERE message_id IN ({ids}) "
            f"AND (message_id, lease_token) IN (VALUES {_placeholders(len(chunk), 2)})",
            tuple(m for m, _ in chunk) + tuple(x for pair in chunk for x in pair),
        ).fetchone()
        if joined:
            found.update(joined.split(","))
    return found


def delete_entries(conn: sqlite3.Connection, message_ids: Sequence[str]) -> None:
    for chunk in _chunks([(m,) for m in message_ids]):
        conn.execute(
            f"DELETE FROM outbox WHERE message_id IN ({', '.join(['?'] * len(chunk))})",
            tuple(m for (m,) in chunk),
        )


def update_messages(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows of (status, attempts, credential_id, provider_message_id, last_error, sent_at,
    updated_at, id), written by one ``UPDATE … FROM`` per chunk."""
    for chunk in _chunks(rows):
        conn.execute(
            "WITH v(status, attempts, credential_id, provider_message_id, last_error, sent_at, "
            f"updated_at, id) AS (VALUES {_placeholders(len(chunk), 8)}) "
            # A delivery report may have landed while the send was being recorded: it wins.
            "UPDATE messages SET status = CASE WHEN messages.status IN "
            "('delivered', 'undelivered') THEN messages.status ELSE v.status END, "
            "attempts = v.attempts, "
            "credential_id = v.credential_id, provider_message_id = v.provider_message_id, "
            "last_error = v.last_error, sent_at = v.sent_at, updated_at = v.updated_at "
            "FROM v WHERE messages.id = v.id",
            tuple(x for row in chunk for x in row),
        )


def insert_events(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows of (message_id, at, type, detail JSON), one multi-row INSERT per chunk."""
    for chunk in _chunks(rows):
        conn.execute(
            "INSERT INTO message_events (message_id, at, type, detail) "
            f"VALUES {_placeholders(len(chunk), 4)}",
            tuple(x for row in chunk for x in row),
        )


def complete(
    conn: sqlite3.Connection, completions: Sequence[Completion], now: datetime
) -> set[str]:
    """Apply the completions whose lease still holds; returns the ids applied.

    One writer holds SQLite (``BEGIN IMMEDIATE``): what the fence check sees stays true until
    commit, so checking first and then writing without ``RETURNING`` is safe.
    """
    owned_ids = owned(conn, [(c.message_id, c.lease_token) for c in completions])
    if not owned_ids:
        return owned_ids
    applied = [c for c in completions if c.message_id in owned_ids]
    delete_entries(conn, [c.message_id for c in applied if c.retry_at is None])
    for c in applied:
        if c.retry_at is not None:
            conn.execute(
                "UPDATE outbox SET lease_owner = NULL, lease_expires_at = NULL, due_at = ?, "
                "started_at = NULL, started_by = NULL WHERE message_id = ?",
                (sqlite_time(c.retry_at), c.message_id),
            )
    updated = sqlite_time(now)
    update_messages(
        conn,
        [
            (
                c.status,
                c.attempts,
                c.credential_id,
                c.provider_message_id,
                c.last_error,
                sqlite_time(c.sent_at),
                updated,
                c.message_id,
            )
            for c in applied
        ],
    )
    insert_events(
        conn,
        [
            (
                e.message_id,
                sqlite_time(e.at),
                e.type,
                None if e.detail is None else orjson.dumps(e.detail).decode(),
            )
            for c in applied
            for e in c.events
        ],
    )
    opt_outs = [(c.opt_out, c.last_error) for c in applied if c.opt_out is not None]
    if opt_outs:
        conn.executemany(
            "INSERT OR IGNORE INTO suppressions (sender, phone, source, keyword, created_at) "
            "VALUES (?, ?, 'provider', NULL, ?)",
            [(sender, phone, updated) for (sender, phone), _ in opt_outs],
        )
        conn.executemany(
            "INSERT INTO consent_events (phone, sender, action, source, keyword, actor, note, at) "
            "VALUES (?, ?, 'opted_out', 'provider', NULL, NULL, ?, ?)",
            [(phone, sender, note, updated) for (sender, phone), note in opt_outs],
        )
    return owned_ids


def mark_started(
    conn: sqlite3.Connection, pairs: Sequence[tuple[str, int]], *, worker: str, now: datetime
) -> set[str]:
    """Mark the attempts about to start on these (message_id, lease_token), where the lease
    still holds; the ids marked (one ``UPDATE … RETURNING`` per chunk)."""
    marked: set[str] = set()
    at = sqlite_time(now)
    for chunk in _chunks(pairs):
        ids = ", ".join(["?"] * len(chunk))
        rows = conn.execute(
            f"UPDATE outbox SET started_at = ?, started_by = ? WHERE message_id IN ({ids}) "
            f"AND (message_id, lease_token) IN (VALUES {_placeholders(len(chunk), 2)}) "
            "RETURNING message_id",
            (at, worker, *(m for m, _ in chunk), *(x for pair in chunk for x in pair)),
        ).fetchall()
        marked.update(row[0] for row in rows)
    return marked
