"""Message use cases: accept (with idempotency), read, list, cancel.

A message is accepted only once it, its first event and its outbox entry are committed in
one transaction; the worker does the rest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError

from smsbridge.domain.ids import new_id
from smsbridge.domain.messages import EventType, MessageStatus, check_body
from smsbridge.domain.phones import normalize_phone
from smsbridge.domain.segments import count_segments
from smsbridge.domain.surfaces import Surface, parse_surface
from smsbridge.errors import Conflict, InvalidInput, NotFound
from smsbridge.services.pagination import Page, check_limit, decode_cursor, page_of
from smsbridge.storage import messages as repo
from smsbridge.storage import surfaces as surfaces_repo
from smsbridge.storage.database import Database

IDEMPOTENCY_TTL = timedelta(hours=24)


@dataclass(frozen=True)
class SendRequest:
    surface_id: str
    to: str
    body: str
    send_at: datetime | None = None
    campaign_id: str | None = None


@dataclass(frozen=True)
class Idempotency:
    """An ``Idempotency-Key`` and what it is scoped to (the caller and the operation)."""

    scope: str
    key: str
    request: Mapping[str, Any]

    @cached_property
    def request_hash(self) -> str:
        return hashlib.sha256(orjson.dumps(self.request, option=orjson.OPT_SORT_KEYS)).hexdigest()


def message_view(
    row: Mapping[str, Any], events: Sequence[Mapping[str, Any]] | None
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": row["id"],
        "surface_id": row["surface_id"],
        "campaign_id": row["campaign_id"],
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


class MessageService:
    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], datetime],
        default_region: str | None = None,
        on_enqueued: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._region = default_region
        self._on_enqueued = on_enqueued

    def _prepare(self, request: SendRequest, now: datetime, surface: Surface) -> repo.NewMessage:
        to = normalize_phone(request.to, "to", self._region)
        body = check_body(request.body)
        count = count_segments(body)
        scheduled = request.send_at is not None and request.send_at > now
        return repo.NewMessage(
            id=new_id("msg"),
            surface_id=request.surface_id,
            campaign_id=request.campaign_id,
            message_type=surface.message_type.value,
            to_number=to,
            from_number=surface.sender,
            body=body,
            segments=count.segments,
            encoding=count.encoding.value,
            status=MessageStatus.SCHEDULED.value if scheduled else MessageStatus.QUEUED.value,
            send_at=request.send_at,
            created_at=now,
        )

    async def send(
        self, request: SendRequest, *, idempotency: Idempotency | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Accept one message; returns (HTTP status, message view)."""
        if request.send_at is not None and request.send_at.tzinfo is None:
            raise InvalidInput.one("send_at", "must carry a time zone, e.g. 2026-05-01T09:00:00Z")
        try:
            return await self._send_once(request, idempotency)
        except IntegrityError:
            if idempotency is None:
                raise
            # A concurrent request with the same key committed first: answer as it did.
            async with self._db.read() as conn:
                return await self._replay(conn, idempotency)

    async def _replay(self, conn: Any, idempotency: Idempotency) -> tuple[int, dict[str, Any]]:
        since = self._clock() - IDEMPOTENCY_TTL
        found = await repo.find_idempotent(conn, idempotency.scope, idempotency.key, since)
        if found is None:
            raise Conflict("a request with this Idempotency-Key is still being processed")
        if found["request_hash"] != idempotency.request_hash:
            raise InvalidInput.one(
                "Idempotency-Key", "was already used with a different request body"
            )
        return int(found["status_code"]), dict(found["response"])

    async def _send_once(
        self, request: SendRequest, idempotency: Idempotency | None
    ) -> tuple[int, dict[str, Any]]:
        now = self._clock()
        async with self._db.transaction() as conn:
            if idempotency is not None:
                since = now - IDEMPOTENCY_TTL
                if await repo.find_idempotent(conn, idempotency.scope, idempotency.key, since):
                    return await self._replay(conn, idempotency)
            surface = await surfaces_repo.get_surface(conn, request.surface_id)
            if surface is None:
                raise InvalidInput.one("surface_id", f"no surface {request.surface_id}")
            new = self._prepare(request, now, parse_surface(surface.document))
            due = new.send_at if new.status == MessageStatus.SCHEDULED else now
            await repo.insert_messages(conn, [new], due=[due])
            view = message_view(_new_row(new), [{"at": now, "type": new.status, "detail": None}])
            if idempotency is not None:
                await repo.save_idempotent(
                    conn,
                    scope=idempotency.scope,
                    key=idempotency.key,
                    request_hash=idempotency.request_hash,
                    status_code=202,
                    response=_jsonable(view),
                    now=now,
                    expired_before=now - IDEMPOTENCY_TTL,
                )
        if self._on_enqueued is not None:
            self._on_enqueued()
        return 202, view

    async def enqueue_many(self, requests: Sequence[SendRequest]) -> list[str]:
        """Accept many messages in one transaction (bulk paths: campaigns, benchmarks)."""
        if not requests:
            return []
        now = self._clock()
        async with self._db.transaction() as conn:
            parsed: dict[str, Surface] = {}
            for surface_id in {r.surface_id for r in requests}:
                found = await surfaces_repo.get_surface(conn, surface_id)
                if found is None:
                    raise InvalidInput.one("surface_id", f"no surface {surface_id}")
                parsed[surface_id] = parse_surface(found.document)
            new = [self._prepare(r, now, parsed[r.surface_id]) for r in requests]
            due = [m.send_at if m.status == MessageStatus.SCHEDULED else now for m in new]
            await repo.insert_messages(conn, new, due=due)
        if self._on_enqueued is not None:
            self._on_enqueued()
        return [m.id for m in new]

    async def get(self, message_id: str) -> dict[str, Any]:
        async with self._db.read() as conn:
            row = await repo.get_message(conn, message_id)
            if row is None:
                raise NotFound(f"no message {message_id}")
            events = await repo.get_events(conn, message_id)
        return message_view(row, events)

    async def list(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        campaign_id: str | None = None,
        status: str | None = None,
        to: str | None = None,
        surface_id: str | None = None,
    ) -> Page[dict[str, Any]]:
        limit = check_limit(limit)
        if status is not None and status not in MessageStatus.__members__.values():
            raise InvalidInput.one(
                "status", f"must be one of: {', '.join(s.value for s in MessageStatus)}"
            )
        to_number = normalize_phone(to, "to", self._region) if to else None
        async with self._db.read() as conn:
            rows = await repo.list_messages(
                conn,
                limit=limit + 1,
                after=decode_cursor(cursor),
                campaign_id=campaign_id,
                status=status,
                to_number=to_number,
                surface_id=surface_id,
            )
        return page_of(
            rows, limit, last_id=lambda r: str(r["id"]), view=lambda r: message_view(r, None)
        )

    async def cancel(self, message_id: str) -> dict[str, Any]:
        now = self._clock()
        async with self._db.transaction() as conn:
            row = await repo.get_message(conn, message_id)
            if row is None:
                raise NotFound(f"no message {message_id}")
            if row["status"] not in (MessageStatus.SCHEDULED, MessageStatus.QUEUED):
                raise Conflict(f"a {row['status']} message cannot be cancelled")
            if not await repo.take_unleased_entry(conn, message_id, now):
                raise Conflict("the message is being sent right now and cannot be cancelled")
            await repo.set_status(
                conn,
                message_id,
                MessageStatus.CANCELLED,
                now,
                repo.Event(message_id, now, EventType.CANCELLED, {"by": "api"}),
            )
        return await self.get(message_id)


def _new_row(new: repo.NewMessage) -> dict[str, Any]:
    return {
        **new.__dict__,
        "credential_id": None,
        "attempts": 0,
        "last_error": None,
        "provider_message_id": None,
        "updated_at": new.created_at,
        "sent_at": None,
        "delivered_at": None,
    }


def _jsonable(view: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(orjson.dumps(view))
    return result
