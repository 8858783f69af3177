"""Delivery reports applied set-based: the reports of every webhook in a group commit (see
``services/group_commit.py``) in one transaction, on a synchronous connection
(``Database.run_transaction``), with a statement per table instead of several round trips per
report.

The rules, report by report in arrival order: a report matching no message is parked as an
early report (unless it only says "on its way"); reports parked earlier for a message apply
before newer ones; a final status never changes again (the first wins); a status the mapping
does not name is kept as a ``provider_status`` event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, or_, select, update

from smsbridge.domain.messages import EventType
from smsbridge.storage.messages import Event
from smsbridge.storage.tables import early_delivery_reports, message_events, messages

Report = tuple[str, str | None, str | None, str | None]
"""(provider message id, our status or None, error, the provider's own status)."""

ACCEPTED = ("sending", "sent")
"""The statuses a delivery outcome may replace."""


@dataclass(slots=True)
class Tally:
    applied: int = 0
    unknown: int = 0
    ignored: int = 0
    statuses: Counter[tuple[str, str | None]] = field(default_factory=Counter)
    """The status changes applied, by (new status, the message's credential)."""


@dataclass(slots=True)
class _Message:
    id: str
    status: str
    credential_id: str | None = None
    changed: dict[str, Any] | None = None


def apply_report_groups(
    conn: Connection, groups: Sequence[tuple[str, Sequence[Report]]], at: datetime
) -> list[Tally]:
    """Apply each (surface id, reports) in order; one :class:`Tally` per group."""
    wanted = sorted({pid for _, reports in groups for pid, *_ in reports})
    found = _messages(conn, wanted)
    events: list[dict[str, Any]] = []
    early = _apply_early(conn, found, events)
    parked: list[dict[str, Any]] = []
    tallies = []
    for surface_id, reports in groups:
        tally = Tally()
        for provider_id, status, error, provider_status in reports:
            matches = found.get((provider_id, surface_id))
            if not matches:
                tally.unknown += 1
                if status not in ("sent", None):  # parked until the send is recorded
                    parked.append(
                        {
                            "surface_id": surface_id,
                            "provider_message_id": provider_id,
                            "status": status,
                            "error": error,
                            "received_at": at,
                        }
                    )
                continue
            for message in matches:
                if status == "sent":  # "on its way": nothing to record
                    tally.ignored += 1
                elif status is None:
                    detail = {"status": provider_status}
                    if error:
                        detail["error"] = error
                    events.append(Event(message.id, at, EventType.PROVIDER_STATUS, detail).row())
                    tally.ignored += 1
                elif _change(message, status, error, at):
                    events.append(
                        Event(message.id, at, status, {"error": error} if error else None).row()
                    )
                    tally.applied += 1
                    tally.statuses[(status, message.credential_id)] += 1
                else:
                    tally.ignored += 1
        tallies.append(tally)
    if tallies:  # reports parked earlier, applied now: counted with this group's first
        tallies[0].statuses.update(early)
    _write(conn, found, events, parked)
    return tallies


def _messages(
    conn: Connection, provider_ids: Sequence[str]
) -> dict[tuple[str, str], list[_Message]]:
    """The messages carrying these provider ids, by (provider id, surface id); locked until
    the transaction ends on PostgreSQL (``FOR UPDATE``, in id order so that concurrent groups
    cannot deadlock on them), under the write lock on SQLite."""
    found: dict[tuple[str, str], list[_Message]] = {}
    if not provider_ids:
        return found
    rows = conn.execute(
        select(
            messages.c.id,
            messages.c.status,
            messages.c.provider_message_id,
            messages.c.surface_id,
            messages.c.credential_id,
        )
        .where(messages.c.provider_message_id.in_(provider_ids))
        .order_by(messages.c.id)
        .with_for_update()
    )
    for message_id, status, provider_id, surface_id, credential_id in rows:
        found.setdefault((provider_id, surface_id), []).append(
            _Message(message_id, status, credential_id)
        )
    return found


def _apply_early(
    conn: Connection,
    found: dict[tuple[str, str], list[_Message]],
    events: list[dict[str, Any]],
) -> Counter[tuple[str, str | None]]:
    """Reports parked for these messages before their send was recorded apply first, in
    arrival order, then are forgotten. The status changes they made, by credential."""
    applied: Counter[tuple[str, str | None]] = Counter()
    if not found:
        return applied
    early = early_delivery_reports
    rows = conn.execute(
        select(early.c.id, early.c.provider_message_id, early.c.surface_id, early.c.status)
        .add_columns(early.c.error, early.c.received_at)
        .where(early.c.provider_message_id.in_(sorted({pid for pid, _ in found})))
        .order_by(early.c.id)
    ).all()
    if not rows:
        return applied
    for _id, provider_id, surface_id, status, error, received_at in rows:
        for message in found.get((provider_id, surface_id), ()):
            if _change(message, status, error, received_at):
                applied[(status, message.credential_id)] += 1
                events.append(
                    Event(
                        message.id, received_at, status, {"error": error} if error else None
                    ).row()
                )
    conn.execute(delete(early).where(early.c.id.in_([row[0] for row in rows])))
    return applied


def _change(message: _Message, status: str, error: str | None, at: datetime) -> bool:
    if message.status not in ACCEPTED:
        return False
    message.status = status
    message.changed = {
        "b_id": message.id,
        "b_status": status,
        "b_at": at,
        "b_delivered_at": at if status == "delivered" else None,
        "b_error": error if status != "delivered" else None,
    }
    return True


_delivered_at = bindparam("b_delivered_at", type_=messages.c.delivered_at.type)
_error = bindparam("b_error", type_=messages.c.last_error.type)
_UPDATE = (
    update(messages)
    # (an IN list would expand per execution, which executemany cannot do)
    .where(messages.c.id == bindparam("b_id"), or_(*(messages.c.status == s for s in ACCEPTED)))
    .values(
        status=bindparam("b_status"),
        updated_at=bindparam("b_at"),
        delivered_at=func.coalesce(_delivered_at, messages.c.delivered_at),
        last_error=func.coalesce(_error, messages.c.last_error),
    )
)


def _write(
    conn: Connection,
    found: dict[tuple[str, str], list[_Message]],
    events: list[dict[str, Any]],
    parked: list[dict[str, Any]],
) -> None:
    changed = [m.changed for ms in found.values() for m in ms if m.changed is not None]
    if changed:
        conn.execute(_UPDATE, changed)
    if events:
        conn.execute(insert(message_events), events)
    if parked:
        conn.execute(insert(early_delivery_reports), parked)
