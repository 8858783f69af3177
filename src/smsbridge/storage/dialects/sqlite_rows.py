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


def _stored(value: Any, times: dict[datetime, str | None]) -> Any:
    if value is None or isinstance(value, str | int | float):
        return value  # (bool is an int: stored as 0/1, as SQLAlchemy does)
    if isinstance(value, datetime):
        # a group's rows share a handful of times (its clock reading): format each once
        text = times.get(value)
        if text is None:
            text = times[value] = sqlite_time(value)
        return text
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
