"""The event tailer: turns what the ordered logs recorded into deliveries.

Each round, in one transaction: lock the cursors no other tailer holds, read each source past
its cursor (and the gaps below it, :mod:`smsbridge.domain.events_cursor`), write one delivery
per event and subscribed endpoint (and per message callback URL), and move the cursors. The
deliveries are thus committed exactly when the cursor passes their events: a crash before the
commit leaves both as they were, so no event is lost or emitted twice. The hot paths write
nothing more than they did: their logs are the source.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.domain.events import (
    STATUS_EVENTS,
    DeliveryStatus,
    EventType,
    payload,
    rfc3339,
    subscribes,
)
from smsbridge.domain.events_cursor import advance
from smsbridge.domain.ids import new_ids
from smsbridge.storage import event_tail as tail
from smsbridge.storage import events as store
from smsbridge.storage.database import Database

log = logging.getLogger("smsbridge.events")

Endpoint = Mapping[str, Any]


class EventTailer:
    def __init__(
        self, db: Database, *, clock: Callable[[], datetime], batch_size: int = 1000
    ) -> None:
        self._db = db
        self._clock = clock
        self._batch = batch_size
        self._ready = False
        self._newest_seen: dict[str, int] = {}
        """Each log's newest id at the previous round (PostgreSQL, while nobody listens)."""

    async def run_once(self) -> int:
        """One round; returns how many log rows it read (``batch_size`` per source at most:
        a full batch means more are waiting)."""
        if not self._ready:
            async with self._db.transaction() as conn:
                await tail.ensure_cursors(conn)
            self._ready = True
        now = self._clock()
        async with self._db.transaction() as conn:
            held = await tail.lock_cursors(conn)
            if not held:
                return 0
            endpoints = await store.enabled_endpoints(conn)
            callbacks = "message_events" in held and await tail.any_callbacks(conn)
            rows: list[dict[str, Any]] = []
            most = 0
            # a round's deliveries stay bounded however many endpoints listen
            batch = max(50, self._batch // max(1, len(endpoints)))
            for source, (position, gaps) in held.items():
                nobody = not endpoints and not (source == "message_events" and callbacks)
                if nobody:
                    # Nobody listens: skip to the end (nothing below it will be wanted), a
                    # cheap round that leaves the dispatcher idle. SQLite commits in id order:
                    # straight to the newest id. On PostgreSQL a lower id may still commit
                    # (a message with its callback_url, say): only to the newest id of the
                    # previous round, which had a whole round to commit.
                    end = await tail.newest_id(conn, source)
                    if conn.dialect.name != "sqlite":
                        end, self._newest_seen[source] = (
                            min(end, self._newest_seen.get(source, position)),
                            end,
                        )
                    if end > position or (gaps and end >= position):
                        await tail.save_cursor(conn, source, end, [])
                    continue
                self._newest_seen.pop(source, None)
                read = await tail.read_after(conn, source, position, gaps, batch)
                most = max(most, self._batch if len(read) >= batch else len(read))
                rows.extend(await self._deliveries(conn, source, read, endpoints, now))
                moved, kept, given_up = advance(
                    position, gaps, [int(r["id"]) for r in read], now.timestamp()
                )
                if given_up:
                    log.warning(
                        "%s: %d ids never committed; no longer waited for", source, given_up
                    )
                if moved != position or kept != gaps:
                    await tail.save_cursor(conn, source, moved, kept)
            await store.insert_deliveries(conn, rows)
        return most

    async def _deliveries(
        self,
        conn: AsyncConnection,
        source: str,
        read: Sequence[Mapping[str, Any]],
        endpoints: Sequence[Endpoint],
        now: datetime,
    ) -> list[dict[str, Any]]:
        events = await _events(conn, source, read)
        if not events:
            return []
        ids = new_ids("evt", len(events))
        rows: list[dict[str, Any]] = []
        for event_id, (kind, at, data, ordering, callback) in zip(ids, events, strict=True):
            body = orjson.dumps(payload(kind, at, data)).decode()
            base = {
                "event_id": event_id,
                "type": kind,
                "body": body,
                "ordering_key": ordering,
                "status": DeliveryStatus.PENDING.value,
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": now,
                "lease_token": 0,
            }
            for endpoint in endpoints:
                if at >= endpoint["created_at"] and subscribes(endpoint["event_types"], kind):
                    rows.append({**base, "endpoint_id": endpoint["id"], "target_url": None})
            if callback:
                rows.append({**base, "endpoint_id": None, "target_url": callback})
        return rows


Event = tuple[str, datetime, dict[str, Any], str | None, str | None]
"""(type, when, data, ordering key, the message's callback URL)."""


async def _events(
    conn: AsyncConnection, source: str, read: Sequence[Mapping[str, Any]]
) -> list[Event]:
    if source == "message_events":
        return await _message_events(conn, read)
    if source == "consent_events":
        return [
            (
                EventType.CONSENT_CHANGED.value,
                r["at"],
                {
                    "phone": r["phone"],
                    "sender": r["sender"],
                    "action": r["action"],
                    "source": r["source"],
                    "keyword": r["keyword"],
                    "note": r["note"],
                },
                None,
                None,
            )
            for r in read
        ]
    if source == "clicks":
        urls = await tail.link_urls(conn, [r["code"] for r in read])
        return [
            (
                EventType.LINK_CLICKED.value,
                r["at"],
                {
                    "message_id": r["message_id"],
                    "campaign_id": r["campaign_id"],
                    "surface_id": r["surface_id"],
                    "code": r["code"],
                    "url": urls.get(r["code"]),
                    "user_agent": r["user_agent"],
                    "is_bot": bool(r["is_bot"]),
                },
                None,
                None,
            )
            for r in read
        ]
    return await _app_events(conn, read)


async def _message_events(conn: AsyncConnection, read: Sequence[Mapping[str, Any]]) -> list[Event]:
    wanted = [r for r in read if r["type"] in STATUS_EVENTS]
    found = await tail.message_details(conn, [r["message_id"] for r in wanted])
    events: list[Event] = []
    for r in wanted:
        message = found.get(r["message_id"])
        if message is None:
            continue
        detail = r["detail"] or {}
        status = "failed" if r["type"] == "outcome_unknown" else r["type"]
        data: dict[str, Any] = {
            "message_id": r["message_id"],
            "status": status,
            "surface_id": message["surface_id"],
            "campaign_id": message["campaign_id"],
            "to": message["to_number"],
            "from": message["from_number"],
            "segments": message["segments"],
            "provider_message_id": detail.get("provider_message_id")
            or message["provider_message_id"],
        }
        for key in ("reason", "error"):
            if detail.get(key):
                data[key] = detail[key]
        kind = STATUS_EVENTS[r["type"]].value
        events.append((kind, r["at"], data, r["message_id"], message["callback_url"]))
    return events


async def _app_events(conn: AsyncConnection, read: Sequence[Mapping[str, Any]]) -> list[Event]:
    received = EventType.MESSAGE_RECEIVED.value
    completed = EventType.CAMPAIGN_COMPLETED.value
    inbound = await tail.inbound_details(
        conn, [r["subject_id"] for r in read if r["type"] == received]
    )
    finished = await tail.campaign_details(
        conn, [r["subject_id"] for r in read if r["type"] == completed]
    )
    events: list[Event] = []
    for r in read:
        if r["type"] == received and (m := inbound.get(r["subject_id"])) is not None:
            data = {
                "id": m["id"],
                "surface_id": m["surface_id"],
                "from": m["from_number"],
                "to": m["to_number"],
                "text": m["text"],
                "keyword": m["keyword"],
                "provider_message_id": m["provider_message_id"],
            }
            events.append((received, r["at"], data, None, None))
        elif r["type"] == completed and (c := finished.get(r["subject_id"])) is not None:
            data = {
                "campaign_id": c["id"],
                "name": c["name"],
                "surface_id": c["surface_id"],
                "targeted": c["targeted"],
                "excluded": c["excluded"],
                "counts": c["counts"],
                "completed_at": rfc3339(c["completed_at"]) if c["completed_at"] else None,
            }
            events.append((completed, r["at"], data, None, None))
    return events
