"""On SQLite, accepted messages are written as tuples built straight from the messages
(``storage/dialects/sqlite_rows.insert_messages``), not through SQLAlchemy. What lands in the
tables must be what SQLAlchemy's own insert of ``storage.messages.insert_rows`` stores — the
path PostgreSQL takes, and the one every reader was written against."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert

from smsbridge.storage import accepted
from smsbridge.storage.database import Database, create_engine
from smsbridge.storage.messages import NewMessage, insert_rows
from smsbridge.storage.tables import message_events, messages, outbox

NOW = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)


def _messages(tag: str) -> tuple[list[NewMessage], list[datetime | None]]:
    base: dict[str, Any] = {
        "surface_id": "srf_1",
        "campaign_id": None,
        "profile_id": None,
        "message_type": "transactional",
        "to_number": "+33612345678",
        "from_number": "Acme",
        "body": "Code 123456 — été 😀",
        "segments": 1,
        "encoding": "ucs2",
        "status": "queued",
        "send_at": None,
        "created_at": NOW,
    }
    later = NOW + timedelta(days=1, microseconds=1)
    made = [
        NewMessage(id=f"msg_{tag}1", **base),
        NewMessage(
            id=f"msg_{tag}2",
            **{**base, "status": "scheduled", "send_at": later, "profile_id": "p-1"},
            note="quiet hours in Europe/Paris: deferred to 2026-03-05T08:00:00+01:00",
        ),
        NewMessage(
            id=f"msg_{tag}3",
            **{**base, "status": "suppressed", "message_type": "marketing"},
            last_error='frequency cap: 3 "marketing" message(s) in 24 h',
        ),
        NewMessage(id=f"msg_{tag}4", **{**base, "campaign_id": f"cmp_{tag}"}, ignore_opt_out=True),
    ]
    return made, [NOW, later, None, NOW]


def _through_sqlalchemy(conn: Connection) -> None:
    new, due = _messages("b")
    rows, events, entries = insert_rows(new, due)
    conn.execute(insert(messages), rows)
    conn.execute(insert(message_events), events)
    conn.execute(insert(outbox), entries)


def _stored(path: str, tag: str) -> list[list[tuple[Any, ...]]]:
    """Every column of the three tables for the messages of ``tag``, ids and the events'
    own sequence left out."""
    with sqlite3.connect(path) as raw:
        found = []
        for sql in (
            "SELECT * FROM messages WHERE id LIKE ? ORDER BY id",
            # no detail: SQL NULL here, JSON 'null' through SQLAlchemy; both read back as None
            "SELECT message_id, at, type, NULLIF(detail, 'null') FROM message_events"
            " WHERE message_id LIKE ? ORDER BY message_id",
            "SELECT * FROM outbox WHERE message_id LIKE ? ORDER BY message_id",
        ):
            rows = raw.execute(sql, (f"msg_{tag}%",)).fetchall()
            found.append(
                [
                    tuple(v for v in row if v is None or not str(v).startswith(("msg_", "cmp_")))
                    for row in rows
                ]
            )
        return found


async def test_the_direct_rows_are_the_rows_sqlalchemy_stores(sqlite_url: str) -> None:
    db = Database(create_engine(sqlite_url))
    try:
        new, due = _messages("a")
        await db.run_transaction(
            lambda conn: accepted.write_accepted(conn, new, due, [], [], expired_before=NOW)
        )
        await db.run_transaction(_through_sqlalchemy)
    finally:
        await db.dispose()
    path = sqlite_url.split("///", 1)[1]
    direct, reference = _stored(path, "a"), _stored(path, "b")
    assert [len(rows) for rows in direct] == [4, 4, 3]
    assert direct == reference
