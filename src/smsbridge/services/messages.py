"""Message use cases: accept (with idempotency), read, list, cancel.

A message is accepted only once it, its first event and its outbox entry are committed in
one transaction; the worker does the rest.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.domain.links import Shortened, shorten
from smsbridge.domain.messages import DELIVERY_OUTCOMES, EventType, MessageStatus, check_body
from smsbridge.domain.personalize import Personalizer, Rendered
from smsbridge.domain.phones import normalize_phone
from smsbridge.domain.profiles import template_view
from smsbridge.domain.segments import count_segments
from smsbridge.domain.surfaces import Surface, parse_surface
from smsbridge.errors import Conflict, InvalidInput, LimitExceeded, NotFound, phrase
from smsbridge.services.accept import Answer, Draft, GroupWriter, Submission, new_message
from smsbridge.services.cpu_lane import CpuLane
from smsbridge.services.group_commit import GroupCommit
from smsbridge.services.message_rows import (
    IDEMPOTENCY_TTL,
    Idempotency,
    SendRequest,
    message_link_rows,
    message_view,
    outbox_due,
)
from smsbridge.services.pagination import Page, check_limit, decode_cursor, page_of
from smsbridge.storage import links as links_repo
from smsbridge.storage import messages as repo
from smsbridge.storage import profiles as profiles_repo
from smsbridge.storage import surfaces as surfaces_repo
from smsbridge.storage.database import Database

MAX_BATCH = 1000
"""Messages in one ``POST /messages/batch``."""
GROUP_WEIGHT = 2000
"""Messages written by one group commit at most (a batch is never split)."""


class MessageService:
    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], datetime],
        personalizer: Personalizer,
        public_url: str = "http://127.0.0.1:8000",
        default_region: str | None = None,
        on_enqueued: Callable[[], None] | None = None,
        cpu: CpuLane | None = None,
        allow_private_urls: bool = False,
    ) -> None:
        self._db = db
        self._clock = clock
        self._personalizer = personalizer
        self._cpu = cpu or CpuLane("messages")
        self._public_url = public_url
        self._region = default_region
        self._on_enqueued = on_enqueued
        self._writer = GroupWriter(
            link_base=lambda surface: surface.link_base(public_url),
            allow_private_urls=allow_private_urls,
        )
        self._group: GroupCommit[Submission, Answer] = GroupCommit(
            self._write_group,
            name="accept-messages",
            max_weight=GROUP_WEIGHT,
            # SQLite writes one transaction at a time anyway; on PostgreSQL a few groups in
            # flight overlap one group's round trips with the next one's.
            parallel=1 if db.dialect_ops.single_writer else 4,
        )

    async def _recipient(
        self, conn: AsyncConnection, request: SendRequest
    ) -> tuple[str, dict[str, Any] | None]:
        """The destination number, and the profile the template sees (if any)."""
        if (request.to is None) == (request.profile_id is None):
            raise InvalidInput.one("to", "give exactly one of `to` (a number) or `profile_id`")
        if request.profile_id is None:
            return normalize_phone(request.to or "", "to", self._region), None
        found = await profiles_repo.get_profile(conn, request.profile_id)
        if found is None:
            raise InvalidInput.one("profile_id", f"no profile {request.profile_id!r}")
        return str(found["phone"]), template_view(found)

    async def _render(
        self, request: SendRequest, profile: Mapping[str, Any] | None, to: str | None
    ) -> Rendered:
        """The body personalized. A template that needs Jinja is rendered on the CPU lane: it
        may take up to the render deadline, which the event loop must never wait for."""
        view = dict(profile) if profile is not None else {"phone": to}
        variables = request.variables or {}
        self._personalizer.check_length(request.body)
        if self._personalizer.is_static(request.body):
            return self._personalizer.render(request.body, profile=view, variables=variables)
        return await self._cpu.run(
            self._personalizer.render, request.body, profile=view, variables=variables
        )

    def _track(self, surface: Surface, body: str) -> Shortened:
        """The body with its URLs shortened when the surface tracks links."""
        base = surface.link_base(self._public_url)
        return Shortened(body, ()) if base is None else shorten(body, base)

    async def send(self, request: SendRequest, *, idempotency: Idempotency | None = None) -> Answer:
        """Accept one message; returns (HTTP status, message view) once it is durable."""
        return await self._accept(
            lambda: self._drafts([request]), idempotency=idempotency, batch=False, weight=1
        )

    async def send_batch(
        self,
        items: Sequence[SendRequest | InvalidInput],
        *,
        idempotency: Idempotency | None = None,
    ) -> Answer:
        """Accept up to :data:`MAX_BATCH` messages at once: ``(207, {"results": [...]})``, one
        result per item in order (202 with the message, or 422 with a problem naming the
        item's fields; items that failed the caller's own checks are given as their error)."""
        if not items:
            raise InvalidInput.one("messages", "must hold at least one message")
        if len(items) > MAX_BATCH:
            raise InvalidInput.one("messages", f"at most {MAX_BATCH} messages per batch")
        return await self._accept(
            lambda: self._drafts(items), idempotency=idempotency, batch=True, weight=len(items)
        )

    async def _accept(
        self,
        drafts: Callable[[], Awaitable[list[Draft | InvalidInput]]],
        *,
        idempotency: Idempotency | None,
        batch: bool,
        weight: int,
    ) -> Answer:
        try:
            if idempotency is not None:  # a replay answers as before, whatever changed since
                async with self._db.read() as conn:
                    replayed = await self._replayed(conn, idempotency, self._clock())
                if replayed is not None:
                    return replayed
            prepared = await drafts()
            if not batch and isinstance(prepared[0], InvalidInput):
                raise prepared[0]
            submission = Submission(prepared, idempotency, batch=batch)
            return await self._group.submit(submission, weight=weight)
        except Conflict:
            if idempotency is None:
                raise
            # A concurrent request with the same key committed first: answer as it did.
            async with self._db.read() as conn:
                return await self._replay(conn, idempotency)

    async def _drafts(
        self, requests: Sequence[SendRequest | InvalidInput]
    ) -> list[Draft | InvalidInput]:
        """Each request checked and personalized (its error in its place when it fails).
        Profiles are read on one connection, opened only when a request names one."""
        drafts: list[Draft | InvalidInput] = []
        async with contextlib.AsyncExitStack() as stack:
            conn: AsyncConnection | None = None
            for request in requests:
                if isinstance(request, InvalidInput):
                    drafts.append(request)
                    continue
                try:
                    if request.profile_id is not None and conn is None:
                        conn = await stack.enter_async_context(self._db.read())
                    drafts.append(await self._draft(conn, request))
                except InvalidInput as refused:
                    drafts.append(refused)
        return drafts

    async def _draft(self, conn: AsyncConnection | None, request: SendRequest) -> Draft:
        if request.send_at is not None and request.send_at.tzinfo is None:
            raise InvalidInput.one("send_at", "must carry a time zone, e.g. 2026-05-01T09:00:00Z")
        if (request.to is None) == (request.profile_id is None):
            raise InvalidInput.one("to", "give exactly one of `to` (a number) or `profile_id`")
        profile: dict[str, Any] | None = None
        if conn is None:
            to = normalize_phone(request.to or "", "to", self._region)
        else:
            to, profile = await self._recipient(conn, request)
        body = check_body((await self._render(request, profile, to)).text)
        return Draft(request, to, body, (profile or {}).get("timezone"))

    async def _write_group(self, submissions: Sequence[Submission]) -> list[Answer | BaseException]:
        work = partial(self._writer.write, submissions=submissions, now=self._clock())
        answers = await self._db.run_transaction(work)
        if self._on_enqueued is not None:
            self._on_enqueued()
        return answers

    def group_stats(self) -> tuple[int, int]:
        """(transactions, requests) the group commit has written so far."""
        return self._group.groups, self._group.units

    async def close(self) -> None:
        """Write the messages still waiting for their group, then stop."""
        await self._group.close()

    async def _replayed(
        self, conn: Any, idempotency: Idempotency | None, now: datetime
    ) -> Answer | None:
        """The stored answer when this Idempotency-Key was already used, else None."""
        if idempotency is None:
            return None
        since = now - IDEMPOTENCY_TTL
        if await repo.find_idempotent(conn, idempotency.scope, idempotency.key, since):
            return await self._replay(conn, idempotency)
        return None

    async def _replay(self, conn: Any, idempotency: Idempotency) -> Answer:
        since = self._clock() - IDEMPOTENCY_TTL
        found = await repo.find_idempotent(conn, idempotency.scope, idempotency.key, since)
        if found is None:
            raise Conflict("a request with this Idempotency-Key is still being processed")
        if found["request_hash"] != idempotency.request_hash:
            raise InvalidInput.one(
                "Idempotency-Key", "was already used with a different request body"
            )
        return int(found["status_code"]), dict(found["response"])

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
            new, link_rows = [], []
            for r in requests:
                surface = parsed[r.surface_id]
                tracked = self._track(surface, r.body)
                to = normalize_phone(r.to or "", "to", self._region)
                message = new_message(r, now, surface, to=to, body=tracked.text)
                new.append(message)
                link_rows.extend(message_link_rows(message, tracked, now))
            due = [outbox_due(m, now) for m in new]
            await repo.insert_messages(conn, new, due=due)
            await links_repo.insert_links(conn, link_rows)
        if self._on_enqueued is not None:
            self._on_enqueued()
        return [m.id for m in new]

    async def preview(self, request: SendRequest) -> dict[str, Any]:
        """What a message would be, without sending: rendered text, segments, encoding, the
        characters forcing UCS-2, undefined names, and the problems found (not raised)."""
        async with self._db.read() as conn:
            surface_row = await surfaces_repo.get_surface(conn, request.surface_id)
            if surface_row is None:
                raise InvalidInput.one("surface_id", f"no surface {request.surface_id}")
            surface = parse_surface(surface_row.document)
            if request.to is None and request.profile_id is None:
                profile: dict[str, Any] | None = {}
                to: str | None = None
            else:
                to, profile = await self._recipient(conn, request)
        errors: list[dict[str, str]] = []
        text, undefined = "", tuple[str, ...]()
        try:
            rendered = await self._render(request, profile, to)
            text, undefined = self._track(surface, rendered.text).text, rendered.undefined
            check_body(text)
        except LimitExceeded:
            raise  # a refusal to do the work (422), not a problem found in the message
        except InvalidInput as exc:
            errors = [{"field": e.field, "message": e.message} for e in exc.errors]
        count = count_segments(text)
        return {
            "surface_id": request.surface_id,
            "to": to,
            "profile_id": request.profile_id,
            "text": text,
            "characters": len(text),
            "segments": count.segments if text else 0,
            "encoding": count.encoding.value,
            "units": count.units,
            "ucs2_characters": list(count.ucs2_characters),
            "undefined": list(undefined),
            "errors": errors,
        }

    async def record_delivery(
        self,
        message_id: str,
        status: MessageStatus,
        *,
        error: str | None = None,
        at: datetime | None = None,
    ) -> bool:
        """Apply what a delivery report says (``delivered``, ``undelivered`` or ``failed``) to
        a message the provider accepted. A final status never changes again, so replayed and
        out-of-order reports have no effect; returns whether the message changed."""
        if status not in DELIVERY_OUTCOMES:
            raise InvalidInput.one("status", "must be delivered, undelivered or failed")
        when = at or self._clock()
        async with self._db.transaction() as conn:
            changed = await repo.apply_delivery(
                conn,
                message_id,
                status,
                at=when,
                error=error,
                event=repo.Event(message_id, when, status, {"error": error} if error else None),
            )
        return changed

    async def get(self, message_id: str) -> dict[str, Any]:
        async with self._db.read() as conn:
            row = await repo.get_message(conn, message_id)
            if row is None:
                raise NotFound(f"no message {message_id}")
            events = await repo.get_events(conn, row)
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
                raise Conflict(
                    phrase(
                        "only a scheduled or queued message can be cancelled; this one is "
                        "%(status)s",
                        status=row["status"],
                    )
                )
            if not await repo.take_unleased_entry(conn, message_id, now):
                raise Conflict(
                    phrase("the message is being sent right now and cannot be cancelled")
                )
            await repo.set_status(
                conn,
                message_id,
                MessageStatus.CANCELLED,
                now,
                repo.Event(message_id, now, EventType.CANCELLED, {"by": "api"}),
            )
        return await self.get(message_id)
