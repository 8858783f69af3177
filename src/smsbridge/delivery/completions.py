"""What one attempt leaves behind: the :class:`Completion` (new status, events, next try) for
each way a worker's handling of a message can end. Pure: the worker passes the times, the
outcome and the retry decision; nothing here sends, sleeps or writes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from smsbridge.domain.messages import EventType, MessageStatus
from smsbridge.domain.retry import Decision, Outcome, Verdict
from smsbridge.domain.routing import Failover, Route
from smsbridge.storage.claim import ClaimedMessage, Completion
from smsbridge.storage.messages import Event

OUTCOME_UNKNOWN = "outcome unknown after a crash (at-most-once: not sent again)"
OPTED_OUT_HERE = "the number opted out of this sender"


def retry_later(message: ClaimedMessage, now: datetime, delay: float, reason: str) -> Completion:
    """Queued again after ``delay`` seconds, the attempt not counted (nothing was sent)."""
    return Completion(
        message.id,
        message.lease_token,
        MessageStatus.QUEUED,
        message.attempts,
        [
            Event(
                message.id,
                now,
                EventType.RETRY_SCHEDULED,
                {"reason": reason, "delay": round(delay, 3)},
            )
        ],
        last_error=reason,
        retry_at=now + timedelta(seconds=delay),
    )


def outcome_unknown(message: ClaimedMessage, now: datetime) -> Completion:
    """An at-most-once attempt started under an earlier lease and was never recorded:
    the provider may have the message. Not sent again; failed with a fixed reason (so
    reports group it), the event saying which worker started it and when."""
    assert message.started_at is not None
    return Completion(
        message.id,
        message.lease_token,
        MessageStatus.FAILED,
        message.attempts + 1,  # the attempt that started counts
        [
            Event(
                message.id,
                now,
                EventType.OUTCOME_UNKNOWN,
                {
                    "reason": OUTCOME_UNKNOWN,
                    "worker": message.started_by,
                    "started_at": message.started_at.isoformat(),
                },
            )
        ],
        last_error=OUTCOME_UNKNOWN,
    )


def ended_unsent(
    message: ClaimedMessage, now: datetime, status: MessageStatus, reason: str
) -> Completion:
    """Suppressed or failed before any attempt (opted out here, no usable credential)."""
    event = EventType.SUPPRESSED if status is MessageStatus.SUPPRESSED else EventType.FAILED
    return Completion(
        message.id,
        message.lease_token,
        status,
        message.attempts,
        [Event(message.id, now, event, {"reason": reason})],
        last_error=reason,
    )


def sent(
    message: ClaimedMessage,
    attempt: int,
    started: datetime,
    now: datetime,
    status_code: int,
    latency: float,
    credential_id: str,
    provider_id: str | None,
    failover: Failover | None,
) -> Completion:
    """The provider accepted the message."""
    detail: dict[str, object] = {
        "attempt": attempt,
        "credential_id": credential_id,
        "latency_ms": round(latency),
        "status_code": status_code,
    }
    if failover is not None:
        detail["failover"] = failover
    return Completion(
        message.id,
        message.lease_token,
        MessageStatus.SENT,
        attempt,
        [
            Event(message.id, started, EventType.ATTEMPT, detail),
            Event(
                message.id,
                now,
                EventType.SENT,
                {"provider_message_id": provider_id} if provider_id else None,
            ),
        ],
        credential_id=credential_id,
        provider_message_id=provider_id,
        sent_at=now,
    )


def attempt_event(
    message: ClaimedMessage,
    attempt: int,
    started: datetime,
    credential_id: str,
    latency: float,
    failover: Failover | None,
    status_code: int | None,
    outcome: Outcome,
) -> Event:
    """The record of an attempt the provider did not accept."""
    detail: dict[str, object] = {
        "attempt": attempt,
        "credential_id": credential_id,
        "latency_ms": round(latency),
    }
    if failover is not None:
        detail["failover"] = failover
    if status_code is not None:
        detail["status_code"] = status_code
    detail["error"] = outcome.reason
    return Event(message.id, started, EventType.ATTEMPT, detail)


def opted_out_at_provider(
    message: ClaimedMessage, attempt: int, now: datetime, attempted: Event, credential_id: str,
    error_code: str,
) -> Completion:  # fmt: skip
    """The provider refuses because the recipient opted out (Twilio 21610, Telnyx 40300…):
    the number is suppressed for this sender, as if it had sent STOP here."""
    reason = f"the recipient opted out at the provider (error {error_code})"
    return Completion(
        message.id,
        message.lease_token,
        MessageStatus.SUPPRESSED,
        attempt,
        [attempted, Event(message.id, now, EventType.SUPPRESSED, {"reason": reason})],
        credential_id=credential_id,
        last_error=reason,
        opt_out=(message.from_number, message.to_number),
    )


def not_accepted(
    message: ClaimedMessage,
    attempt: int,
    now: datetime,
    attempted: Event,
    credential_id: str,
    outcome: Outcome,
    decision: Decision,
    route: Route,
    stage: int,
) -> Completion:
    """Retried (on the same credential, or at once on the route's next one when this one's
    budget is spent on transient failures) or failed, as ``decision`` says."""
    detail: dict[str, Any] | None = None
    if decision.exhausted and stage + 1 < len(route):
        delay = 0.0
        detail = {"reason": decision.reason, "delay": delay, "failover_to": route[stage + 1][0]}
    elif decision.verdict is Verdict.RETRY:
        delay = decision.delay
        detail = {"reason": decision.reason, "delay": round(delay, 3)}
    if detail is not None:
        return Completion(
            message.id,
            message.lease_token,
            MessageStatus.QUEUED,
            attempt,
            [attempted, Event(message.id, now, EventType.RETRY_SCHEDULED, detail)],
            credential_id=credential_id,
            last_error=decision.reason,
            retry_at=now + timedelta(seconds=delay),
        )
    reason = decision.reason
    if decision.exhausted and len(route) > 1:
        reason = (
            f"{outcome.reason} (gave up after {attempt} attempts through {len(route)} credentials)"
        )
    return Completion(
        message.id,
        message.lease_token,
        MessageStatus.FAILED,
        attempt,
        [attempted, Event(message.id, now, EventType.FAILED, {"reason": reason})],
        credential_id=credential_id,
        last_error=reason,
    )
