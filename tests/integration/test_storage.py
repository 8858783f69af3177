"""The storage layer on every dialect: the same tests on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.domain.ids import new_id
from smsbridge.errors import Conflict
from smsbridge.storage import api_keys as keys_repo
from smsbridge.storage import campaigns as campaigns_repo
from smsbridge.storage import credentials as repo
from smsbridge.storage import messages as messages_repo
from smsbridge.storage.database import Database, create_engine
from smsbridge.storage.delivery_reports import apply_report_groups
from smsbridge.storage.tables import metadata, surface_credentials, surfaces

T0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(create_engine(database_url))
    yield database
    await database.dispose()


def _row(name: str, at: datetime = T0) -> repo.CredentialRow:
    return repo.CredentialRow(
        id=new_id("cred"),
        name=name,
        document={"name": name, "payload": {"t": "{{message}}", "é": "😀"}},
        secrets="sealed",
        secret_hints={"auth.token": "abcd"},
        created_at=at,
        updated_at=at,
    )


async def test_insert_get_roundtrip_keeps_json_and_utc_times(db: Database) -> None:
    row = _row("one")
    async with db.transaction() as conn:
        await repo.insert_credential(conn, row)
    async with db.read() as conn:
        got = await repo.get_credential(conn, row.id)
    assert got == row
    assert got is not None and got.created_at.tzinfo is not None


async def test_a_taken_name_is_a_conflict_and_the_transaction_survives(db: Database) -> None:
    async with db.transaction() as conn:
        await repo.insert_credential(conn, _row("same"))
        with pytest.raises(Conflict) as caught:
            await repo.insert_credential(conn, _row("same"))
        assert caught.value.errors[0].field == "name"
        await repo.insert_credential(conn, _row("other"))
    async with db.read() as conn:
        assert len(await repo.list_credentials(conn, limit=10)) == 2


async def test_list_pages_in_id_order(db: Database) -> None:
    rows = [_row(f"c{i}") for i in range(5)]
    async with db.transaction() as conn:
        for row in reversed(rows):
            await repo.insert_credential(conn, row)
    async with db.read() as conn:
        first = await repo.list_credentials(conn, limit=3)
        rest = await repo.list_credentials(conn, limit=3, after=first[-1].id)
    assert [r.id for r in first + rest] == sorted(r.id for r in rows)


async def test_update_changes_fields(db: Database) -> None:
    row = _row("before")
    async with db.transaction() as conn:
        await repo.insert_credential(conn, row)
        changed = repo.CredentialRow(
            row.id, "after", {"x": 1}, "sealed2", {}, row.created_at, T0 + timedelta(seconds=1)
        )
        await repo.update_credential(conn, changed)
    async with db.read() as conn:
        assert await repo.get_credential(conn, row.id) == changed


async def test_delete_refused_while_referenced_then_allowed(db: Database) -> None:
    row = _row("used")
    async with db.transaction() as conn:
        await repo.insert_credential(conn, row)
        await conn.execute(
            insert(surfaces).values(id="srf_1", name="s", document={}, created_at=T0, updated_at=T0)
        )
        await conn.execute(
            insert(surface_credentials).values(surface_id="srf_1", position=0, credential_id=row.id)
        )
    async with db.transaction() as conn:
        assert await repo.users(conn, row.id) == ["s"]
        with pytest.raises(Conflict):
            await repo.delete_credential(conn, row.id)
    async with db.transaction() as conn:
        await conn.execute(surfaces.delete().where(surfaces.c.id == "srf_1"))
    async with db.transaction() as conn:
        assert await repo.users(conn, row.id) == []
        await repo.delete_credential(conn, row.id)
        assert await repo.get_credential(conn, row.id) is None


async def test_api_keys_store_hashes_and_revoke_once(db: Database) -> None:
    row = keys_repo.ApiKeyRow("key_1", "ops", "admin", "h" * 64, "sbk_admin_ab", T0, None)
    async with db.transaction() as conn:
        await keys_repo.insert_key(conn, row)
        assert await keys_repo.find_by_hash(conn, "h" * 64) == row
        assert await keys_repo.revoke(conn, "key_1", T0) is True
        assert await keys_repo.revoke(conn, "key_1", T0) is False
    async with db.read() as conn:
        [listed] = await keys_repo.list_keys(conn)
    assert listed.revoked_at == T0


Statement = tuple[str, tuple[object, ...]]


@contextlib.asynccontextmanager
async def _planning(db: Database) -> AsyncIterator[tuple[AsyncConnection, list[Statement]]]:
    """A transaction whose statements are recorded (SQL, parameters), so a test can ask the
    database how it plans them; on PostgreSQL sequential scans are off, so any usable index
    wins on these empty tables."""
    statements: list[Statement] = []

    def record(_c: object, _cu: object, sql: str, params: object, *_: object) -> None:
        statements.append((sql, tuple(params) if isinstance(params, tuple | list) else ()))

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        async with db.transaction() as conn:
            if db.dialect == "postgresql":
                await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            yield conn, statements
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)


async def _plan(db: Database, conn: AsyncConnection, statement: Statement) -> str:
    explain = "EXPLAIN QUERY PLAN " if db.dialect == "sqlite" else "EXPLAIN "
    plan = await conn.exec_driver_sql(explain + statement[0], statement[1])
    return " ".join(str(r[-1]) for r in plan)


async def test_message_lookups_use_the_partial_indexes(db: Database) -> None:
    """Listing by status (the partial status index, or the outbox for queued messages) and
    finding a delivery report's message use the indexes of migration 0009: a query that
    stopped matching an index's condition would walk the whole table."""
    async with _planning(db) as (conn, statements):
        await messages_repo.list_messages(conn, limit=10, after=None, status="failed")
        failed = statements[-1]
        await messages_repo.list_messages(conn, limit=10, after="msg_x", status="queued")
        queued = statements[-1]
        reports = [("srf_x", [("SM123", "delivered", None, None)])]
        await conn.run_sync(lambda sync: apply_report_groups(sync, reports, T0))
        by_provider = next(
            s for s in statements if "FROM messages" in s[0] and s not in (failed, queued)
        )
        for statement, index in (
            (failed, "ix_messages_status_id"),
            (queued, "outbox"),
            (by_provider, "ix_messages_provider_message_id_surface_id"),
        ):
            text = await _plan(db, conn, statement)
            assert index in text, (statement, text)
            assert "SCAN messages" not in text and "Seq Scan" not in text, (statement, text)


async def test_campaign_lookups_use_the_campaign_indexes(db: Database) -> None:
    """Since migration 0013 the campaign indexes hold only messages with a campaign: each
    lookup by campaign (its counts, "anything pending?", numbers already targeted) must still
    be planned on them, on both dialects, not as a walk of every message."""
    async with _planning(db) as (conn, statements):
        lookups = []
        await campaigns_repo.status_counts(conn, "cmp_x")
        lookups.append(statements[-1])
        await campaigns_repo.has_pending_messages(conn, "cmp_x")
        lookups.append(statements[-1])
        await campaigns_repo.phones_already_targeted(conn, "cmp_x", ["+33612345678"])
        lookups.append(statements[-1])
        for statement in lookups:
            text = await _plan(db, conn, statement)
            assert "campaign" in text and "SCAN messages" not in text, (statement, text)
            assert "Seq Scan" not in text, (statement, text)


async def test_migrations_build_exactly_the_schema_the_code_declares(db: Database) -> None:
    """tables.py and the Alembic migrations describe the same tables, columns, types, indexes
    (partial conditions included) and constraints, on both dialects."""
    async with db.engine.connect() as conn:
        differences = await conn.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), metadata
            )
        )
    assert differences == []
