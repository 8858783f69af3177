"""Consent: who may receive messages from which sender, every change audited.

An opt-out is kept per (sender, number): STOP to one sender does not silence another. The
current state is the ``suppressions`` table, checked when a message is accepted, when a
campaign fans out, and again when a worker claims it; ``consent_events`` records every change
with its source (``admin`` through the API, ``keyword`` from the number itself, ``provider``
from a provider's "recipient opted out" error) and who made it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson

from smsbridge.domain.phones import normalize_phone
from smsbridge.domain.spreadsheets import inert_cell
from smsbridge.domain.surfaces import check_sender
from smsbridge.errors import InvalidInput
from smsbridge.storage import consent as repo
from smsbridge.storage.database import Database

EXPORT_PAGE = 1000


class ConsentStatus(StrEnum):
    OPTED_OUT = "opted_out"
    OPTED_IN = "opted_in"


class ConsentService:
    def __init__(
        self, db: Database, *, clock: Callable[[], datetime], default_region: str | None = None
    ) -> None:
        self._db = db
        self._clock = clock
        self._region = default_region

    def _phone(self, raw: str) -> str:
        return normalize_phone(raw, "phone", self._region)

    async def status(self, phone: str) -> dict[str, Any]:
        number = self._phone(phone)
        async with self._db.read() as conn:
            current = await repo.of_phone(conn, number)
            events = await repo.history(conn, number)
        return {
            "phone": number,
            "opted_out_of": [
                {
                    "sender": row["sender"],
                    "source": row["source"],
                    "keyword": row["keyword"],
                    "since": row["created_at"],
                }
                for row in current
            ],
            "history": [
                {
                    "at": e["at"],
                    "sender": e["sender"],
                    "action": e["action"],
                    "source": e["source"],
                    "keyword": e["keyword"],
                    "actor": e["actor"],
                    "note": e["note"],
                }
                for e in events
            ],
        }

    async def change(
        self,
        phone: str,
        *,
        sender: str,
        status: ConsentStatus,
        source: str,
        actor: str | None,
        keyword: str | None = None,
        note: str | None = None,
    ) -> bool:
        """Opt ``phone`` out of (or back in to) ``sender``; audited. Returns whether the state
        changed (a repeated opt-out changes nothing but is still recorded)."""
        number = self._phone(phone)
        if not isinstance(sender, str) or (problem := check_sender(sender)) is not None:
            raise InvalidInput.one("sender", problem or "is required")
        now = self._clock()
        async with self._db.transaction() as conn:
            if status is ConsentStatus.OPTED_OUT:
                changed = await repo.suppress(
                    conn, sender=sender, phone=number, source=source, keyword=keyword, at=now
                )
            else:
                changed = await repo.lift(conn, sender=sender, phone=number)
            await repo.record(
                conn,
                {
                    "phone": number,
                    "sender": sender,
                    "action": status.value,
                    "source": source,
                    "keyword": keyword,
                    "actor": actor,
                    "note": note,
                    "at": now,
                },
            )
        return changed

    async def export(self, kind: str) -> AsyncIterator[bytes]:
        """Every current opt-out, streamed as NDJSON or CSV."""
        if kind not in ("ndjson", "csv"):
            raise InvalidInput.one("format", "must be ndjson or csv")
        if kind == "csv":
            yield b"sender,phone,source,keyword,since\r\n"
        after: tuple[str, str] | None = None
        while True:
            async with self._db.read() as conn:
                rows = await repo.opted_out_page(conn, after=after, limit=EXPORT_PAGE)
            if not rows:
                return
            yield _encode(rows, kind)
            if len(rows) < EXPORT_PAGE:
                return
            after = (rows[-1]["sender"], rows[-1]["phone"])


def _encode(rows: Any, kind: str) -> bytes:
    if kind == "ndjson":
        return b"".join(
            orjson.dumps(
                {
                    "sender": r["sender"],
                    "phone": r["phone"],
                    "status": "opted_out",
                    "source": r["source"],
                    "keyword": r["keyword"],
                    "since": r["created_at"],
                }
            )
            + b"\n"
            for r in rows
        )
    out = io.StringIO()
    writer = csv.writer(out)
    for r in rows:
        writer.writerow(
            [
                inert_cell(r["sender"]),
                inert_cell(r["phone"]),
                r["source"],
                inert_cell(r["keyword"] or ""),
                r["created_at"].isoformat(),
            ]
        )
    return out.getvalue().encode()
