"""Accepting messages in groups: what one group commit (``services/group_commit.py``) decides
and writes for the requests that arrived together.

A request's handler checks and personalizes its message on its own (:class:`Draft`: the
number normalized, the body rendered); the group's transaction then does, once for everyone
in it, what needs the database: Idempotency-Key replays, the surfaces, opt-outs, frequency
caps; and writes every row with one statement per table. Each request gets the answer it
would have got alone, after the commit that made its message durable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from smsbridge.domain.events import check_event_url
from smsbridge.domain.ids import new_id
from smsbridge.domain.links import Shortened, shorten
from smsbridge.domain.messages import MessageStatus, check_body
from smsbridge.domain.segments import count_segments
from smsbridge.domain.surfaces import Surface, parse_surface
from smsbridge.errors import Conflict, InvalidInput
from smsbridge.services.message_rows import (
    IDEMPOTENCY_TTL,
    Idempotency,
    SendRequest,
    accepted_view,
    jsonable,
    message_link_rows,
    outbox_due,
    pace,
)
from smsbridge.storage import accepted as store
from smsbridge.storage import events as events_store
from smsbridge.storage import messages as repo


@dataclass(slots=True)  # not frozen: built per message by the thousand (see NewMessage)
class Draft:
    """One message as its request's handler prepared it, waiting for its group."""

    request: SendRequest
    to: str
    body: str
    """Personalized and checked; links are shortened in the group (the surface decides)."""
    timezone: str | None = None
    """The profile's time zone, for quiet hours."""


@dataclass(frozen=True, slots=True)
class Submission:
    """What one request hands to the group commit: one message (``POST /messages``) or a
    batch (``POST /messages/batch``, whose items that failed their own checks are carried as
    their error), with the request's Idempotency-Key."""

    drafts: Sequence[Draft | InvalidInput]
    idempotency: Idempotency | None = None
    batch: bool = False


Answer = tuple[int, dict[str, Any]]
"""An HTTP status and the body answered (a message view, or a batch's results)."""


def new_message(
    request: SendRequest,
    now: datetime,
    surface: Surface,
    *,
    to: str,
    body: str,
    suppressed: bool = False,
) -> repo.NewMessage:
    """The row of a message accepted now (not yet paced by the surface)."""
    body = check_body(body)
    count = count_segments(body)
    if suppressed:
        status = MessageStatus.SUPPRESSED
    elif request.send_at is not None and request.send_at > now:
        status = MessageStatus.SCHEDULED
    else:
        status = MessageStatus.QUEUED
    return repo.NewMessage(
        id=new_id("msg"),
        surface_id=request.surface_id,
        campaign_id=None,  # a campaign's messages come from its fan-out only
        profile_id=request.profile_id,
        message_type=surface.message_type.value,
        to_number=to,
        from_number=surface.sender,
        body=body,
        segments=count.segments,
        encoding=count.encoding.value,
        status=status.value,
        send_at=request.send_at,
        created_at=now,
    )


def item_problem(index: int, error: InvalidInput) -> dict[str, Any]:
    """A batch item's refusal: an RFC 9457 problem whose fields name the item."""
    prefix = f"messages[{index}]"
    errors = [
        {"field": f"{prefix}.{e.field}" if e.field else prefix, "message": e.message}
        for e in error.errors
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:3])
    return {
        "type": "urn:smsbridge:problem:invalid-input",
        "title": "Invalid input",
        "status": 422,
        "detail": detail or f"{prefix}: invalid",
        "errors": errors,
    }


class GroupWriter:
    """``write(conn, submissions)``: the group's decisions and rows, in the caller's
    transaction; one :data:`Answer` or error per submission, in order."""

    def __init__(
        self, *, link_base: Callable[[Surface], str | None], allow_private_urls: bool = False
    ) -> None:
        self._link_base = link_base
        self._allow_private = allow_private_urls

    def write(
        self, conn: Connection, submissions: Sequence[Submission], now: datetime
    ) -> list[Answer | BaseException]:
        answers: list[Answer | BaseException | None] = [None] * len(submissions)
        live = self._replays(conn, submissions, now, answers)
        drafts = [d for i in live for d in submissions[i].drafts if isinstance(d, Draft)]
        surfaces = self._surfaces(conn, drafts)
        opted_out = self._opted_out(conn, drafts, surfaces)
        recent = self._recent(conn, drafts, surfaces, now)
        new: list[repo.NewMessage] = []
        link_rows: list[dict[str, Any]] = []
        records: list[dict[str, Any]] = []
        callbacks: list[dict[str, Any]] = []
        for i in live:
            submission = submissions[i]
            results: list[dict[str, Any] | InvalidInput] = []
            for draft in submission.drafts:
                if isinstance(draft, InvalidInput):
                    results.append(draft)
                    continue
                try:
                    message, tracked = self._decide(draft, surfaces, opted_out, recent, now)
                except InvalidInput as refused:
                    results.append(refused)
                    continue
                new.append(message)
                link_rows.extend(message_link_rows(message, tracked, now))
                if draft.request.callback_url:
                    url = draft.request.callback_url
                    callbacks.append({"message_id": message.id, "url": url, "created_at": now})
                results.append(accepted_view(message))
            answer = _answer(submission, results)
            answers[i] = answer
            if submission.idempotency is not None and not isinstance(answer, BaseException):
                records.append(_record(submission.idempotency, answer, now))
        store.write_accepted(
            conn,
            new,
            [outbox_due(m, now) for m in new],
            link_rows,
            records,
            expired_before=now - IDEMPOTENCY_TTL,
        )
        events_store.insert_callbacks(conn, callbacks)
        return [a if a is not None else RuntimeError("unanswered") for a in answers]

    def _replays(
        self,
        conn: Connection,
        submissions: Sequence[Submission],
        now: datetime,
        answers: list[Answer | BaseException | None],
    ) -> list[int]:
        """Answer the submissions whose Idempotency-Key was used already; the indexes of the
        others (to accept now)."""
        keyed = [(s.idempotency.scope, s.idempotency.key) for s in submissions if s.idempotency]
        found = store.idempotency_records(conn, keyed, now - IDEMPOTENCY_TTL)
        seen: set[tuple[str, str]] = set()
        live: list[int] = []
        for i, submission in enumerate(submissions):
            key = submission.idempotency
            if key is None:
                live.append(i)
                continue
            pair = (key.scope, key.key)
            record = found.get(pair)
            if record is not None:
                answers[i] = (
                    (int(record["status_code"]), dict(record["response"]))
                    if record["request_hash"] == key.request_hash
                    else InvalidInput.one(
                        "Idempotency-Key", "was already used with a different request body"
                    )
                )
            elif pair in seen:  # its twin is in this very group: answered once that commits
                answers[i] = Conflict("a request with this Idempotency-Key is being processed")
            else:
                seen.add(pair)
                live.append(i)
        return live

    @staticmethod
    def _surfaces(conn: Connection, drafts: Sequence[Draft]) -> dict[str, Surface]:
        documents = store.surface_documents(conn, {d.request.surface_id for d in drafts})
        return {surface_id: parse_surface(doc) for surface_id, doc in documents.items()}

    @staticmethod
    def _opted_out(
        conn: Connection, drafts: Sequence[Draft], surfaces: dict[str, Surface]
    ) -> set[tuple[str, str]]:
        """(sender, number) pairs among the drafts that opted out."""
        by_sender: dict[str, set[str]] = {}
        for d in drafts:
            surface = surfaces.get(d.request.surface_id)
            if surface is not None:
                by_sender.setdefault(surface.sender, set()).add(d.to)
        return {
            (sender, phone)
            for sender, phones in by_sender.items()
            for phone in store.suppressed(conn, sender, phones)
        }

    @staticmethod
    def _recent(
        conn: Connection, drafts: Sequence[Draft], surfaces: dict[str, Surface], now: datetime
    ) -> Counter[tuple[str, str]]:
        """Marketing messages each (surface, number) got within its frequency cap's window;
        counted on as the group accepts more."""
        by_surface: dict[str, set[str]] = {}
        for d in drafts:
            surface = surfaces.get(d.request.surface_id)
            if surface is not None and surface.paces and surface.frequency_cap is not None:
                by_surface.setdefault(d.request.surface_id, set()).add(d.to)
        recent: Counter[tuple[str, str]] = Counter()
        for surface_id, phones in by_surface.items():
            cap = surfaces[surface_id].frequency_cap
            assert cap is not None
            for phone, count in store.marketing_counts(
                conn, surface_id, phones, now - cap.window
            ).items():
                recent[(surface_id, phone)] = count
        return recent

    def _decide(
        self,
        draft: Draft,
        surfaces: dict[str, Surface],
        opted_out: set[tuple[str, str]],
        recent: Counter[tuple[str, str]],
        now: datetime,
    ) -> tuple[repo.NewMessage, Shortened]:
        request = draft.request
        surface = surfaces.get(request.surface_id)
        if surface is None:
            raise InvalidInput.one("surface_id", f"no surface {request.surface_id}")
        if request.callback_url is not None:
            check_event_url(
                request.callback_url, allow_private=self._allow_private, field="callback_url"
            )
        base = self._link_base(surface)
        tracked = Shortened(draft.body, ()) if base is None else shorten(draft.body, base)
        suppressed = (surface.sender, draft.to) in opted_out
        message = new_message(
            request, now, surface, to=draft.to, body=tracked.text, suppressed=suppressed
        )
        if surface.paces and not suppressed:
            key = (request.surface_id, draft.to)
            message = pace(surface, message, now, draft.timezone, recent[key])
            if message.status in repo.PACED_STATUSES and surface.frequency_cap is not None:
                recent[key] += 1
        return message, tracked


def _answer(
    submission: Submission, results: list[dict[str, Any] | InvalidInput]
) -> Answer | BaseException:
    if not submission.batch:
        only = results[0]
        return only if isinstance(only, InvalidInput) else (202, only)
    return 207, {
        "results": [
            {"index": i, "status": 422, "problem": item_problem(i, r)}
            if isinstance(r, InvalidInput)
            else {"index": i, "status": 202, "message": r}
            for i, r in enumerate(results)
        ]
    }


def _record(idempotency: Idempotency, answer: Answer, now: datetime) -> dict[str, Any]:
    status, body = answer
    return {
        "scope": idempotency.scope,
        "key": idempotency.key,
        "request_hash": idempotency.request_hash,
        "status_code": status,
        "response": jsonable(body),
        "created_at": now,
    }
