"""The SQLite form of one fan-out batch's write: cursor compare-and-set, messages, outbox
entries, links, exclusions — one transaction, in one call to the hot-path thread
(:meth:`Database.sqlite_write`).

Each table gets multi-row statements whose per-batch constants are bound once
(``INSERT … SELECT column1, ?, … FROM (VALUES (…), (…))``). A campaign message's first event
is not written (see ``storage.fanout``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from smsbridge.domain.campaigns import CampaignStatus
from smsbridge.errors import Conflict
from smsbridge.storage.dialects.base import OpenDatabase
from smsbridge.storage.dialects.sqlite_outbox import MAX_PARAMETERS, sqlite_time
from smsbridge.storage.records import FanoutBatch, NewRecipient

CONFLICT = "another fan-out of this campaign wrote these recipients first"


async def write_fanout(db: OpenDatabase, batch: FanoutBatch) -> bool:
    guard, statements = _statements(batch)
    try:
        return await db.sqlite_write(partial(_write, guard=guard, statements=statements))
    except sqlite3.IntegrityError as exc:
        raise Conflict(CONFLICT) from exc


def _values(rows: int, width: int) -> str:
    row = "(" + ", ".join(["?"] * width) + ")"
    return ", ".join([row] * rows)


def _due_times(chunk: Sequence[NewRecipient]) -> list[str | None]:
    """Each recipient's due time as stored, formatted once per distinct time (without a
    throttle the whole batch shares one)."""
    formatted: dict[datetime, str | None] = {}
    return [
        formatted.get(r.due_at) or formatted.setdefault(r.due_at, sqlite_time(r.due_at))
        for r in chunk
    ]


@dataclass(frozen=True, slots=True)
class _Statement:
    sql: str
    parameters: Sequence[Any]
    many: bool = False
    """``parameters`` is a list of rows (``executemany``)."""


def _statements(batch: FanoutBatch) -> tuple[_Statement, list[_Statement]]:
    """The cursor compare-and-set, then the batch's inserts, with their parameters.

    Built on the caller's thread: the writer thread then only binds and steps, so it holds the
    interpreter lock as little as possible while the next batch is being prepared."""
    now = sqlite_time(batch.now)
    guard = _Statement(
        "UPDATE campaigns SET fanout_cursor = ?, fanout_done = ?, targeted = targeted + ?, "
        "excluded = excluded + ?, updated_at = ? "
        "WHERE id = ? AND status = ? AND fanout_done = 0 AND fanout_cursor IS ?",
        (
            batch.cursor,
            batch.done,
            len(batch.recipients),
            len(batch.exclusions),
            now,
            batch.campaign_id,
            CampaignStatus.RUNNING.value,
            batch.expected_cursor,
        ),
    )
    statements: list[_Statement] = []
    status = batch.status.value
    send_at = sqlite_time(batch.send_at)
    size = MAX_PARAMETERS // 6
    for start in range(0, len(batch.recipients), size):
        chunk = batch.recipients[start : start + size]
        statements.append(
            _Statement(
                "INSERT INTO messages (id, surface_id, campaign_id, profile_id, message_type, "
                "to_number, from_number, body, segments, encoding, status, attempts, send_at, "
                "created_at, updated_at) "
                "SELECT column1, ?, ?, column2, ?, column3, ?, column4, column5, column6, ?, 0, "
                f"?, ?, ? FROM (VALUES {_values(len(chunk), 6)})",
                (
                    batch.surface_id,
                    batch.campaign_id,
                    batch.message_type,
                    batch.from_number,
                    status,
                    send_at,
                    now,
                    now,
                    *(
                        x
                        for r in chunk
                        for x in (r.id, r.profile_id, r.to_number, r.body, r.segments, r.encoding)
                    ),
                ),
            )
        )
        deferred = [(sqlite_time(r.due_at), r.id) for r in chunk if r.deferred]
        if deferred:  # quiet hours: these wait, scheduled, for the end of the window
            statements.append(
                _Statement(
                    "UPDATE messages SET status = 'scheduled', send_at = ? WHERE id = ?",
                    deferred,
                    many=True,
                )
            )
        dues = _due_times(chunk)
        if len(set(dues)) == 1:  # no throttle: one due time for the whole batch
            statements.append(
                _Statement(
                    "INSERT INTO outbox (message_id, due_at, lease_token) SELECT column1, ?, 0 "
                    f"FROM (VALUES {_values(len(chunk), 1)})",
                    (dues[0], *(r.id for r in chunk)),
                )
            )
        else:
            statements.append(
                _Statement(
                    "INSERT INTO outbox (message_id, due_at, lease_token) "
                    f"SELECT column1, column2, 0 FROM (VALUES {_values(len(chunk), 2)})",
                    tuple(x for r, due in zip(chunk, dues, strict=True) for x in (r.id, due)),
                )
            )
    link_rows = [(code, r.id, url) for r in batch.recipients for code, url in r.links]
    for start in range(0, len(link_rows), MAX_PARAMETERS // 3):
        chunk_links = link_rows[start : start + MAX_PARAMETERS // 3]
        statements.append(
            _Statement(
                "INSERT INTO links (code, message_id, campaign_id, surface_id, url, created_at) "
                "SELECT column1, column2, ?, ?, column3, ? "
                f"FROM (VALUES {_values(len(chunk_links), 3)})",
                (
                    batch.campaign_id,
                    batch.surface_id,
                    now,
                    *(x for row in chunk_links for x in row),
                ),
            )
        )
    if batch.exclusions:
        statements.append(
            _Statement(
                "INSERT OR IGNORE INTO campaign_exclusions (campaign_id, profile_id, phone, "
                "reason, detail, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (batch.campaign_id, e.profile_id, e.phone, e.reason, e.detail, now)
                    for e in batch.exclusions
                ],
                many=True,
            )
        )
    return guard, statements


def _write(conn: sqlite3.Connection, guard: _Statement, statements: Sequence[_Statement]) -> bool:
    if not conn.execute(guard.sql, guard.parameters).rowcount:
        return False
    for statement in statements:
        if statement.many:
            conn.executemany(statement.sql, statement.parameters)
        else:
            conn.execute(statement.sql, statement.parameters)
    return True
