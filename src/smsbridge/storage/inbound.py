"""Inbound messages and consent changes, set-based: the reads and writes of a group of
inbound webhooks (see ``services/inbound.py``) on one synchronous connection
(``Database.run_transaction``), a statement per table instead of several round trips per
message."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import ARRAY, Connection, String, bindparam, delete, func, insert, select
from sqlalchemy.sql.schema import Table

from smsbridge.storage.dialects import dialect_named
from smsbridge.storage.tables import consent_events, consent_pending, inbound_messages, suppressions

Pair = tuple[str, str]
"""(sender, phone): what consent is kept by."""

CHUNK = 500
"""Numbers per ``IN (…)`` list: far below SQLite's and asyncpg's bound-parameter limits."""


def store(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Insert inbound messages; the ids of those stored. A message whose provider id was
    already seen on its surface (before, or earlier in ``rows``) is a replay: not stored, its
    id not returned."""
    if not rows:
        return set()
    statement = dialect_named(conn.dialect.name).insert_ignore(inbound_messages)
    result = conn.execute(statement.returning(inbound_messages.c.id), list(rows))
    return set(result.scalars())


def _chunks(pairs: Iterable[Pair]) -> Iterator[tuple[str, list[str]]]:
    for sender, group in groupby(sorted(set(pairs)), key=lambda pair: pair[0]):
        phones = [phone for _, phone in group]
        for start in range(0, len(phones), CHUNK):
            yield sender, phones[start : start + CHUNK]


def _present(conn: Connection, table: Table, pairs: Iterable[Pair]) -> set[Pair]:
    """The pairs among ``pairs`` that have a row in ``table`` (keyed by sender and phone),
    locked until the transaction ends on PostgreSQL (in key order: no deadlock between
    concurrent groups); SQLite has one writer at a time."""
    postgres = conn.dialect.name == "postgresql"
    found: set[Pair] = set()
    for sender, phones in _chunks(pairs):
        query = select(table.c.sender, table.c.phone).order_by(table.c.phone)
        if postgres:
            # Joined to the numbers as a set: a probe of the key per number, or one hash of
            # the sender's rows. (``phone IN (…)``/``= ANY(…)`` with bound parameters was
            # checked row by row against all 500 numbers: 150 ms per chunk at 24,000 rows.)
            numbers = bindparam("phones", phones, type_=ARRAY(String()))
            wanted = func.unnest(numbers).table_valued("phone").render_derived(name="wanted")
            query = query.join(wanted, table.c.phone == wanted.c.phone).where(
                table.c.sender == sender
            )
            query = query.with_for_update(of=table)
        else:  # one writer at a time: nothing to lock
            query = query.where(table.c.sender == sender, table.c.phone.in_(phones))
        found.update((row[0], row[1]) for row in conn.execute(query))
    return found


def suppressed(conn: Connection, pairs: Iterable[Pair]) -> set[Pair]:
    """The pairs among ``pairs`` whose number opted out of the sender."""
    return _present(conn, suppressions, pairs)


def pending(conn: Connection, pairs: Iterable[Pair]) -> set[Pair]:
    """The pairs among ``pairs`` with a double opt-in waiting for its YES."""
    return _present(conn, consent_pending, pairs)


@dataclass(slots=True)
class ConsentChanges:
    """What a group of inbound messages changes, net: applied deletes first, then inserts."""

    lifted: set[Pair] = field(default_factory=set)
    """Opt-outs removed (their rows deleted)."""
    suppressed: dict[Pair, dict[str, Any]] = field(default_factory=dict)
    """New opt-outs: the suppression row of each."""
    pending_cleared: set[Pair] = field(default_factory=set)
    """Pending double opt-ins removed or replaced (their rows deleted)."""
    pending: dict[Pair, datetime] = field(default_factory=dict)
    """Pending double opt-ins as they stand at the end: when each was asked."""
    events: list[dict[str, Any]] = field(default_factory=list)
    """The audit trail (``consent_events`` rows), in order."""


def _delete_pairs(conn: Connection, table: Table, pairs: Iterable[Pair]) -> None:
    for sender, phones in _chunks(pairs):
        conn.execute(delete(table).where(table.c.sender == sender, table.c.phone.in_(phones)))


def write_consent(conn: Connection, changes: ConsentChanges) -> None:
    dialect = dialect_named(conn.dialect.name)
    _delete_pairs(conn, suppressions, changes.lifted)
    if changes.suppressed:
        # (ignore: another process may have recorded the same opt-out meanwhile; the first
        # one stays, as it would have here)
        conn.execute(dialect.insert_ignore(suppressions), list(changes.suppressed.values()))
    _delete_pairs(conn, consent_pending, changes.pending_cleared)
    if changes.pending:
        statement = dialect.upsert(consent_pending, ("sender", "phone"), ("created_at",))
        conn.execute(
            statement,
            [
                {"sender": sender, "phone": phone, "created_at": at}
                for (sender, phone), at in changes.pending.items()
            ],
        )
    if changes.events:
        conn.execute(insert(consent_events), changes.events)
