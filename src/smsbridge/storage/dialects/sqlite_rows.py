"""Plain inserts on SQLite, straight through the driver.

For the group commits' hot inserts (accepted messages, their events, outbox entries, links):
SQLAlchemy's per-row work (bind processors for every datetime and JSON value, parameter
construction) cost more than the inserts themselves on batches of thousands of rows. Here a
row's values are converted once, in the same forms SQLAlchemy stores (naive UTC datetimes
with microseconds, JSON text), and handed to ``executemany``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from smsbridge.storage.dialects.sqlite_outbox import sqlite_time
from smsbridge.storage.messages import NewMessage


def _time(value: datetime | None, times: dict[datetime, str | None]) -> str | None:
    """``value`` as stored; a group's rows share a handful of times (its clock reading), each
    formatted once in ``times``."""
    if value is None:
        return None
    text = times.get(value)
    if text is None:
        text = times[value] = sqlite_time(value)
    return text


def _stored(value: Any, times: dict[datetime, str | None]) -> Any:
    if value is None or isinstance(value, str | int | float):
        return value  # (bool is an int: stored as 0/1, as SQLAlchemy does)
    if isinstance(value, datetime):
        return _time(value, times)
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    raise TypeError(f"cannot store a {type(value).__name__} in SQLite")


def insert_rows(raw: sqlite3.Connection, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT ``rows`` (dicts with the same keys, named as the table's columns) into
    ``table``."""
    if not rows:
        return
    columns = list(rows[0])
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    times: dict[datetime, str | None] = {}
    raw.executemany(sql, [tuple([_stored(row[c], times) for c in columns]) for row in rows])


_MESSAGE_COLUMNS = (
    "id, surface_id, campaign_id, profile_id, message_type, to_number, from_number, body, "
    "segments, encoding, status, send_at, created_at, updated_at, ignore_opt_out, last_error, "
    "credential_id, attempts"
)
_INSERT_MESSAGES = f"INSERT INTO messages ({_MESSAGE_COLUMNS}) VALUES ({', '.join('?' * 18)})"
_INSERT_EVENTS = "INSERT INTO message_events (message_id, at, type, detail) VALUES (?, ?, ?, ?)"
_INSERT_OUTBOX = "INSERT INTO outbox (message_id, due_at, lease_token) VALUES (?, ?, 0)"


def insert_messages(
    raw: sqlite3.Connection, new: Sequence[NewMessage], due: Sequence[datetime | None]
) -> None:
    """The rows of accepted messages — each message, its first event, its outbox entry when
    ``due`` is set — as ``storage.messages.insert_rows`` describes them, built as tuples
    straight from the messages: no dict per row, and each distinct time formatted once."""
    times: dict[datetime, str | None] = {}
    rows, events, entries = [], [], []
    for m, when in zip(new, due, strict=True):
        created = _time(m.created_at, times)
        rows.append(
            (
                m.id,
                m.surface_id,
                m.campaign_id,
                m.profile_id,
                m.message_type,
                m.to_number,
                m.from_number,
                m.body,
                m.segments,
                m.encoding,
                m.status,
                _time(m.send_at, times),
                created,
                created,
                m.ignore_opt_out,
                m.last_error,
                None,
                0,
            )
        )
        reason = m.last_error or m.note
        detail = f'{{"reason":{orjson.dumps(reason).decode()}}}' if reason else None
        events.append((m.id, created, m.status, detail))
        if when is not None:
            entries.append((m.id, _time(when, times)))
    raw.executemany(_INSERT_MESSAGES, rows)
    raw.executemany(_INSERT_EVENTS, events)
    if entries:
        raw.executemany(_INSERT_OUTBOX, entries)
