"""What an accepted message writes: its row, its short links, when the outbox offers it, and
how a surface's frequency cap and quiet hours change it (single sends and consent replies;
campaign fan-outs have their own batch path, ``services/fanout.py``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.domain.ids import new_id
from smsbridge.domain.links import Shortened
from smsbridge.domain.messages import MessageStatus, check_body
from smsbridge.domain.segments import count_segments
from smsbridge.domain.surfaces import MessageType, Surface
from smsbridge.storage import messages as repo

IDEMPOTENCY_TTL = timedelta(hours=24)


@dataclass(slots=True)  # not frozen: built per message by the thousand (see NewMessage)
class SendRequest:
    """One message to accept: to a number (``to``) or to a profile (``profile_id``, whose phone
    is used and whose attributes the body's template can read)."""

    surface_id: str
    to: str | None
    body: str
    send_at: datetime | None = None
    profile_id: str | None = None
    variables: Mapping[str, Any] | None = None
    callback_url: str | None = None
    """Where this message's status events are posted (docs/events.md)."""


@dataclass(frozen=True)
class Idempotency:
    """An ``Idempotency-Key`` and what it is scoped to (the caller and the operation)."""

    scope: str
    key: str
    request: Mapping[str, Any]

    @cached_property
    def request_hash(self) -> str:
        try:
            text = orjson.dumps(self.request, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            # A lone surrogate (a batch's refused message may hold one): only the standard
            # encoder writes it, escaped. Other requests keep the hash they always had.
            text = json.dumps(self.request, sort_keys=True).encode()
        return hashlib.sha256(text).hexdigest()


def message_view(
    row: Mapping[str, Any], events: Sequence[Mapping[str, Any]] | None
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": row["id"],
        "surface_id": row["surface_id"],
        "campaign_id": row["campaign_id"],
        "profile_id": row.get("profile_id"),
        "credential_id": row["credential_id"],
        "to": row["to_number"],
        "from": row["from_number"],
        "body": row["body"],
        "segments": row["segments"],
        "encoding": row["encoding"],
        "message_type": row["message_type"],
        "status": row["status"],
        "provider_message_id": row["provider_message_id"],
        "attempts": row["attempts"],
        "last_error": row["last_error"],
        "send_at": row["send_at"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "sent_at": row["sent_at"],
        "delivered_at": row["delivered_at"],
    }
    if events is not None:
        view["events"] = [{"at": e["at"], "type": e["type"], "detail": e["detail"]} for e in events]
    return view


def consent_reply(
    surface_id: str, surface: Surface, to: str, body: str, now: datetime
) -> repo.NewMessage:
    """The answer to a STOP / START / HELP: transactional, queued now, and sent even though the
    number opted out (it answers that very opt-out)."""
    text = check_body(body, "replies")
    count = count_segments(text)
    return repo.NewMessage(
        id=new_id("msg"),
        surface_id=surface_id,
        campaign_id=None,
        profile_id=None,
        message_type=MessageType.TRANSACTIONAL.value,
        to_number=to,
        from_number=surface.sender,
        body=text,
        segments=count.segments,
        encoding=count.encoding.value,
        status=MessageStatus.QUEUED.value,
        send_at=None,
        created_at=now,
        ignore_opt_out=True,
    )


def message_link_rows(
    message: repo.NewMessage, tracked: Shortened, now: datetime
) -> list[dict[str, Any]]:
    return [
        {
            "code": code,
            "message_id": message.id,
            "campaign_id": message.campaign_id,
            "surface_id": message.surface_id,
            "url": url,
            "created_at": now,
        }
        for code, url in tracked.links
    ]


def outbox_due(new: repo.NewMessage, now: datetime) -> datetime | None:
    """When the outbox should offer the message; None: it is not to be sent."""
    if new.status == MessageStatus.SUPPRESSED:
        return None
    return new.send_at if new.status == MessageStatus.SCHEDULED else now


async def paced(
    conn: AsyncConnection,
    surface: Surface,
    new: repo.NewMessage,
    now: datetime,
    timezone: str | None,
) -> repo.NewMessage:
    """A marketing message under the surface's frequency cap and quiet hours (see
    :func:`pace`), the number's recent messages counted in ``conn``."""
    recent = 0
    if surface.frequency_cap is not None:
        since = now - surface.frequency_cap.window
        counts = await repo.recent_marketing_counts(conn, new.surface_id, [new.to_number], since)
        recent = counts.get(new.to_number, 0)
    return pace(surface, new, now, timezone, recent)


def pace(
    surface: Surface, new: repo.NewMessage, now: datetime, timezone: str | None, recent: int
) -> repo.NewMessage:
    """A marketing message under the surface's frequency cap and quiet hours: suppressed when
    ``recent`` (the number's marketing messages of the surface within the cap's window) has
    reached the cap, scheduled for the end of the recipient's quiet hours when due inside
    them."""
    cap = surface.frequency_cap
    if cap is not None and recent >= cap.max_messages:
        hours = cap.window.total_seconds() / 3600
        reason = (
            f"frequency_cap: {recent} marketing message(s) to this number in the last "
            f"{hours:g} h (cap {cap.max_messages})"
        )
        return replace(new, status=MessageStatus.SUPPRESSED.value, last_error=reason)
    quiet = surface.quiet_hours
    if quiet is not None:
        due = new.send_at if new.status == MessageStatus.SCHEDULED and new.send_at else now
        zone = quiet.zone(new.to_number, timezone)
        release = quiet.release(due, zone)
        if release is not None:
            note = f"quiet hours in {zone.key}: deferred to {release.isoformat()}"
            return replace(new, status=MessageStatus.SCHEDULED.value, send_at=release, note=note)
    return new


def accepted_view(new: repo.NewMessage) -> dict[str, Any]:
    """:func:`message_view` of a message just accepted, with its first event: what
    ``GET /api/v1/messages/{id}`` would answer right after the commit (built from the message
    itself, not from a row read back)."""
    first = new.first_event()
    return {
        "id": new.id,
        "surface_id": new.surface_id,
        "campaign_id": new.campaign_id,
        "profile_id": new.profile_id,
        "credential_id": None,
        "to": new.to_number,
        "from": new.from_number,
        "body": new.body,
        "segments": new.segments,
        "encoding": new.encoding,
        "message_type": new.message_type,
        "status": new.status,
        "provider_message_id": None,
        "attempts": 0,
        "last_error": new.last_error,
        "send_at": new.send_at,
        "created_at": new.created_at,
        "updated_at": new.created_at,
        "sent_at": None,
        "delivered_at": None,
        "events": [{"at": first.at, "type": first.type, "detail": first.detail}],
    }


def jsonable(view: Mapping[str, Any]) -> dict[str, Any]:
    """``view`` as plain JSON values (what an Idempotency-Key record stores)."""
    result: dict[str, Any] = orjson.loads(orjson.dumps(view, option=orjson.OPT_UTC_Z))
    return result
