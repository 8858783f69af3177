"""Campaign rows, their exclusions, and the queries behind fan-out, counts and cancel (the
fan-out's write itself: ``storage.fanout``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.domain.campaigns import CampaignStatus
from smsbridge.domain.messages import PENDING, EventType, MessageStatus
from smsbridge.storage.dialects import dialect_of
from smsbridge.storage.tables import (
    campaign_exclusions,
    campaigns,
    message_events,
    messages,
    outbox,
    suppressions,
)


async def insert_campaign(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(campaigns).values(**row))


async def get_campaign(
    conn: AsyncConnection, campaign_id: str, *, for_update: bool = False
) -> dict[str, Any] | None:
    query = select(campaigns).where(campaigns.c.id == campaign_id)
    if for_update:
        query = dialect_of(conn).for_update(query)
    found = (await conn.execute(query)).first()
    return dict(found._mapping) if found else None


async def delete_campaign(conn: AsyncConnection, campaign_id: str) -> None:
    await conn.execute(delete(campaigns).where(campaigns.c.id == campaign_id))


async def list_campaigns(
    conn: AsyncConnection, *, limit: int, after: str | None, status: str | None = None
) -> list[dict[str, Any]]:
    query = select(campaigns).order_by(campaigns.c.id.desc()).limit(limit)
    if after is not None:
        query = query.where(campaigns.c.id < after)
    if status is not None:
        query = query.where(campaigns.c.status == status)
    return [dict(r._mapping) for r in await conn.execute(query)]


async def set_fields(
    conn: AsyncConnection, campaign_id: str, *, only_if_status: str | None = None, **values: Any
) -> bool:
    statement = update(campaigns).where(campaigns.c.id == campaign_id).values(**values)
    if only_if_status is not None:
        statement = statement.where(campaigns.c.status == only_if_status)
    return bool((await conn.execute(statement)).rowcount)


async def unfinished_fanouts(conn: AsyncConnection) -> list[str]:
    rows = await conn.execute(
        select(campaigns.c.id)
        .where(campaigns.c.status == CampaignStatus.RUNNING, campaigns.c.fanout_done.is_(False))
        .order_by(campaigns.c.id)
    )
    return [r[0] for r in rows]


async def finished_fanouts(conn: AsyncConnection) -> list[str]:
    """Running campaigns whose fan-out is done (candidates for ``completed``)."""
    rows = await conn.execute(
        select(campaigns.c.id).where(
            campaigns.c.status == CampaignStatus.RUNNING, campaigns.c.fanout_done.is_(True)
        )
    )
    return [r[0] for r in rows]


async def has_pending_messages(conn: AsyncConnection, campaign_id: str) -> bool:
    query = select(
        exists().where(
            messages.c.campaign_id == campaign_id,
            messages.c.status.in_([s.value for s in PENDING]),
        )
    )
    return bool((await conn.execute(query)).scalar_one())


async def phones_already_targeted(
    conn: AsyncConnection, campaign_id: str, phones: Sequence[str]
) -> set[str]:
    if not phones:
        return set()
    return await dialect_of(conn).targeted_phones(conn, campaign_id, phones)


async def suppressed_phones(conn: AsyncConnection, sender: str, phones: Sequence[str]) -> set[str]:
    if not phones:
        return set()
    rows = await conn.execute(
        select(suppressions.c.phone).where(
            suppressions.c.sender == sender, dialect_of(conn).among(suppressions.c.phone, phones)
        )
    )
    return {r[0] for r in rows}


async def status_counts(conn: AsyncConnection, campaign_id: str) -> dict[str, int]:
    rows = await conn.execute(
        select(messages.c.status, func.count())
        .where(messages.c.campaign_id == campaign_id)
        .group_by(messages.c.status)
    )
    return {status: int(count) for status, count in rows}


async def exclusion_counts(conn: AsyncConnection, campaign_id: str) -> dict[str, int]:
    rows = await conn.execute(
        select(campaign_exclusions.c.reason, func.count())
        .where(campaign_exclusions.c.campaign_id == campaign_id)
        .group_by(campaign_exclusions.c.reason)
    )
    return {reason: int(count) for reason, count in rows}


async def list_exclusions(
    conn: AsyncConnection, campaign_id: str, *, limit: int, after: str | None
) -> list[dict[str, Any]]:
    query = (
        select(campaign_exclusions)
        .where(campaign_exclusions.c.campaign_id == campaign_id)
        .order_by(campaign_exclusions.c.profile_id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(campaign_exclusions.c.profile_id > after)
    return [dict(r._mapping) for r in await conn.execute(query)]


async def cancel_pending_batch(
    conn: AsyncConnection, campaign_id: str, now: datetime, *, limit: int
) -> list[str]:
    """Cancel up to ``limit`` of the campaign's messages not yet in a worker's hands: their
    outbox entries are taken (fenced: a live lease is left alone), then their status set."""
    candidates = [
        r[0]
        for r in await conn.execute(
            select(outbox.c.message_id)
            .join(messages, messages.c.id == outbox.c.message_id)
            .where(
                messages.c.campaign_id == campaign_id,
                messages.c.status.in_([MessageStatus.SCHEDULED, MessageStatus.QUEUED]),
                or_(outbox.c.lease_owner.is_(None), outbox.c.lease_expires_at < now),
            )
            .limit(limit)
        )
    ]
    if not candidates:
        return []
    taken = [
        r[0]
        for r in await conn.execute(
            delete(outbox)
            .where(
                outbox.c.message_id.in_(candidates),
                or_(outbox.c.lease_owner.is_(None), outbox.c.lease_expires_at < now),
            )
            .returning(outbox.c.message_id)
        )
    ]
    if taken:
        await conn.execute(
            update(messages)
            .where(messages.c.id.in_(taken))
            .values(status=MessageStatus.CANCELLED, updated_at=now)
        )
        await conn.execute(
            insert(message_events),
            [
                {
                    "message_id": m,
                    "at": now,
                    "type": EventType.CANCELLED,
                    "detail": {"by": "campaign cancel"},
                }
                for m in taken
            ],
        )
    return taken
