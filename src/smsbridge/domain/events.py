"""Events smsbridge emits to its users' own systems (event endpoints, per-message callbacks):
their types, the endpoint URL policy, signing secrets, and the retry schedule of a delivery.

Pure: nothing here sends, sleeps, reads the clock or writes.
"""

from __future__ import annotations

import base64
import ipaddress
import random
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from smsbridge.domain.addresses import blocked_reason, metadata_reason
from smsbridge.domain.field_checks import check_provider_url
from smsbridge.domain.signatures import standard_webhooks_signature
from smsbridge.errors import FieldError, InvalidInput, phrase


class EventType(StrEnum):
    MESSAGE_QUEUED = "message.queued"
    MESSAGE_SENT = "message.sent"
    MESSAGE_DELIVERED = "message.delivered"
    MESSAGE_UNDELIVERED = "message.undelivered"
    MESSAGE_FAILED = "message.failed"
    MESSAGE_SUPPRESSED = "message.suppressed"
    MESSAGE_RECEIVED = "message.received"
    CONSENT_CHANGED = "consent.changed"
    CAMPAIGN_COMPLETED = "campaign.completed"
    LINK_CLICKED = "link.clicked"


ALL_TYPES = "*"
TEST_TYPE = "endpoint.test"
"""The type of the event ``POST …/{id}/test`` sends (whatever the endpoint subscribes to)."""

MESSAGE_TYPES = frozenset(t for t in EventType if t.value.startswith("message.")) - {
    EventType.MESSAGE_RECEIVED
}
"""What a message's ``callback_url`` receives: its own status events."""

STATUS_EVENTS: dict[str, EventType] = {
    "queued": EventType.MESSAGE_QUEUED,
    "scheduled": EventType.MESSAGE_QUEUED,
    "sent": EventType.MESSAGE_SENT,
    "delivered": EventType.MESSAGE_DELIVERED,
    "undelivered": EventType.MESSAGE_UNDELIVERED,
    "failed": EventType.MESSAGE_FAILED,
    "outcome_unknown": EventType.MESSAGE_FAILED,
    "suppressed": EventType.MESSAGE_SUPPRESSED,
}
"""Message event rows (``message_events.type``) that are emitted, and as what."""

MAX_URL = 2048
MAX_DESCRIPTION = 500
MAX_EVENT_TYPES = 20


def check_event_url(url: object, *, allow_private: bool, field: str = "url") -> str:
    """``url`` if events may be posted to it, else :class:`InvalidInput` naming ``field``.

    The provider URL policy (``check_provider_url``: absolute http(s), https unless private
    addresses are allowed, no embedded credentials), and an address written in the URL is
    judged at once as the SSRF guard will judge it at connect time (a name is judged there,
    after DNS)."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput.one(field, phrase("must be an absolute https:// URL"))
    url = url.strip()
    if len(url) > MAX_URL:
        raise InvalidInput.one(field, phrase("must be at most %(most)s characters", most=MAX_URL))
    if url.startswith("sandbox://") or any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidInput.one(field, phrase("must be an absolute https:// URL"))
    problem = check_provider_url(url, allow_private)
    if problem:
        raise InvalidInput.one(field, problem)
    host = urlsplit(url).hostname or ""
    if not _is_ip(host.strip("[]")):
        try:  # what the HTTP client will do with it: an empty or over-long label fails there
            host.encode("idna")
        except UnicodeError:
            raise InvalidInput.one(
                field, phrase("has a host name that is not valid: %(host)r", host=host[:80])
            ) from None
    refused = metadata_reason if allow_private else blocked_reason
    reason: str | None = None
    if host == "localhost" or host.endswith(".localhost"):
        reason = None if allow_private else "loopback address"
    elif _is_ip(host):
        reason = refused(host)
    if reason:
        if "metadata" in reason:
            said = phrase(
                "points at a %(reason)s; cloud metadata addresses are always refused",
                reason=reason,
            )
        else:
            said = phrase(
                "points at a %(reason)s; set SMSBRIDGE_ALLOW_PRIVATE_PROVIDER_URLS=true to "
                "allow it",
                reason=reason,
            )
        raise InvalidInput.one(field, said)
    return url


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def check_event_types(value: object, field: str = "event_types") -> list[str]:
    """The subscribed types, deduplicated in the given order; ``["*"]`` for all."""
    if not isinstance(value, list) or not value:
        raise InvalidInput.one(field, phrase('must list at least one event type, or ["*"] for all'))
    if len(value) > MAX_EVENT_TYPES:
        raise InvalidInput.one(
            field, phrase("must list at most %(most)s types", most=MAX_EVENT_TYPES)
        )
    known = {t.value for t in EventType}
    errors = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or (item not in known and item != ALL_TYPES):
            shown = repr(item)[:60]
            errors.append(
                FieldError(
                    f"{field}[{i}]",
                    phrase(
                        "unknown event type %(given)s; one of: %(known)s, or *",
                        given=shown,
                        known=", ".join(sorted(known)),
                    ),
                )
            )
    if errors:
        raise InvalidInput(errors)
    types = list(dict.fromkeys(str(v) for v in value))
    return [ALL_TYPES] if ALL_TYPES in types else types


def subscribes(event_types: Iterable[str], event_type: str) -> bool:
    return any(t in (ALL_TYPES, event_type) for t in event_types)


# --- signing secrets ---------------------------------------------------------------------------

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32
DEFAULT_OVERLAP = timedelta(hours=24)
MAX_OVERLAP = timedelta(days=7)


def new_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_from_key(key: bytes) -> str:
    """A secret in the ``whsec_`` form from raw key bytes (a derived key)."""
    return SECRET_PREFIX + base64.b64encode(key).decode()


def secret_hint(secret: str) -> str:
    """What a later read shows of a secret: its prefix and last four characters."""
    return f"{SECRET_PREFIX}…{secret[-4:]}"


def sign(secrets_in_use: Sequence[str], event_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header: one ``v1,`` signature per secret, space-separated
    (the newest first; during a rotation's overlap the previous one follows)."""
    return " ".join(
        standard_webhooks_signature(secret, event_id, str(timestamp), body)
        for secret in secrets_in_use
    )


# --- deliveries ------------------------------------------------------------------------------


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    """Refused for good by the receiver (a 4xx other than 408/429) or by the SSRF guard."""
    DEAD = "dead"
    """Still failing a day after its first attempt: no more tries."""


RETRY_DELAYS = (10.0, 60.0, 300.0, 1800.0, 7200.0)
"""Seconds before the 2nd, 3rd… attempt; the last repeats until :data:`GIVE_UP_AFTER`."""
GIVE_UP_AFTER = timedelta(hours=24)
DISABLE_AFTER = timedelta(hours=24)
"""An endpoint whose deliveries have all failed this long is disabled (with a notice)."""
MAX_RETRY_AFTER = 7200.0
FAILURE_RUN_GAP = timedelta(hours=3)
"""Longer than any wait between two tries of a delivery (2 h, +10 % jitter): while an
endpoint has a delivery to retry it fails at least this often, so a failure after a quieter
gap is not part of the same run of failures (nothing was waiting) and starts a new one."""


@dataclass(frozen=True)
class Answer:
    """How one attempt ended: an HTTP status, or no answer (``error`` says why)."""

    status: int | None
    error: str | None = None
    retry_after: float | None = None
    permanent: bool = False
    """No answer and never will be (the SSRF guard refused the address)."""


@dataclass(frozen=True)
class Verdict:
    status: DeliveryStatus
    next_attempt_at: datetime | None = None

    @property
    def succeeded(self) -> bool:
        return self.status is DeliveryStatus.DELIVERED


def retryable(status: int) -> bool:
    return status >= 500 or status in (408, 429)


def judge(
    answer: Answer,
    *,
    attempts: int,
    first_attempt_at: datetime,
    now: datetime,
    rng: random.Random,
) -> Verdict:
    """What follows attempt number ``attempts`` (1 for the first) of a delivery: delivered on
    a 2xx; failed at once on a refusal that a retry cannot change; else retried after the
    schedule's delay (or the receiver's ``Retry-After``, within bounds), with ±10 % jitter,
    until a day after the first attempt."""
    status = answer.status
    if status is not None and 200 <= status < 300:
        return Verdict(DeliveryStatus.DELIVERED)
    if answer.permanent or (status is not None and not retryable(status)):
        return Verdict(DeliveryStatus.FAILED)
    delay = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
    if answer.retry_after is not None:
        delay = min(max(answer.retry_after, 1.0), MAX_RETRY_AFTER)
    else:
        delay *= rng.uniform(0.9, 1.1)
    at = now + timedelta(seconds=delay)
    if at > first_attempt_at + GIVE_UP_AFTER:
        return Verdict(DeliveryStatus.DEAD)
    return Verdict(DeliveryStatus.PENDING, at)


def excerpt(body: bytes, secrets_to_hide: Iterable[str] = (), limit: int = 300) -> str:
    """A short, printable excerpt of a receiver's answer for the deliveries log."""
    text = body[: limit * 4].decode("utf-8", "replace")
    for secret in secrets_to_hide:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = "".join(c if c.isprintable() else " " for c in text)
    return text[:limit]


def payload(event_type: str, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    """The body of an event: ``{"type", "timestamp", "data"}``."""
    return {"type": event_type, "timestamp": rfc3339(at), "data": data}


def rfc3339(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")
