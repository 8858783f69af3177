"""Event deliveries that wait, kept out of the claims' way: those held back behind a
rescheduled delivery of the same message (due with it), and a disabled endpoint's backlog
(due never, until the endpoint is enabled again)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.storage.event_tables import event_deliveries

_head = event_deliveries.alias("head")
PUSH_LATER = (
    # the deliveries held back behind one rescheduled (same message, same target) wait for it
    # with their next attempt at its own: claims need not step over them meanwhile
    update(event_deliveries)
    .where(
        event_deliveries.c.status == "pending",
        event_deliveries.c.id > bindparam("p_id"),
        event_deliveries.c.next_attempt_at
        < bindparam("p_next", type_=event_deliveries.c.next_attempt_at.type),
        event_deliveries.c.ordering_key
        == select(_head.c.ordering_key).where(_head.c.id == bindparam("p_id")).scalar_subquery(),
        func.coalesce(event_deliveries.c.endpoint_id, "")
        == select(func.coalesce(_head.c.endpoint_id, ""))
        .where(_head.c.id == bindparam("p_id"))
        .scalar_subquery(),
    )
    .values(next_attempt_at=bindparam("p_next"))
)

PAUSED = datetime(9999, 1, 1, tzinfo=UTC)
"""The next attempt of the pending deliveries of a disabled endpoint: never, until it is
enabled again (then at once); claims do not walk them meanwhile."""


async def pause_endpoint(
    conn: AsyncConnection, endpoint_id: str, *, paused: bool, now: datetime
) -> None:
    """Hold (or, with ``paused`` false, release) a disabled endpoint's pending deliveries;
    a test event (its URL copied into the row) is not held."""
    d = event_deliveries
    query = update(d).where(
        d.c.endpoint_id == endpoint_id, d.c.status == "pending", d.c.target_url.is_(None)
    )
    if paused:
        await conn.execute(query.values(next_attempt_at=PAUSED))
    else:
        await conn.execute(query.where(d.c.next_attempt_at >= PAUSED).values(next_attempt_at=now))
