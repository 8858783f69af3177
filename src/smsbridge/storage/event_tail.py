"""The event tailer's reads: the ordered logs it follows (by id, from its cursor), what an
event's payload needs from other tables, and the cursors themselves.

Every source is a table with an autoincrement ``id`` written in the transaction of the change
it records: ``message_events`` (message statuses), ``consent_events``, ``clicks``, and
``app_events`` (inbound messages, completed campaigns).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.storage.dialects import dialect_of
from smsbridge.storage.event_tables import app_events, event_cursors, message_callbacks
from smsbridge.storage.tables import (
    campaigns,
    clicks,
    consent_events,
    inbound_messages,
    links,
    message_events,
    messages,
)

SOURCES: dict[str, Table] = {
    "message_events": message_events,
    "consent_events": consent_events,
    "clicks": clicks,
    "app_events": app_events,
}

Gap = list[float]
"""``[first id, last id, first seen (epoch seconds)]``: ids not seen yet below the cursor."""


async def ensure_cursors(conn: AsyncConnection) -> None:
    """A cursor for every source; a source seen for the first time starts at its end (what
    happened before event endpoints existed is not emitted)."""
    known = set((await conn.execute(select(event_cursors.c.source))).scalars())
    for name, table in SOURCES.items():
        if name in known:
            continue
        end = (await conn.execute(select(func.coalesce(func.max(table.c.id), 0)))).scalar_one()
        statement = dialect_of(conn).insert_ignore(event_cursors)
        await conn.execute(statement.values(source=name, position=int(end), gaps=[]))


async def lock_cursors(conn: AsyncConnection) -> dict[str, tuple[int, list[Gap]]]:
    """The (position, gaps) of every source no other tailer is reading now, locked until the
    transaction ends (PostgreSQL skips the rows another process holds; SQLite has one writer)."""
    found = await conn.execute(
        select(event_cursors.c.source, event_cursors.c.position, event_cursors.c.gaps)
        .order_by(event_cursors.c.source)
        .with_for_update(skip_locked=True)
    )
    return {row[0]: (int(row[1]), [list(g) for g in row[2]]) for row in found if row[0] in SOURCES}


async def save_cursor(
    conn: AsyncConnection, source: str, position: int, gaps: Sequence[Gap]
) -> None:
    await conn.execute(
        update(event_cursors)
        .where(event_cursors.c.source == source)
        .values(position=position, gaps=list(gaps))
    )


async def newest_id(conn: AsyncConnection, source: str) -> int:
    table = SOURCES[source]
    return int((await conn.execute(select(func.coalesce(func.max(table.c.id), 0)))).scalar_one())


async def read_after(
    conn: AsyncConnection, source: str, position: int, gaps: Sequence[Gap], limit: int
) -> list[dict[str, Any]]:
    """Rows past ``position`` (at most ``limit``) and rows that filled a gap, by id."""
    table = SOURCES[source]
    found = (
        await conn.execute(
            select(table).where(table.c.id > position).order_by(table.c.id).limit(limit)
        )
    ).all()
    rows = [dict(r._mapping) for r in found]
    if gaps:
        filled = (
            await conn.execute(
                select(table)
                .where(or_(*(table.c.id.between(int(g[0]), int(g[1])) for g in gaps)))
                .order_by(table.c.id)
                .limit(limit)
            )
        ).all()
        rows = [dict(r._mapping) for r in filled] + rows
    return rows


async def message_details(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """What message events carry of their message (and its callback URL), by id."""
    if not ids:
        return {}
    rows = await conn.execute(
        select(
            messages.c.id,
            messages.c.surface_id,
            messages.c.campaign_id,
            messages.c.to_number,
            messages.c.from_number,
            messages.c.segments,
            messages.c.provider_message_id,
            message_callbacks.c.url.label("callback_url"),
        )
        .outerjoin(message_callbacks, message_callbacks.c.message_id == messages.c.id)
        .where(messages.c.id.in_(sorted(set(ids))))
    )
    return {r.id: dict(r._mapping) for r in rows}


async def any_callbacks(conn: AsyncConnection) -> bool:
    found = await conn.execute(select(message_callbacks.c.message_id).limit(1))
    return found.first() is not None


async def inbound_details(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    rows = await conn.execute(
        select(
            inbound_messages.c.id,
            inbound_messages.c.surface_id,
            inbound_messages.c.from_number,
            inbound_messages.c.to_number,
            inbound_messages.c.text,
            inbound_messages.c.keyword,
            inbound_messages.c.provider_message_id,
            inbound_messages.c.received_at,
        ).where(inbound_messages.c.id.in_(sorted(set(ids))))
    )
    return {r.id: dict(r._mapping) for r in rows}


async def campaign_details(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Completed campaigns: name, surface, targeted and excluded, counts by status."""
    if not ids:
        return {}
    found: dict[str, dict[str, Any]] = {}
    for campaign_id in sorted(set(ids)):
        row = (
            await conn.execute(
                select(
                    campaigns.c.id,
                    campaigns.c.name,
                    campaigns.c.surface_id,
                    campaigns.c.targeted,
                    campaigns.c.excluded,
                    campaigns.c.completed_at,
                ).where(campaigns.c.id == campaign_id)
            )
        ).first()
        if row is None:
            continue
        counts = await conn.execute(
            select(messages.c.status, func.count())
            .where(messages.c.campaign_id == campaign_id)
            .group_by(messages.c.status)
        )
        found[campaign_id] = {**row._mapping, "counts": {s: int(n) for s, n in counts}}
    return found


async def link_urls(conn: AsyncConnection, codes: Sequence[str]) -> dict[str, str]:
    if not codes:
        return {}
    rows = await conn.execute(
        select(links.c.code, links.c.url).where(links.c.code.in_(sorted(set(codes))))
    )
    return {code: url for code, url in rows}


async def record_app_event(conn: AsyncConnection, kind: str, subject_id: str, at: Any) -> None:
    """An ``app_events`` row, in the caller's transaction (the change it records)."""
    await conn.execute(insert(app_events).values(type=kind, subject_id=subject_id, at=at))


def record_received(conn: Connection, inbound_ids: Sequence[str], at: Any) -> None:
    """``message.received`` rows for inbound messages stored in ``conn``'s transaction
    (sync: the inbound group commit)."""
    if inbound_ids:
        conn.execute(
            insert(app_events),
            [{"type": "message.received", "subject_id": i, "at": at} for i in inbound_ids],
        )
