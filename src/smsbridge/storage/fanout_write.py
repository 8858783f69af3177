"""Writing one fan-out batch: cursor compare-and-set, messages, outbox entries, exclusions
— one transaction, with the driver directly (no per-row SQLAlchemy processing).

A campaign message's first event (``queued``, or ``scheduled`` when it waits for a send time)
is not written: it is implied by the message row (see ``storage.messages.get_events``), and
leaving it out spares a third of the rows a launch writes.

On SQLite the transaction is one call in the hot-path thread (:meth:`Database.sqlite_write`)
and each table gets multi-row statements whose per-batch constants are bound once
(``INSERT … SELECT column1, ?, … FROM (VALUES (…), (…))``). On PostgreSQL the rows go through
asyncpg's ``executemany`` as plain tuples.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.exc import IntegrityError

from smsbridge.domain.campaigns import CampaignStatus
from smsbridge.domain.messages import MessageStatus
from smsbridge.errors import Conflict
from smsbridge.storage import campaigns as repo
from smsbridge.storage.claim import numbered
from smsbridge.storage.claim_sqlite import MAX_PARAMETERS, sqlite_time
from smsbridge.storage.database import Database


@dataclass(slots=True)
class NewRecipient:
    """One message of the batch (what varies per recipient)."""

    id: str
    profile_id: str
    to_number: str
    body: str
    segments: int
    encoding: str
    due_at: datetime
    links: tuple[tuple[str, str], ...] = ()
    """(code, URL) of the message's short links."""
    deferred: bool = False
    """Held back by quiet hours: ``scheduled`` with ``send_at`` = ``due_at``."""


@dataclass(slots=True)
class Exclusion:
    profile_id: str
    phone: str | None
    reason: str
    detail: str | None


@dataclass(frozen=True)
class FanoutBatch:
    campaign_id: str
    surface_id: str
    message_type: str
    from_number: str
    status: MessageStatus
    send_at: datetime | None
    now: datetime
    expected_cursor: str | None
    cursor: str | None
    done: bool
    recipients: Sequence[NewRecipient]
    exclusions: Sequence[Exclusion]


async def write_batch(db: Database, batch: FanoutBatch) -> bool:
    """Write the batch if the cursor is still ``expected_cursor`` and the campaign running;
    False (nothing written) otherwise. :class:`Conflict` if a recipient's number already has a
    message of this campaign (only a concurrent fan-out of the same campaign can cause it)."""
    try:
        if db.dialect == "sqlite":
            guard, statements = _sqlite_statements(batch)
            return await db.sqlite_write(partial(_write_sqlite, guard=guard, statements=statements))
        return await _write_postgresql(db, batch)
    except (sqlite3.IntegrityError, IntegrityError) as exc:
        raise Conflict("another fan-out of this campaign wrote these recipients first") from exc


async def _write_postgresql(db: Database, batch: FanoutBatch) -> bool:
    async with db.transaction() as conn:
        moved = await repo.advance_fanout(
            conn,
            batch.campaign_id,
            expected_cursor=batch.expected_cursor,
            cursor=batch.cursor,
            done=batch.done,
            targeted=len(batch.recipients),
            excluded=len(batch.exclusions),
            now=batch.now,
        )
        if not moved:
            return False
        if batch.recipients:
            await conn.exec_driver_sql(
                _PG_MESSAGE,
                [
                    (
                        r.id,
                        batch.surface_id,
                        batch.campaign_id,
                        r.profile_id,
                        batch.message_type,
                        r.to_number,
                        batch.from_number,
                        r.body,
                        r.segments,
                        r.encoding,
                        _status(batch, r),
                        r.due_at if r.deferred else batch.send_at,
                        batch.now,
                        batch.now,
                    )
                    for r in batch.recipients
                ],
            )
            await conn.exec_driver_sql(_PG_OUTBOX, [(r.id, r.due_at) for r in batch.recipients])
            link_rows = [
                (code, r.id, batch.campaign_id, batch.surface_id, url, batch.now)
                for r in batch.recipients
                for code, url in r.links
            ]
            if link_rows:
                await conn.exec_driver_sql(_PG_LINK, link_rows)
        await repo.insert_exclusions(conn, [_exclusion_row(batch, e) for e in batch.exclusions])
    return True


_PG_MESSAGE = numbered(
    "INSERT INTO messages (id, surface_id, campaign_id, profile_id, message_type, to_number, "
    "from_number, body, segments, encoding, status, attempts, send_at, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)"
)
_PG_OUTBOX = numbered("INSERT INTO outbox (message_id, due_at, lease_token) VALUES (?, ?, 0)")
_PG_LINK = numbered(
    "INSERT INTO links (code, message_id, campaign_id, surface_id, url, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


def _status(batch: FanoutBatch, recipient: NewRecipient) -> str:
    return MessageStatus.SCHEDULED.value if recipient.deferred else batch.status.value


def _exclusion_row(batch: FanoutBatch, e: Exclusion) -> dict[str, object]:
    return {
        "campaign_id": batch.campaign_id,
        "profile_id": e.profile_id,
        "phone": e.phone,
        "reason": e.reason,
        "detail": e.detail,
        "created_at": batch.now,
    }


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


def _sqlite_statements(batch: FanoutBatch) -> tuple[_Statement, list[_Statement]]:
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


def _write_sqlite(
    conn: sqlite3.Connection, guard: _Statement, statements: Sequence[_Statement]
) -> bool:
    if not conn.execute(guard.sql, guard.parameters).rowcount:
        return False
    for statement in statements:
        if statement.many:
            conn.executemany(statement.sql, statement.parameters)
        else:
            conn.execute(statement.sql, statement.parameters)
    return True
