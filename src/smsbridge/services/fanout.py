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

:class:`CampaignRunner` drives the fan-outs of running campaigns in the background, and marks
campaigns ``completed`` once their fan-out is done and nothing of them is pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from smsbridge.domain.campaigns import CampaignStatus, ExclusionReason, parse_audience
from smsbridge.domain.ids import new_id
from smsbridge.domain.messages import MessageStatus, check_body
from smsbridge.domain.personalize import Personalizer
from smsbridge.domain.segments import count_segments
from smsbridge.domain.surfaces import parse_surface
from smsbridge.errors import InvalidInput
from smsbridge.storage import campaigns as repo
from smsbridge.storage import messages as messages_repo
from smsbridge.storage import profiles as profiles_repo
from smsbridge.storage import surfaces as surfaces_repo
from smsbridge.storage.database import Database

log = logging.getLogger("smsbridge.campaigns")

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
Member = tuple[str, str, dict[str, Any], str | None]  # external_id, phone, attributes, timezone


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
        batch_size: int = 1000,
        on_enqueued: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._personalizer = personalizer
        self._batch_size = batch_size
        self._on_enqueued = on_enqueued

    async def run(self, campaign_id: str, *, stop: asyncio.Event | None = None) -> None:
        """Fan out until done, cancelled, taken over by another process, or ``stop`` is set."""
        while stop is None or not stop.is_set():
            result = await self.step(campaign_id)
            if result is None or result.done:
                return

    async def step(self, campaign_id: str) -> BatchResult | None:
        """One batch; None when there is nothing (more) for this process to do."""
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
            surface = parse_surface(surface_row.document)
            audience = parse_audience(campaign["audience"])
            cursor: str | None = campaign["fanout_cursor"]
            members: list[tuple[str, Member | None]]
            if audience.profile_ids is not None:
                start = int(cursor or 0)
                ids = audience.profile_ids[start : start + self._batch_size]
                found = await profiles_repo.profiles_by_id(conn, ids)
                members = [(i, found.get(i)) for i in ids]
                next_cursor: str | None = str(start + len(ids))
                done = start + len(ids) >= len(audience.profile_ids)
            else:
                rows = await profiles_repo.audience_batch(
                    conn, audience, after=cursor, limit=self._batch_size
                )
                members = [(r[0], r) for r in rows]
                next_cursor = rows[-1][0] if rows else cursor
                done = len(rows) < self._batch_size
            phones = [m[1] for _, m in members if m is not None]
            suppressed = await repo.suppressed_phones(conn, surface.sender, phones)
            seen = await repo.phones_already_targeted(conn, campaign_id, phones)

        now = self._clock()
        new, exclusions = self._classify(
            campaign, surface.sender, surface.message_type.value, members, suppressed, seen, now
        )
        try:
            async with self._db.transaction() as conn:
                moved = await repo.advance_fanout(
                    conn,
                    campaign_id,
                    expected_cursor=cursor,
                    cursor=next_cursor,
                    done=done,
                    targeted=len(new),
                    excluded=len(exclusions),
                    now=now,
                )
                if not moved:
                    return None  # cancelled, or another process took this batch
                await messages_repo.insert_messages(
                    conn, [m for m, _ in new], due=[due for _, due in new]
                )
                await repo.insert_exclusions(conn, exclusions)
        except IntegrityError:
            # Only a concurrent fan-out of the same campaign can collide on the unique
            # (campaign, number) index after our cursor check; its batch stands, ours is undone.
            log.warning("campaign %s: a concurrent fan-out wrote this batch first", campaign_id)
            return None
        if new and self._on_enqueued is not None:
            self._on_enqueued()
        return BatchResult(len(new), len(exclusions), done)

    def _classify(
        self,
        campaign: Mapping[str, Any],
        sender: str,
        message_type: str,
        members: Sequence[tuple[str, Member | None]],
        suppressed: set[str],
        seen: set[str],
        now: datetime,
    ) -> tuple[list[tuple[messages_repo.NewMessage, datetime]], list[dict[str, Any]]]:
        campaign_id = campaign["id"]
        send_at: datetime | None = campaign["send_at"]
        start = max(send_at or campaign["launched_at"] or now, campaign["launched_at"] or now)
        scheduled = send_at is not None and send_at > now
        throttle: float | None = campaign["throttle_per_second"]
        offset: int = campaign["targeted"]
        source, variables = campaign["body"], campaign["variables"] or {}
        static = self._personalizer.is_static(source)

        new: list[tuple[messages_repo.NewMessage, datetime]] = []
        exclusions: list[dict[str, Any]] = []

        def exclude(profile_id: str, phone: str | None, reason: str, detail: str | None) -> None:
            exclusions.append(
                {
                    "campaign_id": campaign_id,
                    "profile_id": profile_id,
                    "phone": phone,
                    "reason": reason,
                    "detail": detail,
                }
            )

        for profile_id, member in members:
            if member is None:
                exclude(profile_id, None, ExclusionReason.UNKNOWN_PROFILE, "no such profile")
                continue
            external_id, phone, attributes, timezone = member
            if not _E164.fullmatch(phone):
                exclude(external_id, phone, ExclusionReason.INVALID_PHONE, "not an E.164 number")
                continue
            if phone in suppressed:
                exclude(external_id, phone, ExclusionReason.OPTED_OUT, None)
                continue
            if phone in seen:
                exclude(external_id, phone, ExclusionReason.DUPLICATE, "number already targeted")
                continue
            try:
                if static:
                    body = check_body(source)
                else:
                    view = dict(attributes)
                    view.update(phone=phone, external_id=external_id, timezone=timezone)
                    body = check_body(
                        self._personalizer.render(source, profile=view, variables=variables).text
                    )
            except InvalidInput as exc:
                exclude(external_id, phone, ExclusionReason.INVALID_MESSAGE, exc.message[:500])
                continue
            seen.add(phone)
            count = count_segments(body)
            due = start
            if throttle:
                due = start + timedelta(seconds=(offset + len(new)) / throttle)
            new.append(
                (
                    messages_repo.NewMessage(
                        id=new_id("msg"),
                        surface_id=campaign["surface_id"],
                        campaign_id=campaign_id,
                        profile_id=external_id,
                        message_type=message_type,
                        to_number=phone,
                        from_number=sender,
                        body=body,
                        segments=count.segments,
                        encoding=count.encoding.value,
                        status=(
                            MessageStatus.SCHEDULED if scheduled else MessageStatus.QUEUED
                        ).value,
                        send_at=send_at,
                        created_at=now,
                    ),
                    due,
                )
            )
        return new, exclusions


class CampaignRunner:
    """Runs the fan-outs of running campaigns and completes finished ones, until stopped."""

    def __init__(
        self,
        db: Database,
        fanout: FanOut,
        *,
        clock: Callable[[], datetime],
        poll_interval: float = 1.0,
    ) -> None:
        self._db = db
        self._fanout = fanout
        self._clock = clock
        self._poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except Exception:  # the database is unavailable: keep running, try again
                log.exception("campaign runner pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)
            self._wake.clear()

    async def run_once(self) -> None:
        """Advance every unfinished fan-out to its end, then complete what is finished."""
        async with self._db.read() as conn:
            unfinished = await repo.unfinished_fanouts(conn)
        for campaign_id in unfinished:
            await self._fanout.run(campaign_id, stop=self._stopping)
        async with self._db.read() as conn:
            finished = await repo.finished_fanouts(conn)
            idle = [c for c in finished if not await repo.has_pending_messages(conn, c)]
        for campaign_id in idle:
            now = self._clock()
            async with self._db.transaction() as conn:
                if not await repo.has_pending_messages(conn, campaign_id):
                    await repo.set_fields(
                        conn,
                        campaign_id,
                        only_if_status=CampaignStatus.RUNNING,
                        status=CampaignStatus.COMPLETED,
                        completed_at=now,
                        updated_at=now,
                    )
