"""Messages: their states, events, and the checks on what may be sent."""

from __future__ import annotations

from enum import StrEnum

from smsbridge.errors import InvalidInput, phrase

MAX_BODY = 1600


class MessageStatus(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    CANCELLED = "cancelled"


PENDING = frozenset({MessageStatus.SCHEDULED, MessageStatus.QUEUED, MessageStatus.SENDING})
TERMINAL = frozenset(MessageStatus) - PENDING


class EventType(StrEnum):
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    ATTEMPT = "attempt"
    SENT = "sent"
    RETRY_SCHEDULED = "retry_scheduled"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RELEASED = "released"
    SUPPRESSED = "suppressed"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    PROVIDER_STATUS = "provider_status"
    """A delivery report whose status the credential's status_map does not name: kept, in the
    provider's words, changing nothing."""
    OUTCOME_UNKNOWN = "outcome_unknown"
    """An at-most-once attempt started and its worker died before recording the outcome."""


DELIVERY_OUTCOMES = frozenset(
    {MessageStatus.DELIVERED, MessageStatus.UNDELIVERED, MessageStatus.FAILED}
)
"""What a delivery report can say about a message the provider accepted."""


def check_body(body: object, field: str = "body") -> str:
    """The body if it can be sent, else :class:`InvalidInput` naming ``field``."""
    if not isinstance(body, str) or not body.strip():
        raise InvalidInput.one(field, phrase("must not be empty"))
    if len(body) > MAX_BODY:
        raise InvalidInput.one(
            field,
            phrase(
                "is %(length)s characters long; the limit is %(most)s",
                length=len(body),
                most=MAX_BODY,
            ),
        )
    return body
