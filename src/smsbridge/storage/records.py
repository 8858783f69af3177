"""The plain records the send hot path, the fan-out and link clicks hand to storage.

They carry no SQL: each dialect (``storage.dialects``) writes and reads them its own way.
The records of the send hot path are plain slotted dataclasses, not frozen ones: a frozen
dataclass's ``__init__`` costs several times more, once per message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from smsbridge.domain.messages import MessageStatus
from smsbridge.storage.messages import Event


@dataclass(slots=True)
class ClaimedMessage:
    id: str
    lease_token: int
    surface_id: str
    credential_id: str | None
    status_token: str | None
    to_number: str
    from_number: str
    body: str
    attempts: int
    status: str
    suppressed: bool
    """The number opted out of this sender (checked at claim: nothing is sent)."""
    credential_version: datetime | None
    """The credential's ``updated_at``: its cached compiled form is used while this matches."""
    fallback_ids: list[str] | None = None
    """The surface's fallback credentials, in order (None when it has none)."""
    fallback_versions: list[datetime] | None = None
    """Their ``updated_at``, like ``credential_version``."""
    started_at: datetime | None = None
    """Set when an at-most-once attempt started under an earlier lease and its outcome was
    never recorded (its worker died): the message must not be sent again."""
    started_by: str | None = None
    """The worker that started that attempt."""


@dataclass(slots=True)
class Completion:
    """The outcome of one attempt, to apply if the lease still holds."""

    message_id: str
    lease_token: int
    status: str
    attempts: int
    events: list[Event] = field(default_factory=list)
    credential_id: str | None = None
    provider_message_id: str | None = None
    last_error: str | None = None
    sent_at: datetime | None = None
    retry_at: datetime | None = None
    """When set, the message goes back to the outbox, due then."""
    opt_out: tuple[str, str] | None = None
    """(sender, number) to suppress: the provider said the recipient opted out."""


@dataclass(slots=True)
class NewRecipient:
    """One message of a fan-out batch (what varies per recipient)."""

    id: str
    profile_id: str
    to_number: str
    body: str
    segments: int
    encoding: str
    due_at: datetime
    links: tuple[tuple[str, str], ...] = ()
    """(code, URL) of the message's short links."""
    deferred: bool = False
    """Held back by quiet hours: ``scheduled`` with ``send_at`` = ``due_at``."""

    def status(self, batch: FanoutBatch) -> str:
        return MessageStatus.SCHEDULED.value if self.deferred else batch.status.value


@dataclass(slots=True)
class Exclusion:
    profile_id: str
    phone: str | None
    reason: str
    detail: str | None


@dataclass(frozen=True)
class FanoutBatch:
    campaign_id: str
    surface_id: str
    message_type: str
    from_number: str
    status: MessageStatus
    send_at: datetime | None
    now: datetime
    expected_cursor: str | None
    cursor: str | None
    done: bool
    recipients: Sequence[NewRecipient]
    exclusions: Sequence[Exclusion]


@dataclass(frozen=True)
class Click:
    at: datetime
    user_agent: str | None
    ip_hash: str | None
    is_bot: bool


Lifetimes = Mapping[str, timedelta]
"""How long the links of a surface live, by surface id (surfaces absent: forever)."""


def link_expired(surface_id: str, created: datetime, now: datetime, lifetimes: Lifetimes) -> bool:
    lifetime = lifetimes.get(surface_id)
    return lifetime is not None and created + lifetime <= now
