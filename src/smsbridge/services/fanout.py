"""Campaign fan-out: the audience streamed in batches into the outbox, exactly once.

Each batch is read (profiles after the cursor, their suppressions, the numbers the campaign
already targets), classified in Python (personalized message, or an exclusion with a
reason), then written in **one transaction that first moves the cursor by compare-and-set**:
``fanout_cursor`` must still be the one the batch was read after, and the campaign still
``running``. So a restart resumes exactly after the last committed batch, two processes
fanning out the same campaign cannot both write a batch, and a cancel stops the fan-out at
the next batch. The unique index on ``(campaign_id, to_number)`` backs this up: a number
never gets two messages of one campaign.

Throttle: message *k* of a campaign is due ``k / throttle_per_second`` seconds after the
campaign's start, so the pace holds across any number of workers, on top of the
credential's own rate limit.

:class:`smsbridge.services.campaign_runner.CampaignRunner` drives the fan-outs of running
campaigns in the background.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from smsbridge.domain.campaigns import (
    Audience,
    CampaignStatus,
    ExclusionReason,
    check_send_at,
    check_throttle,
    parse_audience,
)
from smsbridge.domain.ids import new_ids
from smsbridge.domain.links import shorten
from smsbridge.domain.messages import MessageStatus, check_body
from smsbridge.domain.personalize import Personalizer, ProfileRenderer
from smsbridge.domain.segments import count_segments
from smsbridge.domain.surfaces import Surface, parse_surface
from smsbridge.errors import Conflict, InvalidInput
from smsbridge.observability.metrics import Metrics
from smsbridge.storage import campaigns as repo
from smsbridge.storage import messages as messages_repo
from smsbridge.storage import profiles as profiles_repo
from smsbridge.storage import surfaces as surfaces_repo
from smsbridge.storage.database import Database
from smsbridge.storage.fanout import Exclusion, FanoutBatch, NewRecipient, write_batch

log = logging.getLogger("smsbridge.campaigns")

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_MEASURED_BODIES = 10_000
"""Distinct bodies whose segment count a fan-out remembers."""
Member = tuple[str, str, dict[str, Any], str | None]  # external_id, phone, attributes, timezone


@dataclass
class _State:
    """Where this process's fan-out of a campaign stands."""

    campaign: Mapping[str, Any]
    sender: str
    message_type: str
    audience: Audience
    link_base: str | None
    """Where short links point (None: the surface does not track links)."""
    pacing: Surface | None
    """The surface, when its quiet hours or frequency cap apply to this campaign."""
    cursor: str | None
    offset: int
    """Messages the campaign had before the next batch (throttle spacing continues from it)."""
    renderer: ProfileRenderer
    """The campaign's body, rendered (and memoized) for every batch of this fan-out."""
    measured: dict[str, tuple[int, str]] = field(default_factory=dict)
    """Segments and encoding per distinct body (without short links, bodies repeat)."""

    def advance(self, batch: FanoutBatch) -> None:
        self.cursor = batch.cursor
        self.offset += len(batch.recipients)


@dataclass(frozen=True)
class _Page:
    """One read of the audience, with what the database said about its numbers."""

    members: list[tuple[str, Member | None]]
    phones: list[str]
    cursor: str | None
    """The cursor after it."""
    done: bool
    suppressed: set[str]
    seen: set[str]
    recent: dict[str, int]


@dataclass(frozen=True)
class BatchResult:
    messages: int
    excluded: int
    done: bool


class FanOut:
    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], datetime],
        personalizer: Personalizer,
        public_url: str = "http://127.0.0.1:8000",
        batch_size: int = 5000,
        on_enqueued: Callable[[], None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._metrics = metrics or Metrics()
        self._personalizer = personalizer
        self._public_url = public_url
        self._batch_size = batch_size
        self._on_enqueued = on_enqueued

    async def run(self, campaign_id: str, *, stop: asyncio.Event | None = None) -> None:
        """Fan out until done, cancelled, taken over by another process, or ``stop`` is set.

        Pipelined: batch *n + 1* is read and rendered while batch *n* is being written. Its
        duplicate check therefore also looks at batch *n*'s numbers (not committed yet), and
        its write still waits for batch *n*'s: the cursor it expects is the one *n* sets.
        (Reading ahead one more batch was measured slower: three busy threads on two cores.)
        """
        state = await self._load(campaign_id)
        if state is None:
            return
        writing: asyncio.Task[bool] | None = None
        in_flight: set[str] = set()
        try:
            while stop is None or not stop.is_set():
                batch = await self._built(state, await self._read(state), in_flight)
                if writing is not None and not await self._written(writing):
                    return
                writing = asyncio.create_task(self._write(batch))
                state.advance(batch)
                in_flight = {r.to_number for r in batch.recipients}
                if batch.done:
                    break
        finally:
            if writing is not None:
                await self._written(writing)

    async def step(self, campaign_id: str) -> BatchResult | None:
        """One batch, read from the stored state; None when there is nothing (more) for this
        process to do."""
        state = await self._load(campaign_id)
        if state is None:
            return None
        batch = await self._built(state, await self._read(state), set())
        if not await self._written(asyncio.create_task(self._write(batch))):
            return None
        return BatchResult(len(batch.recipients), len(batch.exclusions), batch.done)

    async def _write(self, batch: FanoutBatch) -> bool:
        moved = await write_batch(self._db, batch)
        if moved:
            self._metrics.fanned_out(len(batch.recipients), len(batch.exclusions))
        return moved

    async def _written(self, writing: asyncio.Task[bool]) -> bool:
        """Wait for a batch write; False when it was refused (the fan-out must stop)."""
        try:
            moved = await writing
        except Conflict:
            log.warning("a concurrent fan-out wrote a batch first; this one stops")
            return False
        if moved and self._on_enqueued is not None:
            self._on_enqueued()
        return moved

    async def _load(self, campaign_id: str) -> _State | None:
        async with self._db.read() as conn:
            campaign = await repo.get_campaign(conn, campaign_id)
            if (
                campaign is None
                or campaign["status"] != CampaignStatus.RUNNING
                or campaign["fanout_done"]
            ):
                return None
            surface_row = await surfaces_repo.get_surface(conn, campaign["surface_id"])
        if surface_row is None:
            return None
        # Stored rows are checked again: older versions let values through (a throttle of
        # 1e-300, a send_at in year 9999) that would overflow the due times.
        check_throttle(campaign["throttle_per_second"])
        check_send_at(campaign["send_at"])
        surface = parse_surface(surface_row.document)
        return _State(
            campaign=campaign,
            sender=surface.sender,
            message_type=surface.message_type.value,
            audience=parse_audience(campaign["audience"]),
            link_base=surface.link_base(self._public_url),
            pacing=surface if surface.paces else None,
            cursor=campaign["fanout_cursor"],
            offset=int(campaign["targeted"]),
            renderer=await asyncio.to_thread(  # compiling may take a while
                ProfileRenderer, self._personalizer, campaign["body"], campaign["variables"] or {}
            ),
        )

    async def _read(self, state: _State) -> _Page:
        """The audience members after ``state.cursor``, and what the database knows about
        their numbers (suppressed, already targeted, recent marketing messages)."""
        cursor = state.cursor
        async with self._db.read() as conn:
            members: list[tuple[str, Member | None]]
            if state.audience.profile_ids is not None:
                start = int(cursor or 0)
                ids = state.audience.profile_ids[start : start + self._batch_size]
                found = await profiles_repo.profiles_by_id(conn, ids)
                members = [(i, found.get(i)) for i in ids]
                next_cursor: str | None = str(start + len(ids))
                done = start + len(ids) >= len(state.audience.profile_ids)
            else:
                rows = await profiles_repo.audience_batch(
                    conn, state.audience, after=cursor, limit=self._batch_size
                )
                members = [(r[0], r) for r in rows]
                next_cursor = rows[-1][0] if rows else cursor
                done = len(rows) < self._batch_size
            phones = [m[1] for _, m in members if m is not None]
            suppressed = await repo.suppressed_phones(conn, state.sender, phones)
            seen = await repo.phones_already_targeted(conn, state.campaign["id"], phones)
            recent: dict[str, int] = {}
            cap = state.pacing.frequency_cap if state.pacing is not None else None
            if cap is not None:
                recent = await messages_repo.recent_marketing_counts(
                    conn, state.campaign["surface_id"], phones, self._clock() - cap.window
                )
        return _Page(members, phones, next_cursor, done, suppressed, seen, recent)

    async def _built(self, state: _State, page: _Page, in_flight: set[str]) -> FanoutBatch:
        """:meth:`_build`, in a thread when the body renders through Jinja (each recipient may
        take up to the render deadline); plain substitutions stay on the loop (microseconds)."""
        if state.renderer.uses_engine:
            return await asyncio.to_thread(self._build, state, page, in_flight)
        return self._build(state, page, in_flight)

    def _build(self, state: _State, page: _Page, in_flight: set[str]) -> FanoutBatch:
        """The page's messages and exclusions, as the batch to write after ``state.cursor``."""
        seen = page.seen | (in_flight & set(page.phones))
        now = self._clock()
        recipients, exclusions = self._classify(state, page.members, page.suppressed, seen, now)
        if state.pacing is not None:
            recipients, capped = _pace(state.pacing, recipients, page.members, page.recent)
            exclusions.extend(capped)
        return FanoutBatch(
            campaign_id=state.campaign["id"],
            surface_id=state.campaign["surface_id"],
            message_type=state.message_type,
            from_number=state.sender,
            status=_initial_status(state.campaign, now),
            send_at=state.campaign["send_at"],
            now=now,
            expected_cursor=state.cursor,
            cursor=page.cursor,
            done=page.done,
            recipients=recipients,
            exclusions=exclusions,
        )

    def _classify(
        self,
        state: _State,
        members: Sequence[tuple[str, Member | None]],
        suppressed: set[str],
        seen: set[str],
        now: datetime,
    ) -> tuple[list[NewRecipient], list[Exclusion]]:
        """Each audience member becomes a rendered message or an exclusion with a reason."""
        campaign, offset, link_base = state.campaign, state.offset, state.link_base
        renderer, measured = state.renderer, state.measured
        send_at: datetime | None = campaign["send_at"]
        launched: datetime = campaign["launched_at"] or now
        start = max(send_at or launched, launched, now)
        throttle: float | None = campaign["throttle_per_second"]
        ids = iter(new_ids("msg", len(members)))
        recipients: list[NewRecipient] = []
        exclusions: list[Exclusion] = []
        for profile_id, member in members:
            if member is None:
                exclusions.append(
                    Exclusion(profile_id, None, ExclusionReason.UNKNOWN_PROFILE, "no such profile")
                )
                continue
            external_id, phone, attributes, timezone = member
            reason, detail = None, None
            links: tuple[tuple[str, str], ...] = ()
            if not _E164.fullmatch(phone):
                reason, detail = ExclusionReason.INVALID_PHONE, "not an E.164 number"
            elif phone in suppressed:
                reason = ExclusionReason.OPTED_OUT
            elif phone in seen:
                reason, detail = ExclusionReason.DUPLICATE, "number already targeted"
            else:
                try:
                    body = renderer.render(attributes, phone, external_id, timezone)
                    if link_base is not None:
                        shortened = shorten(body, link_base)
                        body, links = shortened.text, shortened.links
                    known = measured.get(body)
                    if known is None:
                        count = count_segments(check_body(body))
                        known = (count.segments, count.encoding.value)
                        if len(measured) < _MEASURED_BODIES:
                            measured[body] = known
                    segments, encoding = known
                except InvalidInput as exc:
                    reason, detail = ExclusionReason.INVALID_MESSAGE, exc.message[:500]
            if reason is not None:
                exclusions.append(Exclusion(external_id, phone, reason, detail))
                continue
            seen.add(phone)
            due = start
            if throttle:
                due = start + timedelta(seconds=(offset + len(recipients)) / throttle)
            recipients.append(
                NewRecipient(next(ids), external_id, phone, body, segments, encoding, due, links)
            )
        return recipients, exclusions


def _pace(
    surface: Surface,
    recipients: list[NewRecipient],
    members: Sequence[tuple[str, Member | None]],
    recent: Mapping[str, int],
) -> tuple[list[NewRecipient], list[Exclusion]]:
    """The surface's frequency cap (over it: excluded) and quiet hours (inside them: due at
    the end of the recipient's window, scheduled)."""
    cap, quiet = surface.frequency_cap, surface.quiet_hours
    zones = {m[0]: m[3] for _, m in members if m is not None}  # external id → profile zone
    kept: list[NewRecipient] = []
    excluded: list[Exclusion] = []
    for recipient in recipients:
        if cap is not None and recent.get(recipient.to_number, 0) >= cap.max_messages:
            hours = cap.window.total_seconds() / 3600
            detail = f"{recent[recipient.to_number]} marketing message(s) in the last {hours:g} h"
            excluded.append(
                Exclusion(
                    recipient.profile_id,
                    recipient.to_number,
                    ExclusionReason.FREQUENCY_CAP,
                    detail,
                )
            )
            continue
        if quiet is not None:
            zone = quiet.zone(recipient.to_number, zones.get(recipient.profile_id))
            release = quiet.release(recipient.due_at, zone)
            if release is not None:
                recipient = replace(recipient, due_at=release, deferred=True)
        kept.append(recipient)
    return kept, excluded


def _initial_status(campaign: Mapping[str, Any], now: datetime) -> MessageStatus:
    send_at: datetime | None = campaign["send_at"]
    return (
        MessageStatus.SCHEDULED if send_at is not None and send_at > now else MessageStatus.QUEUED
    )
