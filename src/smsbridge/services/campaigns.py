"""Campaign use cases: create, read with live counts, launch (idempotent), cancel."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.domain.campaigns import CampaignStatus, parse_campaign
from smsbridge.domain.ids import new_id
from smsbridge.domain.messages import PENDING, MessageStatus
from smsbridge.domain.personalize import Personalizer
from smsbridge.errors import Conflict, InvalidInput, NotFound, phrase
from smsbridge.services.cpu_lane import CpuLane
from smsbridge.services.message_rows import IDEMPOTENCY_TTL, Idempotency
from smsbridge.services.pagination import Page, check_limit, decode_cursor, page_of
from smsbridge.storage import campaigns as repo
from smsbridge.storage import messages as messages_repo
from smsbridge.storage import surfaces as surfaces_repo
from smsbridge.storage.database import Database

CANCEL_BATCH = 1000


def campaign_view(
    row: Mapping[str, Any],
    statuses: Mapping[str, int] | None = None,
    reasons: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": row["id"],
        "name": row["name"],
        "surface_id": row["surface_id"],
        "body": row["body"],
        "variables": row["variables"],
        "audience": row["audience"],
        "send_at": row["send_at"],
        "throttle_per_second": row["throttle_per_second"],
        "status": row["status"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "launched_at": row["launched_at"],
        "completed_at": row["completed_at"],
        "cancelled_at": row["cancelled_at"],
        "fanout_done": bool(row["fanout_done"]),
    }
    if statuses is not None:
        counts = {status.value: int(statuses.get(status.value, 0)) for status in MessageStatus}
        counts["targeted"] = int(row["targeted"])
        counts["excluded"] = int(row["excluded"])
        counts["pending"] = sum(counts[s.value] for s in PENDING)
        view["counts"] = counts
        view["excluded_reasons"] = dict(reasons or {})
    return view


BIG_FANOUT = 100_000
"""Recipients from which a running fan-out's counts by status may be reused a moment."""
COUNTS_REUSE_SECONDS = 1.0
"""How old those counts may be: counting a million messages by status takes a tenth to a
quarter of a second of database time, and clients poll a running campaign (every 0.2 s in the
fan-out benchmark): counted at every poll, the counting took half of PostgreSQL's CPU away
from the fan-out it was reporting on."""


class CampaignService:
    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], datetime],
        personalizer: Personalizer,
        on_launch: Callable[[], None] | None = None,
        cpu: CpuLane | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._personalizer = personalizer
        self._on_launch = on_launch
        self._cpu = cpu or CpuLane("campaigns")
        self._recent_counts: dict[str, tuple[float, dict[str, int]]] = {}
        """Running big fan-outs: when their statuses were last counted, and the counts."""

    async def create(self, data: Mapping[str, Any]) -> dict[str, Any]:
        draft = parse_campaign(data)
        self._personalizer.check_length(draft.body)
        if not self._personalizer.is_static(draft.body):  # compiling may take a while
            await self._cpu.run(self._personalizer.check, draft.body)
        now = self._clock()
        row = {
            "id": new_id("cmp"),
            "name": draft.name,
            "surface_id": draft.surface_id,
            "body": draft.body,
            "variables": draft.variables,
            "audience": draft.audience.document(),
            "send_at": draft.send_at,
            "throttle_per_second": draft.throttle_per_second,
            "status": CampaignStatus.DRAFT.value,
            "fanout_cursor": None,
            "fanout_done": False,
            "targeted": 0,
            "excluded": 0,
            "created_at": now,
            "updated_at": now,
            "launched_at": None,
            "completed_at": None,
            "cancelled_at": None,
        }
        async with self._db.transaction() as conn:
            if await surfaces_repo.get_surface(conn, draft.surface_id) is None:
                raise InvalidInput.one(
                    "surface_id", phrase("no surface %(id)s", id=draft.surface_id)
                )
            await repo.insert_campaign(conn, row)
        return campaign_view(row, {}, {})

    async def get(self, campaign_id: str) -> dict[str, Any]:
        async with self._db.read() as conn:
            row = await repo.get_campaign(conn, campaign_id)
            if row is None:
                raise NotFound(f"no campaign {campaign_id}")
            statuses = await self._status_counts(conn, row)
            reasons = await repo.exclusion_counts(conn, campaign_id)
        return campaign_view(row, statuses, reasons)

    async def _status_counts(self, conn: AsyncConnection, row: Mapping[str, Any]) -> dict[str, int]:
        """The campaign's messages by status. While a big fan-out runs, counts up to
        :data:`COUNTS_REUSE_SECONDS` old are reused (``targeted`` and ``excluded``, from the
        campaign's row, are always current); otherwise always counted."""
        campaign_id = row["id"]
        fanning_out = row["status"] == CampaignStatus.RUNNING and not row["fanout_done"]
        if not fanning_out or int(row["targeted"]) < BIG_FANOUT:
            self._recent_counts.pop(campaign_id, None)
            return await repo.status_counts(conn, campaign_id)
        now = time.monotonic()
        recent = self._recent_counts.get(campaign_id)
        if recent is not None and now - recent[0] < COUNTS_REUSE_SECONDS:
            return recent[1]
        statuses = await repo.status_counts(conn, campaign_id)
        self._recent_counts[campaign_id] = (now, statuses)
        return statuses

    async def list(
        self, *, limit: int = 50, cursor: str | None = None, status: str | None = None
    ) -> Page[dict[str, Any]]:
        limit = check_limit(limit)
        if status is not None and status not in CampaignStatus.__members__.values():
            raise InvalidInput.one(
                "status", f"must be one of: {', '.join(s.value for s in CampaignStatus)}"
            )
        async with self._db.read() as conn:
            rows = await repo.list_campaigns(
                conn, limit=limit + 1, after=decode_cursor(cursor), status=status
            )
        return page_of(rows, limit, last_id=lambda r: str(r["id"]), view=campaign_view)

    async def launch(self, campaign_id: str) -> dict[str, Any]:
        """Start the fan-out. Idempotent: launching a running or completed campaign changes
        nothing and answers its current state."""
        now = self._clock()
        async with self._db.transaction() as conn:
            row = await repo.get_campaign(conn, campaign_id, for_update=True)
            if row is None:
                raise NotFound(f"no campaign {campaign_id}")
            if row["status"] == CampaignStatus.CANCELLED:
                raise Conflict(phrase("a cancelled campaign cannot be launched"))
            if row["status"] == CampaignStatus.DRAFT:
                await repo.set_fields(
                    conn,
                    campaign_id,
                    only_if_status=CampaignStatus.DRAFT,
                    status=CampaignStatus.RUNNING,
                    launched_at=now,
                    updated_at=now,
                )
        if self._on_launch is not None:
            self._on_launch()
        return await self.get(campaign_id)

    async def launch_once(
        self, campaign_id: str, *, idempotency: Idempotency | None = None
    ) -> tuple[int, dict[str, Any]]:
        """:meth:`launch` honouring an ``Idempotency-Key``: the first answer is replayed."""
        if idempotency is None:
            return 202, await self.launch(campaign_id)
        since = self._clock() - IDEMPOTENCY_TTL
        async with self._db.read() as conn:
            found = await messages_repo.find_idempotent(
                conn, idempotency.scope, idempotency.key, since
            )
        if found is not None:
            return int(found["status_code"]), dict(found["response"])
        view = await self.launch(campaign_id)
        now = self._clock()
        try:
            async with self._db.transaction() as conn:
                await messages_repo.save_idempotent(
                    conn,
                    scope=idempotency.scope,
                    key=idempotency.key,
                    request_hash=idempotency.request_hash,
                    status_code=202,
                    response=orjson.loads(orjson.dumps(view)),
                    now=now,
                    expired_before=now - IDEMPOTENCY_TTL,
                )
        except Conflict:
            pass  # a concurrent twin recorded its answer first; launching twice is harmless
        return 202, view

    async def cancel(self, campaign_id: str) -> dict[str, Any]:
        """Stop the fan-out and cancel every message not yet in a worker's hands (those
        finish). Cancelling again finishes the job; a completed campaign cannot be."""
        now = self._clock()
        async with self._db.transaction() as conn:
            row = await repo.get_campaign(conn, campaign_id, for_update=True)
            if row is None:
                raise NotFound(f"no campaign {campaign_id}")
            if row["status"] == CampaignStatus.COMPLETED:
                raise Conflict(phrase("the campaign is already completed"))
            if row["status"] != CampaignStatus.CANCELLED:
                await repo.set_fields(
                    conn,
                    campaign_id,
                    status=CampaignStatus.CANCELLED,
                    cancelled_at=now,
                    updated_at=now,
                )
        while True:
            async with self._db.transaction() as conn:
                taken = await repo.cancel_pending_batch(
                    conn, campaign_id, self._clock(), limit=CANCEL_BATCH
                )
            if not taken:
                break
        return await self.get(campaign_id)

    async def delete(self, campaign_id: str) -> None:
        """Delete a draft. A launched campaign is kept, with its messages, for its report
        (cancel it to stop it)."""
        async with self._db.transaction() as conn:
            row = await repo.get_campaign(conn, campaign_id, for_update=True)
            if row is None:
                raise NotFound(f"no campaign {campaign_id}")
            if row["status"] != CampaignStatus.DRAFT:
                raise Conflict(
                    phrase(
                        "only a draft can be deleted (a launched campaign is kept with its "
                        "messages for its report; cancel it to stop it); this one is %(status)s",
                        status=row["status"],
                    )
                )
            await repo.delete_campaign(conn, campaign_id)

    async def exclusions(
        self, campaign_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> Page[dict[str, Any]]:
        limit = check_limit(limit)
        async with self._db.read() as conn:
            if await repo.get_campaign(conn, campaign_id) is None:
                raise NotFound(f"no campaign {campaign_id}")
            rows = await repo.list_exclusions(
                conn, campaign_id, limit=limit + 1, after=decode_cursor(cursor, prefixed=False)
            )
        return page_of(
            rows,
            limit,
            last_id=lambda r: str(r["profile_id"]),
            view=lambda r: {
                "profile_id": r["profile_id"],
                "phone": r["phone"],
                "reason": r["reason"],
                "detail": r["detail"],
            },
        )
