"""The database schema (SQLAlchemy 2 Core metadata); Alembic migrations mirror it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every dialect (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JsonDocument: Any = JSON().with_variant(JSONB(), "postgresql")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
)

# Admin sign-ins still open. A session cookie names its row (by the SHA-256 of its random
# id); signing out deletes the row, so a copied cookie stops working server-side.
admin_sessions = Table(
    "admin_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("key_id", String(40), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Index("ix_admin_sessions_expires_at", "expires_at"),
)

credentials = Table(
    "credentials",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    # The credential document without its secret values (see services/credentials.py).
    Column("document", JsonDocument, nullable=False),
    # One MultiFernet token holding the JSON of every secret, keyed by field path.
    Column("secrets", Text, nullable=False),
    # Last four characters of each secret, the only part the API shows.
    Column("secret_hints", JsonDocument, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

surfaces = Table(
    "surfaces",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("document", JsonDocument, nullable=False),
    # Unguessable tokens in the surface's webhook URLs.
    Column("inbound_token", String(64), nullable=True, unique=True),
    Column("status_token", String(64), nullable=True, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Which credentials a surface uses (primary at position 0, then fallbacks in order); lets a
# credential's deletion be refused with one indexed query on every dialect.
surface_credentials = Table(
    "surface_credentials",
    metadata,
    Column(
        "surface_id", String(40), ForeignKey("surfaces.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("position", Integer, primary_key=True),
    Column("credential_id", String(40), ForeignKey("credentials.id"), nullable=False),
    Index("ix_surface_credentials_credential_id", "credential_id"),
)

_PROVIDER_ID_SET = "provider_message_id IS NOT NULL"
_IN_A_CAMPAIGN = "campaign_id IS NOT NULL"
NOT_QUEUED = text("status <> 'queued'")
"""Where ``ix_messages_status_id`` applies; a query repeats it for SQLite to use it."""

messages = Table(
    "messages",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("surface_id", String(40), nullable=False),
    Column("campaign_id", String(40), nullable=True),
    Column("profile_id", String(255), nullable=True),
    Column("credential_id", String(40), nullable=True),
    Column("message_type", String(16), nullable=False),
    Column("to_number", String(32), nullable=False, index=True),
    Column("from_number", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("segments", Integer, nullable=False),
    Column("encoding", String(8), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("provider_message_id", String(200), nullable=True),
    Column("send_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
    Column("delivered_at", UtcDateTime, nullable=True),
    # Consent replies (the "you are unsubscribed" answer to STOP) go to numbers that opted out.
    Column("ignore_opt_out", Boolean, nullable=False, server_default=false()),
    # A number receives a campaign once. The second index serves a campaign's counts by
    # status, its "anything still pending?" check and, covering every column they read, its
    # report without touching the table. Both hold campaign messages only (migration 0013):
    # every lookup names a campaign, and a message sent on its own (no campaign) then pays
    # neither entry.
    Index(
        "uq_messages_campaign_id_to_number",
        "campaign_id",
        "to_number",
        unique=True,
        sqlite_where=text(_IN_A_CAMPAIGN),
        postgresql_where=text(_IN_A_CAMPAIGN),
    ),
    Index(
        "ix_messages_campaign_report",
        "campaign_id",
        "status",
        "segments",
        "sent_at",
        "delivered_at",
        "credential_id",
        sqlite_where=text(_IN_A_CAMPAIGN),
        postgresql_where=text(_IN_A_CAMPAIGN),
    ),
    # Surface reports and lists select a surface's messages by creation time.
    Index("ix_messages_surface_id_created_at", "surface_id", "created_at"),
    # Partial indexes (migration 0009): each index costs every message written, so these
    # hold only what is looked up — provider ids once set (delivery reports, by provider id
    # and surface: with both, SQLite never prefers the surface's index), and statuses other
    # than ``queued`` for lists by status (queued messages are found through the outbox).
    # A campaign's fan-out and every accepted message (queued) write neither.
    Index(
        "ix_messages_provider_message_id_surface_id",
        "provider_message_id",
        "surface_id",
        sqlite_where=text(_PROVIDER_ID_SET),
        postgresql_where=text(_PROVIDER_ID_SET),
    ),
    Index(
        "ix_messages_status_id",
        "status",
        "id",
        sqlite_where=NOT_QUEUED,
        postgresql_where=NOT_QUEUED,
    ),
)

# Work to do: one row per message waiting to be (re)tried. A row is claimable when due and
# not leased (or its lease expired). ``lease_token`` grows at every claim and fences
# completion: a worker whose lease expired cannot overwrite a newer claim.
outbox = Table(
    "outbox",
    metadata,
    Column("message_id", String(40), ForeignKey("messages.id"), primary_key=True),
    Column("due_at", UtcDateTime, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", UtcDateTime, nullable=True),
    Column("lease_token", BigInteger, nullable=False, default=0),
    # Set just before an at-most-once attempt's request leaves (fenced by lease token),
    # cleared by its completion: found set by a claim, it means an attempt started and its
    # outcome was never recorded (the worker died).
    Column("started_at", UtcDateTime, nullable=True),
    Column("started_by", String(64), nullable=True),
    Index("ix_outbox_due_at", "due_at"),
)

message_events = Table(
    "message_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("message_id", String(40), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("type", String(32), nullable=False),
    Column("detail", JsonDocument, nullable=True),
    Index("ix_message_events_message_id", "message_id", "id"),
)

# Delivery reports that arrived before the send they describe was recorded (fast providers
# report within milliseconds; the worker records sends in batches). Parked here, applied by a
# worker's sweep once the provider id is known, forgotten after a day.
early_delivery_reports = Table(
    "early_delivery_reports",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("surface_id", String(40), nullable=False),
    Column("provider_message_id", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("error", Text, nullable=True),
    Column("received_at", UtcDateTime, nullable=False),
    Index("ix_early_delivery_reports_provider_message_id", "provider_message_id"),
)

# Idempotency-Key records: the first response to (scope, key), kept 24 hours.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(100), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response", JsonDocument, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# Shared rate limits (GCRA): ``tat`` is the theoretical arrival time, in epoch seconds, of the
# next request; workers reserve slots by moving it forward in one atomic statement.
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("credential_id", String(40), primary_key=True),
    Column("tat", Float, nullable=False),
)

# People to message. ``external_id`` is the caller's own identifier; ``attributes`` is free
# JSON that templates read as ``profile.<name>``.
profiles = Table(
    "profiles",
    metadata,
    Column("external_id", String(255), primary_key=True),
    Column("phone", String(32), nullable=False, index=True),
    Column("attributes", JsonDocument, nullable=False),
    Column("timezone", String(64), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Numbers that must not receive messages from a sender (opt-outs).
suppressions = Table(
    "suppressions",
    metadata,
    Column("sender", String(32), primary_key=True),
    Column("phone", String(32), primary_key=True),
    Column("source", String(16), nullable=False),
    Column("keyword", String(32), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
)

# Every consent change, for audit: who (an API key, a keyword from the number itself, a
# provider error), what, when. ``suppressions`` holds the current state.
consent_events = Table(
    "consent_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("phone", String(32), nullable=False),
    Column("sender", String(32), nullable=False),
    Column("action", String(16), nullable=False),
    Column("source", String(16), nullable=False),
    Column("keyword", String(32), nullable=True),
    Column("actor", String(64), nullable=True),
    Column("note", Text, nullable=True),
    Column("at", UtcDateTime, nullable=False),
    Index("ix_consent_events_phone_id", "phone", "id"),
)

# A double opt-in waiting for its confirmation (the number answered START; YES confirms).
consent_pending = Table(
    "consent_pending",
    metadata,
    Column("sender", String(32), primary_key=True),
    Column("phone", String(32), primary_key=True),
    Column("created_at", UtcDateTime, nullable=False),
)

# Messages received from phones (MO). A provider id seen twice is one message (replays).
inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("surface_id", String(40), nullable=False),
    Column("from_number", String(32), nullable=False),
    Column("to_number", String(32), nullable=True),
    Column("text", Text, nullable=False),
    Column("provider_message_id", String(200), nullable=True),
    Column("keyword", String(16), nullable=True),
    Column("received_at", UtcDateTime, nullable=False),
    Index(
        "uq_inbound_messages_surface_id_provider_message_id",
        "surface_id",
        "provider_message_id",
        unique=True,
    ),
    Index("ix_inbound_messages_from_number", "from_number"),
)

# A campaign's fan-out advances batch by batch; ``fanout_cursor`` (the last profile handled)
# moves in the same transaction as the batch's messages, so a restart resumes exactly there.
campaigns = Table(
    "campaigns",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("surface_id", String(40), ForeignKey("surfaces.id"), nullable=False, index=True),
    Column("body", Text, nullable=False),
    Column("variables", JsonDocument, nullable=False),
    Column("audience", JsonDocument, nullable=False),
    Column("send_at", UtcDateTime, nullable=True),
    Column("throttle_per_second", Float, nullable=True),
    Column("status", String(16), nullable=False),
    Column("fanout_cursor", String(255), nullable=True),
    Column("fanout_done", Boolean, nullable=False, default=False),
    Column("targeted", Integer, nullable=False, default=0),
    Column("excluded", Integer, nullable=False, default=0),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("launched_at", UtcDateTime, nullable=True),
    Column("completed_at", UtcDateTime, nullable=True),
    Column("cancelled_at", UtcDateTime, nullable=True),
)

# Audience members a campaign did not message, and why (never silently dropped).
campaign_exclusions = Table(
    "campaign_exclusions",
    metadata,
    Column("campaign_id", String(40), primary_key=True),
    Column("profile_id", String(255), primary_key=True),
    Column("phone", String(32), nullable=True),
    Column("reason", String(32), nullable=False),
    Column("detail", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=True),
)

# Short links: one random code per (message, URL). Campaign and surface are copied from the
# message so that click reports need no join.
links = Table(
    "links",
    metadata,
    Column("code", String(16), primary_key=True),
    Column("message_id", String(40), nullable=False, index=True),
    Column("campaign_id", String(40), nullable=True),
    Column("surface_id", String(40), nullable=False),
    Column("url", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# Every redirect served. ``is_bot`` flags link-preview fetchers and crawlers, which reports
# leave out of the human click counts; the client address is kept only as a keyed hash.
clicks = Table(
    "clicks",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("code", String(16), nullable=False),
    Column("message_id", String(40), nullable=False, index=True),
    Column("campaign_id", String(40), nullable=True),
    Column("surface_id", String(40), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("user_agent", String(512), nullable=True),
    Column("ip_hash", String(64), nullable=True),
    Column("is_bot", Boolean, nullable=False),
    Index("ix_clicks_campaign_id_at", "campaign_id", "at"),
    Index("ix_clicks_surface_id_at", "surface_id", "at"),
)
