"""Campaign and surface reports: every number from SQL aggregates, and the per-message CSV.

Definitions (the same for both reports):

* ``sent``: messages the provider accepted (``sent``, ``delivered`` or ``undelivered``);
  ``delivered``; ``bounced``: ``undelivered``; ``errors``: ``failed`` (with reasons);
* ``targeted``: messages created plus audience members excluded; ``excluded`` by reason;
* ``clicks``: human clicks on the messages' links (link-preview bots are counted apart in
  ``bot_clicks``); ``unique_clicks``: messages clicked at least once by a human;
* ``opt_outs``: numbers that opted out of the sender after their message was created;
* ``segments``: segments of the messages sent;
* ``by_credential``: per credential id, the messages it ``sent`` (as above) and those that
  ``failed`` on it, each counted on the credential of its last attempt (with failover, the
  fallback that sent it or the last one tried);
* rates: delivery = delivered / sent, bounce = bounced / sent, error = errors / (sent +
  errors), click = unique clicks / sent (0 when the denominator is 0);
* ``timeline``: sent, delivered and clicks per bucket (minute up to 3 hours, hour up to 3 days,
  day beyond), by the time each happened.

A surface report covers the surface's messages created in ``[from, to)`` (default: the last
7 days).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from smsbridge.domain.messages import MessageStatus
from smsbridge.domain.spreadsheets import inert_cell
from smsbridge.domain.surfaces import parse_surface
from smsbridge.errors import InvalidInput, NotFound
from smsbridge.storage import campaigns as campaigns_repo
from smsbridge.storage import reports as repo
from smsbridge.storage import surfaces as surfaces_repo
from smsbridge.storage.database import Database

MAX_WINDOW = timedelta(days=366)
DEFAULT_WINDOW = timedelta(days=7)
MAX_FILLED_BUCKETS = 1500
_STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
ACCEPTED = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.UNDELIVERED)


def bucket_for(start: datetime, end: datetime) -> repo.Bucket:
    span = end - start
    if span <= timedelta(hours=3):
        return "minute"
    if span <= timedelta(days=3):
        return "hour"
    return "day"


def _floor(moment: datetime, bucket: repo.Bucket) -> datetime:
    moment = moment.astimezone(UTC).replace(second=0, microsecond=0)
    if bucket in ("hour", "day"):
        moment = moment.replace(minute=0)
    if bucket == "day":
        moment = moment.replace(hour=0)
    return moment


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


class ReportService:
    def __init__(self, db: Database, *, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._clock = clock

    async def campaign(self, campaign_id: str) -> dict[str, Any]:
        async with self._db.read() as conn:
            campaign = await campaigns_repo.get_campaign(conn, campaign_id)
            if campaign is None:
                raise NotFound(f"no campaign {campaign_id}")
            surface = await surfaces_repo.get_surface(conn, campaign["surface_id"])
            start = campaign["launched_at"] or campaign["created_at"]
            end = campaign["completed_at"] or campaign["cancelled_at"] or self._clock()
            end = max(end, start + timedelta(minutes=1))
            report = await self._report(
                conn,
                repo.Scope(campaign_id=campaign_id),
                sender=parse_surface(surface.document).sender if surface else "",
                start=start,
                end=end,
            )
        return {"campaign_id": campaign_id, "status": campaign["status"], **report}

    async def surface(
        self, surface_id: str, *, start: datetime | None, end: datetime | None
    ) -> dict[str, Any]:
        end = end or self._clock()
        start = start or end - DEFAULT_WINDOW
        for name, value in (("from", start), ("to", end)):
            if value.tzinfo is None:
                raise InvalidInput.one(name, "must carry a time zone, e.g. 2026-05-01T00:00:00Z")
        if start >= end:
            raise InvalidInput.one("from", "must be before `to`")
        if end - start > MAX_WINDOW:
            raise InvalidInput.one("from", "the window is limited to 366 days")
        async with self._db.read() as conn:
            surface = await surfaces_repo.get_surface(conn, surface_id)
            if surface is None:
                raise NotFound(f"no surface {surface_id}")
            report = await self._report(
                conn,
                repo.Scope(surface_id=surface_id, start=start, end=end),
                sender=parse_surface(surface.document).sender,
                start=start,
                end=end,
            )
        return {"surface_id": surface_id, "from": start, "to": end, **report}

    async def _report(
        self, conn: Any, scope: repo.Scope, *, sender: str, start: datetime, end: datetime
    ) -> dict[str, Any]:
        bucket = bucket_for(start, end)
        totals = await repo.message_totals(conn, scope, bucket)
        reasons = await repo.error_reasons(conn, scope)
        clicked = await repo.click_totals(conn, scope, bucket)
        excluded = await repo.exclusions(conn, scope)
        opted_out = await repo.opt_outs(conn, scope, sender)
        by_credential = await repo.credential_totals(conn, scope)
        status = totals.by_status
        sent = sum(status.get(s.value, 0) for s in ACCEPTED)
        delivered = status.get(MessageStatus.DELIVERED.value, 0)
        bounced = status.get(MessageStatus.UNDELIVERED.value, 0)
        errors = status.get(MessageStatus.FAILED.value, 0)
        pending = sum(
            status.get(s.value, 0)
            for s in (MessageStatus.SCHEDULED, MessageStatus.QUEUED, MessageStatus.SENDING)
        )
        excluded_total = sum(excluded.values())
        return {
            "targeted": sum(status.values()) + excluded_total,
            "excluded": excluded_total,
            "excluded_reasons": excluded,
            "sent": sent,
            "delivered": delivered,
            "bounced": bounced,
            "errors": errors,
            "error_reasons": reasons,
            "pending": pending,
            "suppressed": status.get(MessageStatus.SUPPRESSED.value, 0),
            "cancelled": status.get(MessageStatus.CANCELLED.value, 0),
            "clicks": clicked.human,
            "unique_clicks": clicked.unique_messages,
            "bot_clicks": clicked.bots,
            "opt_outs": opted_out,
            "segments": sum(totals.segments_by_status.get(s.value, 0) for s in ACCEPTED),
            "by_credential": {
                credential_id: {"sent": counts.sent, "failed": counts.failed}
                for credential_id, counts in sorted(by_credential.items())
            },
            "rates": {
                "delivery": _rate(delivered, sent),
                "bounce": _rate(bounced, sent),
                "error": _rate(errors, sent + errors),
                "click": _rate(clicked.unique_messages, sent),
            },
            "bucket": bucket,
            "timeline": _timeline(
                bucket,
                start,
                end,
                totals.sent_timeline,
                totals.delivered_timeline,
                clicked.timeline,
            ),
        }

    async def csv_rows(self, scope: repo.Scope) -> AsyncIterator[str]:
        """The per-message CSV, streamed page by page (header first)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(repo.CSV_COLUMNS)
        yield out.getvalue()
        async for page in repo.message_rows(self._db, scope):
            out.seek(0)
            out.truncate()
            for row in page:
                writer.writerow(_csv_value(v) for v in row)
            yield out.getvalue()

    async def campaign_scope(self, campaign_id: str) -> repo.Scope:
        async with self._db.read() as conn:
            if await campaigns_repo.get_campaign(conn, campaign_id) is None:
                raise NotFound(f"no campaign {campaign_id}")
        return repo.Scope(campaign_id=campaign_id)

    async def surface_scope(
        self, surface_id: str, *, start: datetime | None, end: datetime | None
    ) -> repo.Scope:
        end = end or self._clock()
        start = start or end - DEFAULT_WINDOW
        if start >= end:
            raise InvalidInput.one("from", "must be before `to`")
        async with self._db.read() as conn:
            if await surfaces_repo.get_surface(conn, surface_id) is None:
                raise NotFound(f"no surface {surface_id}")
        return repo.Scope(surface_id=surface_id, start=start, end=end)


def _csv_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, str):
        return inert_cell(value)  # provider errors and ids come from outside
    return "" if value is None else value


def _timeline(
    bucket: repo.Bucket,
    start: datetime,
    end: datetime,
    sent: dict[datetime, int],
    delivered: dict[datetime, int],
    clicks: dict[datetime, int],
) -> list[dict[str, Any]]:
    """One entry per bucket: every bucket of the window when there are few enough (a chart
    wants its gaps), else only the buckets where something happened."""
    moments = set(sent) | set(delivered) | set(clicks)
    # ``end`` is excluded: a window ending at midnight has no bucket for the day it ends on
    first, last = _floor(start, bucket), _floor(max(start, end - timedelta(microseconds=1)), bucket)
    if moments:
        first, last = min(first, min(moments)), max(last, max(moments))
    step = _STEP[bucket]
    if (last - first) / step <= MAX_FILLED_BUCKETS:
        moment = first
        while moment <= last:
            moments.add(moment)
            moment += step
    return [
        {
            "at": moment,
            "sent": sent.get(moment, 0),
            "delivered": delivered.get(moment, 0),
            "clicks": clicks.get(moment, 0),
        }
        for moment in sorted(moments)
    ]
