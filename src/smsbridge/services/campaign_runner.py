"""The campaign runner: fan-outs of running campaigns in the background, until stopped.

It advances every unfinished fan-out (:class:`smsbridge.services.fanout.FanOut`) and marks
campaigns ``completed`` once their fan-out is done and nothing of them is pending. One campaign
that cannot fan out (a row stored before today's checks, a bug) never holds up the others: the
failure is logged, naming the campaign, and that campaign alone is retried later, each delay
twice the last (from twice the poll interval up to :data:`MAX_RETRY_DELAY`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from smsbridge.domain.campaigns import CampaignStatus
from smsbridge.errors import SmsbridgeError
from smsbridge.services.fanout import FanOut
from smsbridge.storage import campaigns as repo
from smsbridge.storage import event_tail
from smsbridge.storage.database import Database

log = logging.getLogger("smsbridge.campaigns")

MAX_RETRY_DELAY = 300.0
"""Seconds, at most, between two tries of a campaign whose fan-out keeps failing."""


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
        self._failing: dict[str, tuple[int, datetime]] = {}
        """Campaign id → failures in a row and when to try it again (this process only)."""

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def _failed(self, campaign_id: str, exc: Exception) -> None:
        failures = self._failing.get(campaign_id, (0, None))[0] + 1
        delay = min(MAX_RETRY_DELAY, self._poll_interval * 2.0 ** min(failures, 30))
        self._failing[campaign_id] = (failures, self._clock() + timedelta(seconds=delay))
        if isinstance(exc, SmsbridgeError):  # a stored value today's checks refuse: no trace
            log.error(
                "campaign %s cannot fan out (%s); retrying in %.0f s",
                campaign_id,
                exc.message,
                delay,
                extra={"campaign_id": campaign_id},
            )
        else:
            log.error(
                "campaign %s: fan-out failed (%s, %d in a row); retrying in %.0f s",
                campaign_id,
                type(exc).__name__,
                failures,
                delay,
                exc_info=exc,
                extra={"campaign_id": campaign_id},
            )

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
            failing = self._failing.get(campaign_id)
            if failing is not None and self._clock() < failing[1]:
                continue  # failed recently: its turn comes after the delay
            try:
                await self._fanout.run(campaign_id, stop=self._stopping)
            except Exception as exc:  # this campaign only: the others go on
                self._failed(campaign_id, exc)
            else:
                self._failing.pop(campaign_id, None)
        async with self._db.read() as conn:
            finished = await repo.finished_fanouts(conn)
            idle = [c for c in finished if not await repo.has_pending_messages(conn, c)]
        for campaign_id in idle:
            try:
                await self._complete(campaign_id)
            except Exception:
                log.exception(
                    "campaign %s could not be marked completed; next pass",
                    campaign_id,
                    extra={"campaign_id": campaign_id},
                )

    async def _complete(self, campaign_id: str) -> None:
        now = self._clock()
        async with self._db.transaction() as conn:
            if not await repo.has_pending_messages(conn, campaign_id) and await repo.set_fields(
                conn,
                campaign_id,
                only_if_status=CampaignStatus.RUNNING,
                status=CampaignStatus.COMPLETED,
                completed_at=now,
                updated_at=now,
            ):  # the campaign.completed event, committed with the change
                await event_tail.record_app_event(conn, "campaign.completed", campaign_id, now)
