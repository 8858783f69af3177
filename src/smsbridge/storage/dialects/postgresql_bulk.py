"""PostgreSQL's bulk writes: a campaign's fan-out batches and profile imports through
``COPY`` (asyncpg's binary ``copy_records_to_table``), and the set-based reads around them.

On the connection's own asyncpg driver, inside the transaction SQLAlchemy opened (or, for an
import, the driver's own): one stream per table instead of a statement per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.domain.campaigns import CampaignStatus
from smsbridge.domain.profiles import Profile
from smsbridge.storage.dialects.base import OpenDatabase
from smsbridge.storage.records import FanoutBatch
from smsbridge.storage.tables import campaigns


async def write_fanout(db: OpenDatabase, batch: FanoutBatch) -> bool:
    """The cursor's compare-and-set, then the batch's rows through ``COPY`` (asyncpg's binary
    ``copy_records_to_table``): one stream per table instead of a statement per row, inside
    the same transaction, so a crash leaves either the whole batch and its cursor or
    neither."""
    async with db.transaction() as conn:
        moved = await conn.execute(
            update(campaigns)
            .where(
                campaigns.c.id == batch.campaign_id,
                campaigns.c.status == CampaignStatus.RUNNING,
                campaigns.c.fanout_done.is_(False),
                campaigns.c.fanout_cursor.is_not_distinct_from(batch.expected_cursor),
            )
            .values(
                fanout_cursor=batch.cursor,
                fanout_done=batch.done,
                targeted=campaigns.c.targeted + len(batch.recipients),
                excluded=campaigns.c.excluded + len(batch.exclusions),
                updated_at=batch.now,
            )
        )
        if not moved.rowcount:
            return False
        if batch.recipients or batch.exclusions:
            driver = await driver_of(conn)
            await _copy_fanout(driver, batch)
    return True


async def import_profiles(driver: Any, batch: Sequence[Profile], now: datetime) -> None:
    await driver.execute(_PROFILE_STAGING)
    await driver.copy_records_to_table(
        "profile_import",
        columns=("external_id", "phone", "attributes", "timezone"),
        records=[
            (p.external_id, p.phone, orjson.dumps(p.attributes).decode(), p.timezone) for p in batch
        ],
    )
    await driver.execute(_PROFILE_UPSERT, now, now)


async def driver_of(conn: AsyncConnection) -> Any:
    """The asyncpg connection under ``conn`` (same session, same transaction)."""
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def _copy_fanout(driver: Any, batch: FanoutBatch) -> None:
    recipients = batch.recipients
    if recipients:
        await driver.copy_records_to_table(
            "messages",
            columns=_FANOUT_MESSAGE_COLUMNS,
            records=[
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
                    r.status(batch),
                    0,
                    r.due_at if r.deferred else batch.send_at,
                    batch.now,
                    batch.now,
                )
                for r in recipients
            ],
        )
        await driver.copy_records_to_table(
            "outbox",
            columns=("message_id", "due_at", "lease_token"),
            records=[(r.id, r.due_at, 0) for r in recipients],
        )
        link_rows = [
            (code, r.id, batch.campaign_id, batch.surface_id, url, batch.now)
            for r in recipients
            for code, url in r.links
        ]
        if link_rows:
            await driver.copy_records_to_table(
                "links",
                columns=("code", "message_id", "campaign_id", "surface_id", "url", "created_at"),
                records=link_rows,
            )
    if batch.exclusions:  # a resumed batch may record an exclusion again: kept once
        exclusions = batch.exclusions
        await driver.execute(
            _FANOUT_EXCLUSIONS,
            batch.campaign_id,
            batch.now,
            [e.profile_id for e in exclusions],
            [e.phone for e in exclusions],
            [e.reason for e in exclusions],
            [e.detail for e in exclusions],
        )


ANALYZE_AFTER_IMPORT = 10_000
"""Profiles written by one import from which it ends with ``ANALYZE profiles``."""
# LATERAL … LIMIT 1: a nested loop of unique-index probes whatever the statistics say (a
# join or EXISTS was planned as a scan of the campaign's messages while they were new).
TARGETED = (
    "SELECT t.phone FROM unnest($1::text[]) AS t(phone) CROSS JOIN LATERAL"
    " (SELECT 1 FROM messages m WHERE m.campaign_id = $2 AND m.to_number = t.phone LIMIT 1)"
    " AS found"
)

# Created once per connection (a temporary table lives as long as its session); ON COMMIT
# DELETE ROWS empties it at every commit, so no batch ever sees another's rows. The
# attributes go in as JSON text and are cast once, by the upsert.
_PROFILE_STAGING = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS profile_import (external_id text, phone text,"
    " attributes text, timezone text) ON COMMIT DELETE ROWS"
)
_PROFILE_UPSERT = (
    "INSERT INTO profiles (external_id, phone, attributes, timezone, created_at, updated_at)"
    " SELECT external_id, phone, attributes::jsonb, timezone, $1, $2 FROM profile_import"
    " ON CONFLICT (external_id) DO UPDATE SET phone = excluded.phone,"
    " attributes = excluded.attributes, timezone = excluded.timezone,"
    " updated_at = excluded.updated_at"
)

_FANOUT_MESSAGE_COLUMNS = (
    "id",
    "surface_id",
    "campaign_id",
    "profile_id",
    "message_type",
    "to_number",
    "from_number",
    "body",
    "segments",
    "encoding",
    "status",
    "attempts",
    "send_at",
    "created_at",
    "updated_at",
)
_FANOUT_EXCLUSIONS = (
    "INSERT INTO campaign_exclusions (campaign_id, profile_id, phone, reason, detail, created_at)"
    " SELECT $1, t.profile_id, t.phone, t.reason, t.detail, $2"
    " FROM unnest($3::text[], $4::text[], $5::text[], $6::text[])"
    " AS t(profile_id, phone, reason, detail)"
    " ON CONFLICT DO NOTHING"
)
