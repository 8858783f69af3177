"""The SQLite claim never walks the whole outbox.

A campaign scheduled for tomorrow leaves millions of outbox entries that are not due; the
worker claims (finds nothing due) after every fan-out batch and every poll. A claim that
looked its leased rows up by owner and lease end scanned every entry each time, holding the
single writer while the fan-out waited (a 1M-recipient fan-out through ``serve`` ran at 40%
of its in-process speed). Every statement a claim runs is checked with EXPLAIN QUERY PLAN.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from smsbridge.storage.dialects.sqlite_outbox import claim
from smsbridge.storage.migrate import upgrade_async

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def _plans(path: Path) -> list[tuple[str, list[str]]]:
    """Each statement of a claim with its query plan (run against a due and a not-due row)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        "INSERT INTO messages (id, surface_id, message_type, to_number, from_number, body, "
        "segments, encoding, status, attempts, created_at, updated_at) VALUES "
        "('msg_1', 'srf', 'transactional', '+33612345678', 'Acme', 'x', 1, 'GSM-7', 'queued', "
        "0, '2026-12-02 08:00:00.000000', '2026-12-02 08:00:00.000000'), "
        "('msg_2', 'srf', 'marketing', '+33612345679', 'Acme', 'x', 1, 'GSM-7', 'scheduled', "
        "0, '2026-12-02 08:00:00.000000', '2026-12-02 08:00:00.000000')"
    )
    conn.execute(
        "INSERT INTO outbox (message_id, due_at, lease_token) VALUES "
        "('msg_1', '2026-12-02 08:00:00.000000', 0), ('msg_2', '2026-12-03 08:00:00.000000', 0)"
    )
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    claimed = claim(conn, owner="w1", now=NOW, lease=timedelta(seconds=30), limit=10)
    conn.set_trace_callback(None)
    assert [row[0] for row in claimed] == ["msg_1"]
    plans = []
    for statement in statements:
        if not statement.lstrip().upper().startswith(("SELECT", "UPDATE", "INSERT", "DELETE")):
            continue
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}")]
        plans.append((statement, plan))
    conn.close()
    return plans


async def test_a_claim_looks_rows_up_by_key_never_by_scanning_the_outbox(tmp_path: Path) -> None:
    path = tmp_path / "claim.db"
    await upgrade_async(f"sqlite+aiosqlite:///{path}")
    plans = _plans(path)
    assert len(plans) >= 3  # lease, mark sending, read back
    for statement, plan in plans:
        scans = [step for step in plan if step.startswith("SCAN") and "json_each" not in step]
        assert not scans, f"{statement}\n{plan}"


async def test_a_claim_that_finds_nothing_due_stops_after_one_statement(tmp_path: Path) -> None:
    path = tmp_path / "idle.db"
    await upgrade_async(f"sqlite+aiosqlite:///{path}")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        "INSERT INTO outbox (message_id, due_at, lease_token) "
        "VALUES ('msg_9', '2026-12-03 08:00:00.000000', 0)"
    )
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    assert claim(conn, owner="w1", now=NOW, lease=timedelta(seconds=30), limit=10) == []
    conn.close()
    assert len(statements) == 1
