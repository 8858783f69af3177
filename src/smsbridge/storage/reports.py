"""The aggregate queries behind campaign and surface reports (SQLite and PostgreSQL).

A report's scope is a set of messages: a campaign's, or a surface's created in a window. One
pass over the scope's messages gives the counts by status, the segments and both timelines
(grouped by status and the sent / delivered time buckets); the counts by credential, clicks,
exclusions, error reasons and opt-outs are each one more indexed query.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, distinct, false, func, literal, select, true, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.storage.database import Database
from smsbridge.storage.dialects import dialect_of
from smsbridge.storage.dialects.base import Bucket as Bucket
from smsbridge.storage.tables import campaign_exclusions, campaigns, clicks, messages, suppressions


@dataclass(frozen=True)
class Scope:
    """Which messages a report covers."""

    campaign_id: str | None = None
    surface_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def messages(self) -> ColumnElement[bool]:
        if self.campaign_id is not None:
            return messages.c.campaign_id == self.campaign_id
        conditions = [messages.c.surface_id == self.surface_id]
        if self.start is not None:
            conditions.append(messages.c.created_at >= self.start)
        if self.end is not None:
            conditions.append(messages.c.created_at < self.end)
        return and_(*conditions)


def _bucket(conn: AsyncConnection, column: Any, bucket: Bucket) -> Any:
    return dialect_of(conn).time_bucket(column, bucket)


def _as_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value)
    if len(text) == len("YYYY-MM-DD HH"):  # an hour bucket as text (SQLite)
        text += ":00"
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class MessageTotals:
    by_status: dict[str, int]
    segments_by_status: dict[str, int]
    sent_timeline: dict[datetime, int]
    delivered_timeline: dict[datetime, int]


async def message_totals(conn: AsyncConnection, scope: Scope, bucket: Bucket) -> MessageTotals:
    sent_bucket = _bucket(conn, messages.c.sent_at, bucket)
    delivered_bucket = _bucket(conn, messages.c.delivered_at, bucket)
    rows = await conn.execute(
        select(
            messages.c.status,
            sent_bucket,
            delivered_bucket,
            func.count(),
            func.coalesce(func.sum(messages.c.segments), 0),
        )
        .where(scope.messages())
        .group_by(messages.c.status, sent_bucket, delivered_bucket)
    )
    totals = MessageTotals({}, {}, {}, {})
    for status, sent_at, delivered_at, count, segments in rows:
        totals.by_status[status] = totals.by_status.get(status, 0) + int(count)
        totals.segments_by_status[status] = totals.segments_by_status.get(status, 0) + int(segments)
        if (when := _as_time(sent_at)) is not None:
            totals.sent_timeline[when] = totals.sent_timeline.get(when, 0) + int(count)
        if (when := _as_time(delivered_at)) is not None and status == "delivered":
            totals.delivered_timeline[when] = totals.delivered_timeline.get(when, 0) + int(count)
    return totals


async def error_reasons(conn: AsyncConnection, scope: Scope) -> dict[str, int]:
    rows = await conn.execute(
        select(messages.c.last_error, func.count())
        .where(scope.messages(), messages.c.status == "failed")
        .group_by(messages.c.last_error)
    )
    reasons: dict[str, int] = {}
    for reason, count in rows:
        key = reason or "unknown"
        reasons[key] = reasons.get(key, 0) + int(count)
    return reasons


@dataclass
class CredentialTotals:
    sent: int = 0
    """Accepted by the provider: sent, delivered or undelivered."""
    failed: int = 0


async def credential_totals(conn: AsyncConnection, scope: Scope) -> dict[str, CredentialTotals]:
    """Per credential, the scope's messages it sent and those that failed on it (the
    credential of their last attempt; messages never attempted have none). A campaign's are
    counted from its covering report index."""
    rows = await conn.execute(
        select(messages.c.credential_id, messages.c.status, func.count())
        .where(scope.messages(), messages.c.credential_id.is_not(None))
        .group_by(messages.c.credential_id, messages.c.status)
    )
    totals: dict[str, CredentialTotals] = {}
    for credential_id, status, count in rows:
        if status == "failed":
            totals.setdefault(credential_id, CredentialTotals()).failed += int(count)
        elif status in ("sent", "delivered", "undelivered"):
            totals.setdefault(credential_id, CredentialTotals()).sent += int(count)
    return totals


def _clicks_of(scope: Scope, query: Any) -> Any:
    """``query`` on clicks, limited to the scope's messages (for a surface: the messages
    created in the window, whenever clicked — one primary-key lookup per click)."""
    if scope.campaign_id is not None:
        return query.where(clicks.c.campaign_id == scope.campaign_id)
    query = query.join(messages, messages.c.id == clicks.c.message_id).where(
        clicks.c.surface_id == scope.surface_id, scope.messages()
    )
    if scope.start is not None:  # no message of the window was clicked before it began
        query = query.where(clicks.c.at >= scope.start)
    return query


@dataclass
class ClickTotals:
    human: int
    unique_messages: int
    bots: int
    timeline: dict[datetime, int]


async def click_totals(conn: AsyncConnection, scope: Scope, bucket: Bucket) -> ClickTotals:
    totals = select(
        func.count().filter(clicks.c.is_bot == false()),
        func.count(distinct(clicks.c.message_id)).filter(clicks.c.is_bot == false()),
        func.count().filter(clicks.c.is_bot == true()),
    ).select_from(clicks)
    human, unique, bots = (await conn.execute(_clicks_of(scope, totals))).one()
    when = _bucket(conn, clicks.c.at, bucket)
    per_bucket = (
        select(when, func.count())
        .select_from(clicks)
        .where(clicks.c.is_bot == false())
        .group_by(when)
    )
    timeline = {
        t: int(c)
        for raw, c in await conn.execute(_clicks_of(scope, per_bucket))
        if (t := _as_time(raw)) is not None
    }
    return ClickTotals(int(human), int(unique), int(bots), timeline)


async def exclusions(conn: AsyncConnection, scope: Scope) -> dict[str, int]:
    query = select(campaign_exclusions.c.reason, func.count()).group_by(
        campaign_exclusions.c.reason
    )
    if scope.campaign_id is not None:
        query = query.where(campaign_exclusions.c.campaign_id == scope.campaign_id)
    else:
        query = query.join(campaigns, campaigns.c.id == campaign_exclusions.c.campaign_id).where(
            campaigns.c.surface_id == scope.surface_id
        )
        if scope.start is not None:
            query = query.where(campaign_exclusions.c.created_at >= scope.start)
        if scope.end is not None:
            query = query.where(campaign_exclusions.c.created_at < scope.end)
    return {reason: int(count) for reason, count in await conn.execute(query)}


async def opt_outs(conn: AsyncConnection, scope: Scope, sender: str) -> int:
    """Numbers of the scope that opted out of the sender after their message was created."""
    query = (
        select(func.count(distinct(suppressions.c.phone)))
        .select_from(
            suppressions.join(
                messages,
                and_(
                    messages.c.to_number == suppressions.c.phone,
                    suppressions.c.created_at >= messages.c.created_at,
                ),
            )
        )
        .where(suppressions.c.sender == sender, scope.messages())
    )
    return int((await conn.execute(query)).scalar_one())


CSV_COLUMNS = (
    "id",
    "to",
    "status",
    "segments",
    "encoding",
    "provider_message_id",
    "created_at",
    "sent_at",
    "delivered_at",
    "last_error",
    "clicks",
)


async def message_rows(
    db: Database, scope: Scope, *, page: int = 1000
) -> AsyncIterator[list[tuple[Any, ...]]]:
    """The scope's messages, page by page, each with its human clicks.

    Pages follow an index, so each costs the same however far the export has gone: a
    campaign's messages by number (its unique (campaign, number) index), a surface's by
    creation time then id (its (surface, created_at) index).
    """
    columns = (
        messages.c.id,
        messages.c.to_number,
        messages.c.status,
        messages.c.segments,
        messages.c.encoding,
        messages.c.provider_message_id,
        messages.c.created_at,
        messages.c.sent_at,
        messages.c.delivered_at,
        messages.c.last_error,
    )
    by_campaign = scope.campaign_id is not None
    order = (messages.c.to_number,) if by_campaign else (messages.c.created_at, messages.c.id)
    after: tuple[Any, ...] | None = None
    while True:
        async with db.read() as conn:
            query = select(*columns).where(scope.messages()).order_by(*order).limit(page)
            if after is not None:
                typed = (literal(v, type_=c.type) for v, c in zip(after, order, strict=True))
                query = query.where(tuple_(*order) > tuple_(*typed))
            rows = (await conn.execute(query)).all()
            if not rows:
                return
            ids = [r[0] for r in rows]
            counted = {
                m: int(c)
                for m, c in await conn.execute(
                    select(clicks.c.message_id, func.count())
                    .where(clicks.c.message_id.in_(ids), clicks.c.is_bot == false())
                    .group_by(clicks.c.message_id)
                )
            }
        yield [(*r, counted.get(r[0], 0)) for r in rows]
        if len(rows) < page:
            return
        last = rows[-1]
        after = (last[1],) if by_campaign else (last[6], last[0])
