"""Inbound messages (``POST /hooks/inbound/{token}``) and the keyword engine.

Each message from a phone is stored once (a provider id seen again is a replay and has no
effect), then matched against the surface's keyword sets:

* opt-out (STOP…): the number is suppressed for the surface's sender (source ``keyword``),
  then the opt-out reply is sent;
* opt-in (START…): the suppression is lifted and the opt-in reply sent — or, with
  ``double_opt_in``, a confirmation is asked first and the opt-in counts once the number
  answers YES;
* help (HELP…): the help reply;
* anything else stays an inbound message for people to read.

Replies are queued as transactional messages in the same short transaction and sent by the
delivery engine: the webhook never waits for a provider.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from smsbridge.domain.ids import new_id
from smsbridge.domain.keywords import CONFIRM_WORD, Keyword, classify, normalized
from smsbridge.domain.phones import normalize_phone
from smsbridge.domain.surfaces import Surface, parse_surface
from smsbridge.domain.webhooks import InboundItem, WebhookRequest, read_body, read_inbound
from smsbridge.errors import InvalidInput
from smsbridge.services.credentials import CredentialService
from smsbridge.services.group_commit import GroupCommit
from smsbridge.services.message_rows import consent_reply
from smsbridge.services.webhooks import WebhookTargets, verify_signature
from smsbridge.storage import consent as consent_repo
from smsbridge.storage import inbound as repo
from smsbridge.storage import messages as messages_repo
from smsbridge.storage.database import Database
from smsbridge.storage.surfaces import SurfaceRow

log = logging.getLogger("smsbridge.inbound")
MAX_STORED_TEXT = 2000


_Inbound = tuple[SurfaceRow, Sequence[InboundItem], int]
"""One webhook's inbound messages: its surface, the items read, how many could not be."""


class InboundService:
    def __init__(
        self,
        db: Database,
        credentials: CredentialService,
        *,
        clock: Callable[[], datetime],
        default_region: str | None = None,
        on_enqueued: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._credentials = credentials
        self._clock = clock
        self._region = default_region
        self._on_enqueued = on_enqueued
        self._targets = WebhookTargets(db, credentials)
        self._group: GroupCommit[_Inbound, tuple[Counter[str], int]] = GroupCommit(
            self._apply, name="inbound", max_weight=2000
        )

    def group_stats(self) -> tuple[int, int]:
        """(transactions, webhooks) the group commit has applied so far."""
        return self._group.groups, self._group.units

    async def close(self) -> None:
        await self._group.close()

    async def receive(self, token: str, request: WebhookRequest) -> dict[str, Any]:
        row, credential = await self._targets.get(token, kind="inbound")
        assert credential.inbound is not None  # checked by webhook_target
        verify_signature(credential, request, self._clock())
        document = read_body(request.body, request.content_type)
        items, notes = read_inbound(document, credential.inbound)
        counts, replies = await self._group.submit(
            (row, items, len(notes)), weight=max(1, len(items))
        )
        for note in notes:
            log.info("surface %s: inbound item skipped: %s", row.id, note)
        if replies and self._on_enqueued is not None:
            self._on_enqueued()
        return {"received": len(items) + len(notes), "replies": replies, **counts}

    async def _apply(self, units: Sequence[_Inbound]) -> list[tuple[Counter[str], int]]:
        """The inbound messages of concurrent webhooks, in arrival order, in one transaction:
        each webhook is answered once its consent changes are committed (a STOP answered
        2xx is in force)."""
        now = self._clock()
        async with self._db.transaction(urgent=True) as conn:
            return [await self._store(conn, *unit, now) for unit in units]

    async def _store(
        self,
        conn: AsyncConnection,
        row: SurfaceRow,
        items: Sequence[InboundItem],
        skipped: int,
        now: datetime,
    ) -> tuple[Counter[str], int]:
        surface = parse_surface(row.document)
        counts: Counter[str] = Counter(ignored=skipped)
        replies = 0
        for item in items:
            phone = self._phone(item.from_number)
            if phone is None:
                counts["ignored"] += 1
                log.info(
                    "surface %s: inbound item skipped: sender %r is not a phone number",
                    row.id,
                    item.from_number,
                )
                continue
            keyword = classify(item.text, surface.keywords)
            stored = await repo.insert(
                conn,
                {
                    "id": new_id("inb"),
                    "surface_id": row.id,
                    "from_number": phone,
                    "to_number": item.to_number,
                    "text": item.text[:MAX_STORED_TEXT],
                    "provider_message_id": item.provider_message_id,
                    "keyword": keyword.value if keyword else None,
                    "received_at": now,
                },
            )
            if not stored:
                counts["replays"] += 1
                continue
            outcome, reply = await self._act(conn, surface, phone, item.text, keyword, now)
            counts[outcome] += 1
            if reply:
                await messages_repo.insert_messages(
                    conn, [consent_reply(row.id, surface, phone, reply, now)], due=[now]
                )
                replies += 1
        return counts, replies

    def _phone(self, raw: str) -> str | None:
        """The sender in E.164. Several providers (Infobip, Vonage, Sinch) send international
        numbers as bare digits, without the "+"."""
        candidates = [raw]
        digits = raw.strip()
        if digits.isdigit() and 8 <= len(digits) <= 15:
            candidates.insert(0, "+" + digits)
        for candidate in candidates:
            try:
                return normalize_phone(candidate, "from", self._region)
            except InvalidInput:
                continue
        return None

    async def _act(
        self,
        conn: AsyncConnection,
        surface: Surface,
        phone: str,
        text: str,
        keyword: Keyword | None,
        now: datetime,
    ) -> tuple[str, str | None]:
        """Apply the message's consent effect; returns (outcome, reply text or None)."""
        sender, word = surface.sender, normalized(text)
        audit = {
            "phone": phone,
            "sender": sender,
            "source": "keyword",
            "keyword": word[:32],
            "actor": "inbound",
            "note": None,
            "at": now,
        }
        if (
            surface.double_opt_in
            and word == CONFIRM_WORD
            and await repo.pending(conn, sender, phone)
        ):
            await repo.clear_pending(conn, sender, phone)
            await consent_repo.lift(conn, sender=sender, phone=phone)
            await consent_repo.record(conn, {**audit, "action": "opted_in"})
            return "opt_ins", surface.replies["opt_in"]
        if keyword is Keyword.OPT_OUT:
            await repo.clear_pending(conn, sender, phone)
            await consent_repo.suppress(
                conn, sender=sender, phone=phone, source="keyword", keyword=word[:32], at=now
            )
            await consent_repo.record(conn, {**audit, "action": "opted_out"})
            return "opt_outs", surface.replies["opt_out"]
        if keyword is Keyword.OPT_IN:
            if surface.double_opt_in:
                if not await consent_repo.is_suppressed(conn, sender=sender, phone=phone):
                    return "opt_ins", surface.replies["opt_in"]  # already receiving messages
                await repo.set_pending(conn, sender, phone, now)
                await consent_repo.record(conn, {**audit, "action": "opt_in_requested"})
                return "opt_in_requests", surface.replies["confirm_opt_in"]
            await consent_repo.lift(conn, sender=sender, phone=phone)
            await consent_repo.record(conn, {**audit, "action": "opted_in"})
            return "opt_ins", surface.replies["opt_in"]
        if keyword is Keyword.HELP:
            return "help", surface.replies["help"]
        return "stored", None
