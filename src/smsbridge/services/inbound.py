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

Concurrent webhooks are applied together (group commit), set-based: one transaction, a
statement per table for the whole group (``storage/inbound.py``), the consent effects worked
out here in arrival order from the state read at the start (:class:`ConsentBook`). Each
webhook is answered once that transaction commits: a STOP answered 2xx is in force. Replies
are queued as transactional messages in the same transaction and sent by the delivery engine:
the webhook never waits for a provider.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection

from smsbridge.domain.ids import new_id
from smsbridge.domain.keywords import CONFIRM_WORD, Keyword, classify, normalized
from smsbridge.domain.phones import normalize_phone
from smsbridge.domain.surfaces import Surface, parse_surface
from smsbridge.domain.webhooks import WebhookRequest, read_body, read_inbound
from smsbridge.errors import InvalidInput
from smsbridge.observability.metrics import Metrics
from smsbridge.services.credentials import CredentialService
from smsbridge.services.group_commit import GroupCommit
from smsbridge.services.message_rows import consent_reply
from smsbridge.services.webhooks import WebhookTargets, verify_signature
from smsbridge.storage import accepted, event_tail
from smsbridge.storage import inbound as repo
from smsbridge.storage.database import Database
from smsbridge.storage.inbound import ConsentChanges, Pair
from smsbridge.storage.messages import NewMessage

log = logging.getLogger("smsbridge.inbound")
MAX_STORED_TEXT = 2000


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message from a phone, read and classified (before any transaction)."""

    phone: str
    to_number: str | None
    text: str
    provider_message_id: str | None
    keyword: Keyword | None

    @property
    def word(self) -> str:
        return normalized(self.text)


@dataclass(frozen=True, slots=True)
class _Webhook:
    surface_id: str
    surface: Surface
    items: Sequence[Inbound]
    ignored: int
    """Items that could not be read, or whose sender is not a phone number."""


_Outcome = tuple[Counter[str], int]
"""A webhook's counts by outcome, and how many replies it queued."""


class ConsentBook:
    """The consent state of the (sender, phone) pairs a group touches, as read when its
    transaction began, moved through each inbound message in arrival order; :attr:`changes`
    is what to write at the end (net: a STOP then a START in one group lifts what the STOP
    set)."""

    def __init__(self, suppressed: Iterable[Pair], pending: Iterable[Pair]) -> None:
        self._suppressed = set(suppressed)
        self._pending = set(pending)
        self.changes = ConsentChanges()

    def act(self, surface: Surface, message: Inbound, now: datetime) -> tuple[str, str | None]:
        """Apply ``message``'s consent effect; (outcome, reply text or None)."""
        pair, word = (surface.sender, message.phone), message.word
        keyword = message.keyword
        if surface.double_opt_in and word == CONFIRM_WORD and pair in self._pending:
            self._clear_pending(pair)
            self._lift(pair)
            self._record(pair, word, "opted_in", now)
            return "opt_ins", surface.replies["opt_in"]
        if keyword is Keyword.OPT_OUT:
            self._clear_pending(pair)
            self._suppress(pair, word, now)
            self._record(pair, word, "opted_out", now)
            return "opt_outs", surface.replies["opt_out"]
        if keyword is Keyword.OPT_IN:
            if surface.double_opt_in:
                if pair not in self._suppressed:
                    return "opt_ins", surface.replies["opt_in"]  # already receiving messages
                self._set_pending(pair, now)
                self._record(pair, word, "opt_in_requested", now)
                return "opt_in_requests", surface.replies["confirm_opt_in"]
            self._lift(pair)
            self._record(pair, word, "opted_in", now)
            return "opt_ins", surface.replies["opt_in"]
        if keyword is Keyword.HELP:
            return "help", surface.replies["help"]
        return "stored", None

    def _suppress(self, pair: Pair, word: str, now: datetime) -> None:
        if pair in self._suppressed:
            return  # the first opt-out stays
        self._suppressed.add(pair)
        self.changes.suppressed[pair] = {
            "sender": pair[0],
            "phone": pair[1],
            "source": "keyword",
            "keyword": word[:32],
            "created_at": now,
        }

    def _lift(self, pair: Pair) -> None:
        if pair not in self._suppressed:
            return
        self._suppressed.discard(pair)
        if self.changes.suppressed.pop(pair, None) is None:
            self.changes.lifted.add(pair)  # a row from before this group

    def _set_pending(self, pair: Pair, now: datetime) -> None:
        self._pending.add(pair)
        self.changes.pending_cleared.add(pair)
        self.changes.pending[pair] = now

    def _clear_pending(self, pair: Pair) -> None:
        if pair not in self._pending:
            return
        self._pending.discard(pair)
        self.changes.pending_cleared.add(pair)
        self.changes.pending.pop(pair, None)

    def _record(self, pair: Pair, word: str, action: str, now: datetime) -> None:
        self.changes.events.append(
            {
                "phone": pair[1],
                "sender": pair[0],
                "source": "keyword",
                "keyword": word[:32],
                "actor": "inbound",
                "note": None,
                "at": now,
                "action": action,
            }
        )


def _touches_consent(surface: Surface, message: Inbound) -> bool:
    if message.keyword in (Keyword.OPT_OUT, Keyword.OPT_IN):
        return True
    return surface.double_opt_in and message.word == CONFIRM_WORD


def apply_inbound(conn: Connection, webhooks: Sequence[_Webhook], now: datetime) -> list[_Outcome]:
    """Store the webhooks' messages and apply their consent effects, in arrival order, in the
    transaction of ``conn``; queue the replies. One outcome per webhook."""
    rows = [
        {
            "id": new_id("inb"),
            "surface_id": hook.surface_id,
            "from_number": message.phone,
            "to_number": message.to_number,
            "text": message.text[:MAX_STORED_TEXT],
            "provider_message_id": message.provider_message_id,
            "keyword": message.keyword.value if message.keyword else None,
            "received_at": now,
        }
        for hook in webhooks
        for message in hook.items
    ]
    stored = repo.store(conn, rows)
    event_tail.record_received(conn, [str(r["id"]) for r in rows if r["id"] in stored], now)
    ids = iter(row["id"] for row in rows)
    fresh = [[next(ids) in stored for _ in hook.items] for hook in webhooks]
    pairs = {
        (hook.surface.sender, message.phone)
        for hook, kept in zip(webhooks, fresh, strict=True)
        for message, new in zip(hook.items, kept, strict=True)
        if new and _touches_consent(hook.surface, message)
    }
    book = ConsentBook(repo.suppressed(conn, pairs), repo.pending(conn, pairs))
    outcomes: list[_Outcome] = []
    replies: list[NewMessage] = []
    for hook, kept in zip(webhooks, fresh, strict=True):
        counts: Counter[str] = Counter(ignored=hook.ignored)
        replied = 0
        for message, new in zip(hook.items, kept, strict=True):
            if not new:
                counts["replays"] += 1
                continue
            outcome, reply = book.act(hook.surface, message, now)
            counts[outcome] += 1
            if reply:
                replies.append(
                    consent_reply(hook.surface_id, hook.surface, message.phone, reply, now)
                )
                replied += 1
        outcomes.append((counts, replied))
    repo.write_consent(conn, book.changes)
    accepted.write_accepted(conn, replies, [now] * len(replies), (), (), now)
    return outcomes


class InboundService:
    def __init__(
        self,
        db: Database,
        credentials: CredentialService,
        *,
        clock: Callable[[], datetime],
        default_region: str | None = None,
        on_enqueued: Callable[[], None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._db = db
        self._metrics = metrics or Metrics()
        self._credentials = credentials
        self._clock = clock
        self._region = default_region
        self._on_enqueued = on_enqueued
        self._targets = WebhookTargets(db, credentials)
        self._group: GroupCommit[_Webhook, _Outcome] = GroupCommit(
            self._apply, name="inbound", max_weight=2000
        )

    def group_stats(self) -> tuple[int, int]:
        """(transactions, webhooks) the group commit has applied so far."""
        return self._group.groups, self._group.units

    async def close(self) -> None:
        await self._group.close()

    async def receive(self, token: str, request: WebhookRequest) -> dict[str, Any]:
        try:
            answer = await self._receive(token, request)
        except Exception as exc:
            self._metrics.webhook("inbound", exc)
            raise
        self._metrics.webhook("inbound")
        self._metrics.inbound_acted(
            {k: v for k, v in answer.items() if k not in ("received", "replies")}
        )
        return answer

    async def _receive(self, token: str, request: WebhookRequest) -> dict[str, Any]:
        row, credential = await self._targets.get(token, kind="inbound")
        assert credential.inbound is not None  # checked by webhook_target
        verify_signature(credential, request, self._clock())
        document = read_body(request.body, request.content_type)
        items, notes = read_inbound(document, credential.inbound)
        for note in notes:
            log.info(
                "surface %s: inbound item skipped: %s", row.id, note, extra={"surface_id": row.id}
            )
        surface = parse_surface(row.document)
        messages: list[Inbound] = []
        ignored = len(notes)
        for item in items:
            phone = self._phone(item.from_number)
            if phone is None:
                ignored += 1
                log.info(
                    "surface %s: inbound item skipped: sender %r is not a phone number",
                    row.id,
                    item.from_number,
                    extra={"surface_id": row.id},
                )
                continue
            keyword = classify(item.text, surface.keywords)
            messages.append(
                Inbound(phone, item.to_number, item.text, item.provider_message_id, keyword)
            )
        hook = _Webhook(row.id, surface, messages, ignored)
        counts, replies = await self._group.submit(hook, weight=max(1, len(messages)))
        if replies and self._on_enqueued is not None:
            self._on_enqueued()
        return {"received": len(items) + len(notes), "replies": replies, **counts}

    async def _apply(self, webhooks: Sequence[_Webhook]) -> list[_Outcome]:
        """The inbound messages of concurrent webhooks, in arrival order, in one transaction:
        each webhook is answered once its consent changes are committed (a STOP answered
        2xx is in force)."""
        work = partial(apply_inbound, webhooks=webhooks, now=self._clock())
        return await self._db.run_transaction(work)

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
