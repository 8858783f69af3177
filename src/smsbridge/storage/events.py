"""Event endpoints, per-message callback URLs and event deliveries (claimed under leases).

* **Claim**: one ``UPDATE … WHERE id IN (due, unleased, enabled-endpoint rows) RETURNING``;
  on PostgreSQL the inner select skips rows other workers hold (``FOR UPDATE SKIP LOCKED``).
  A delivery whose ``ordering_key`` (a message id) has an earlier delivery still pending for
  the same target is not due: a message's events reach each target in order.
* **Fenced completion**: an outcome is applied only where ``(id, lease_token)`` still matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.domain.events import FAILURE_RUN_GAP
from smsbridge.storage.event_backlog import PUSH_LATER, pause_endpoint
from smsbridge.storage.event_tables import event_deliveries, event_endpoints, message_callbacks

# --- endpoints -----------------------------------------------------------------------------


async def insert_endpoint(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(event_endpoints).values(**row))


async def get_endpoint(conn: AsyncConnection, endpoint_id: str) -> dict[str, Any] | None:
    found = (
        await conn.execute(select(event_endpoints).where(event_endpoints.c.id == endpoint_id))
    ).first()
    return dict(found._mapping) if found else None


async def lock_endpoint(conn: AsyncConnection, endpoint_id: str) -> dict[str, Any] | None:
    """The endpoint, locked until the transaction ends (PostgreSQL; SQLite has one writer)."""
    found = (
        await conn.execute(
            select(event_endpoints).where(event_endpoints.c.id == endpoint_id).with_for_update()
        )
    ).first()
    return dict(found._mapping) if found else None


async def list_endpoints(
    conn: AsyncConnection, *, limit: int, after: str | None
) -> list[dict[str, Any]]:
    query = select(event_endpoints).order_by(event_endpoints.c.id).limit(limit)
    if after is not None:
        query = query.where(event_endpoints.c.id > after)
    return [dict(r._mapping) for r in await conn.execute(query)]


async def enabled_endpoints(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(
            event_endpoints.c.id, event_endpoints.c.event_types, event_endpoints.c.created_at
        ).where(event_endpoints.c.enabled.is_(True))
    )
    return [dict(r._mapping) for r in rows]


async def update_endpoint(conn: AsyncConnection, endpoint_id: str, values: dict[str, Any]) -> None:
    await conn.execute(
        update(event_endpoints).where(event_endpoints.c.id == endpoint_id).values(**values)
    )


async def delete_endpoint(conn: AsyncConnection, endpoint_id: str) -> bool:
    # deliveries first: SQLite enforces the cascade only with foreign keys on, as they are
    await conn.execute(
        delete(event_deliveries).where(event_deliveries.c.endpoint_id == endpoint_id)
    )
    result = await conn.execute(delete(event_endpoints).where(event_endpoints.c.id == endpoint_id))
    return bool(result.rowcount)


# --- per-message callback URLs ---------------------------------------------------------------


def insert_callbacks(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Callback URLs of messages accepted in ``conn``'s transaction (sync: group commits)."""
    if rows:
        conn.execute(insert(message_callbacks), list(rows))


# --- deliveries ------------------------------------------------------------------------------


async def insert_deliveries(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> list[int]:
    if not rows:
        return []
    if len(rows) == 1:
        result = await conn.execute(
            insert(event_deliveries).values(**rows[0]).returning(event_deliveries.c.id)
        )
        return [int(result.scalar_one())]
    await conn.execute(insert(event_deliveries), list(rows))
    return []


async def get_delivery(
    conn: AsyncConnection, delivery_id: int, endpoint_id: str
) -> dict[str, Any] | None:
    found = (
        await conn.execute(
            select(event_deliveries).where(
                event_deliveries.c.id == delivery_id,
                event_deliveries.c.endpoint_id == endpoint_id,
            )
        )
    ).first()
    return dict(found._mapping) if found else None


async def list_deliveries(
    conn: AsyncConnection,
    endpoint_id: str,
    *,
    limit: int,
    before: int | None,
    status: str | None = None,
) -> list[dict[str, Any]]:
    """An endpoint's deliveries, newest first."""
    query = (
        select(event_deliveries)
        .where(event_deliveries.c.endpoint_id == endpoint_id)
        .order_by(event_deliveries.c.id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(event_deliveries.c.id < before)
    if status is not None:
        query = query.where(event_deliveries.c.status == status)
    return [dict(r._mapping) for r in await conn.execute(query)]


async def replay(conn: AsyncConnection, delivery_id: int, now: datetime) -> bool:
    """A failed or dead delivery pending again, due now, with a new day of retries."""
    result = await conn.execute(
        update(event_deliveries)
        .where(
            event_deliveries.c.id == delivery_id,
            event_deliveries.c.status.in_(("failed", "dead")),
        )
        .values(
            status="pending",
            next_attempt_at=now,
            attempts=0,  # a new day of retries, from the first delay again
            first_attempt_at=None,
            lease_owner=None,
            lease_expires_at=None,
        )
    )
    return bool(result.rowcount)


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    id: int
    lease_token: int
    event_id: str
    endpoint_id: str | None
    url: str
    body: str
    attempts: int
    first_attempt_at: datetime | None
    secrets: str | None
    """The endpoint's sealed secrets (None for a callback URL: signed with the callback key)."""
    previous_expires_at: datetime | None
    secrets_version: datetime | None


_earlier = event_deliveries.alias("earlier")


def _due(now: datetime, limit: int, only: int | None = None) -> Any:
    d = event_deliveries
    same_target = func.coalesce(_earlier.c.endpoint_id, "") == func.coalesce(d.c.endpoint_id, "")
    held_back = (
        exists()
        .where(
            _earlier.c.status == "pending",
            _earlier.c.ordering_key == d.c.ordering_key,
            _earlier.c.id < d.c.id,
            same_target,
        )
        .correlate(d)
    )
    enabled = (
        exists()
        .where(event_endpoints.c.id == d.c.endpoint_id, event_endpoints.c.enabled.is_(True))
        .correlate(d)
    )
    query = select(d.c.id).where(
        d.c.status == "pending",
        d.c.next_attempt_at <= now,
        or_(d.c.lease_expires_at.is_(None), d.c.lease_expires_at < now),
        # a test event goes to a disabled endpoint too (its URL copied into the row)
        or_(d.c.endpoint_id.is_(None), d.c.target_url.is_not(None), enabled),
        or_(d.c.ordering_key.is_(None), ~held_back),
    )
    if only is not None:
        query = query.where(d.c.id == only)
    return query.order_by(d.c.next_attempt_at).limit(limit).with_for_update(skip_locked=True)


async def claim(
    conn: AsyncConnection,
    *,
    owner: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    only: int | None = None,
) -> list[ClaimedDelivery]:
    """Lease up to ``limit`` due deliveries to ``owner`` (``only``: that one, if due)."""
    if limit < 1:
        return []
    d = event_deliveries
    leased = await conn.execute(
        update(d)
        .where(d.c.id.in_(_due(now, limit, only)))
        .values(
            lease_owner=owner,
            lease_expires_at=now + lease,
            lease_token=d.c.lease_token + 1,
        )
        .returning(d.c.id, d.c.lease_token)
    )
    tokens = {int(row[0]): int(row[1]) for row in leased}
    if not tokens:
        return []
    rows = await conn.execute(
        select(
            d.c.id,
            d.c.event_id,
            d.c.endpoint_id,
            func.coalesce(d.c.target_url, event_endpoints.c.url),
            d.c.body,
            d.c.attempts,
            d.c.first_attempt_at,
            event_endpoints.c.secrets,
            event_endpoints.c.previous_expires_at,
            event_endpoints.c.updated_at,
        )
        .outerjoin(event_endpoints, event_endpoints.c.id == d.c.endpoint_id)
        .where(d.c.id.in_(sorted(tokens)))
        .order_by(d.c.id)
    )
    return [
        ClaimedDelivery(
            int(r[0]), tokens[int(r[0])], r[1], r[2], r[3], r[4], int(r[5]), r[6], r[7], r[8], r[9]
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    id: int
    lease_token: int
    endpoint_id: str | None
    status: str
    attempts: int
    first_attempt_at: datetime
    attempted_at: datetime
    next_attempt_at: datetime | None
    last_status: int | None
    last_response: str | None
    last_error: str | None

    @property
    def succeeded(self) -> bool:
        return self.status == "delivered"


_COMPLETE = (
    update(event_deliveries)
    .where(
        event_deliveries.c.id == bindparam("b_id"),
        event_deliveries.c.lease_token == bindparam("b_token"),
    )
    .values(
        status=bindparam("b_status"),
        attempts=bindparam("b_attempts"),
        first_attempt_at=bindparam("b_first", type_=event_deliveries.c.first_attempt_at.type),
        last_attempt_at=bindparam("b_at", type_=event_deliveries.c.last_attempt_at.type),
        next_attempt_at=func.coalesce(
            bindparam("b_next", type_=event_deliveries.c.next_attempt_at.type),
            event_deliveries.c.next_attempt_at,
        ),
        last_status=bindparam("b_code", type_=event_deliveries.c.last_status.type),
        last_response=bindparam("b_response", type_=event_deliveries.c.last_response.type),
        last_error=bindparam("b_error", type_=event_deliveries.c.last_error.type),
        lease_owner=None,
        lease_expires_at=None,
    )
)


async def complete(
    conn: AsyncConnection,
    outcomes: Sequence[DeliveryOutcome],
    now: datetime,
    disable_after: timedelta,
) -> list[tuple[str, str]]:
    """Record ``outcomes`` (fenced by lease token) and each endpoint's health: a success ends
    its run of failures, a failure starts one if none is running (or the last failure is
    older than :data:`FAILURE_RUN_GAP`); an endpoint failing for ``disable_after`` is disabled.
    Returns the (endpoint id, reason) of those disabled now."""
    if not outcomes:
        return []
    await conn.execute(
        _COMPLETE,
        [
            {
                "b_id": o.id,
                "b_token": o.lease_token,
                "b_status": o.status,
                "b_attempts": o.attempts,
                "b_first": o.first_attempt_at,
                "b_at": o.attempted_at,
                "b_next": o.next_attempt_at,
                "b_code": o.last_status,
                "b_response": o.last_response,
                "b_error": o.last_error,
            }
            for o in outcomes
        ],
    )
    retried = [
        {"p_id": o.id, "p_next": o.next_attempt_at}
        for o in outcomes
        if o.status == "pending" and o.next_attempt_at is not None
    ]
    if retried:
        await conn.execute(PUSH_LATER, retried)
    healthy = sorted({o.endpoint_id for o in outcomes if o.endpoint_id and o.succeeded})
    failing = sorted(
        {o.endpoint_id for o in outcomes if o.endpoint_id and not o.succeeded} - set(healthy)
    )
    ep = event_endpoints
    if healthy:
        await conn.execute(
            update(ep)
            .where(ep.c.id.in_(healthy), ep.c.failing_since.is_not(None))
            .values(failing_since=None)
        )
    if not failing:
        return []
    now_value = literal(now, ep.c.failing_since.type)
    new_run = or_(
        ep.c.failing_since.is_(None),
        ep.c.last_failed_at.is_(None),
        ep.c.last_failed_at < now - FAILURE_RUN_GAP,  # a quiet gap: nothing was retried
    )
    await conn.execute(
        update(ep)
        .where(ep.c.id.in_(failing))
        .values(
            failing_since=case((new_run, now_value), else_=ep.c.failing_since),
            last_failed_at=now_value,
        )
    )
    since = now - disable_after
    doomed = (
        await conn.execute(
            select(ep.c.id, ep.c.failing_since).where(
                ep.c.id.in_(failing), ep.c.enabled.is_(True), ep.c.failing_since <= since
            )
        )
    ).all()
    disabled: list[tuple[str, str]] = []
    last = {o.endpoint_id: o for o in outcomes if o.endpoint_id}
    for endpoint_id, failing_since in doomed:
        outcome = last[endpoint_id]
        answer = (
            f"HTTP {outcome.last_status}" if outcome.last_status is not None else outcome.last_error
        )
        reason = (
            f"every delivery failed since {failing_since.isoformat()} (last answer: {answer}); "
            "disabled automatically: fix the receiver, then enable the endpoint again"
        )
        await conn.execute(
            update(ep)
            .where(ep.c.id == endpoint_id)
            .values(enabled=False, disabled_reason=reason, disabled_at=now, updated_at=now)
        )
        await pause_endpoint(conn, endpoint_id, paused=True, now=now)
        disabled.append((endpoint_id, reason))
    return disabled


async def release(conn: AsyncConnection, leases: Sequence[tuple[int, int]]) -> None:
    """Give claimed, unattempted deliveries back (graceful stop)."""
    for delivery_id, token in leases:
        await conn.execute(
            update(event_deliveries)
            .where(event_deliveries.c.id == delivery_id, event_deliveries.c.lease_token == token)
            .values(lease_owner=None, lease_expires_at=None)
        )


async def renew(conn: AsyncConnection, leases: Sequence[tuple[int, int]], until: datetime) -> None:
    """Extend the leases still held (fenced by lease token)."""
    for delivery_id, token in leases:
        await conn.execute(
            update(event_deliveries)
            .where(event_deliveries.c.id == delivery_id, event_deliveries.c.lease_token == token)
            .values(lease_expires_at=until)
        )


async def forget_old(conn: AsyncConnection, before: datetime, limit: int = 5000) -> int:
    """Delete finished deliveries (and callback URLs) created before ``before``, a bounded
    number at a time."""
    d = event_deliveries
    old = (
        select(d.c.id)
        .where(d.c.created_at < before, d.c.status != "pending")
        .order_by(d.c.created_at)
        .limit(limit)
    )
    result = await conn.execute(delete(d).where(d.c.id.in_(old)))
    callbacks = select(message_callbacks.c.message_id).where(
        message_callbacks.c.created_at < before - timedelta(days=3)
    )
    forgotten = await conn.execute(
        delete(message_callbacks).where(message_callbacks.c.message_id.in_(callbacks.limit(limit)))
    )
    return int(result.rowcount) + int(forgotten.rowcount)
