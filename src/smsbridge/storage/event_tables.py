"""The tables of emitted events (docs/events.md), on the schema's one metadata; kept apart
from ``tables.py`` so that each stays one readable module. Alembic migration 0012 mirrors it."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
)

from smsbridge.storage.tables import JsonDocument, UtcDateTime, metadata

# Where signed events are posted. ``secrets`` is one SecretBox token holding the signing
# secret (and, during a rotation's overlap, the previous one until ``previous_expires_at``).
# ``failing_since``: the first failure of the current run of failures (cleared by a success);
# a day of it disables the endpoint, saying why in ``disabled_reason``. ``last_failed_at``: the
# latest failure; one after a longer quiet gap than ``FAILURE_RUN_GAP`` starts a new run.
event_endpoints = Table(
    "event_endpoints",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("url", Text, nullable=False),
    Column("description", Text, nullable=True),
    Column("event_types", JsonDocument, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("secrets", Text, nullable=False),
    Column("secret_hint", String(24), nullable=False),
    Column("previous_expires_at", UtcDateTime, nullable=True),
    Column("failing_since", UtcDateTime, nullable=True),
    Column("last_failed_at", UtcDateTime, nullable=True),
    Column("disabled_reason", Text, nullable=True),
    Column("disabled_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# A message's own ``callback_url`` (written only when given, with the message).
message_callbacks = Table(
    "message_callbacks",
    metadata,
    Column("message_id", String(40), primary_key=True),
    Column("url", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# Changes that have no ordered log of their own (an inbound message, a campaign completed):
# a row written in the transaction of the change, for the event tailer to read in id order.
app_events = Table(
    "app_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("type", String(32), nullable=False),
    Column("subject_id", String(40), nullable=False),
    Column("at", UtcDateTime, nullable=False),
)

# How far the event tailer has read each ordered log (``source``: a table name), and the ids
# below ``position`` not seen yet (PostgreSQL may commit an id after a larger one): JSON
# ``[[id, first seen (epoch s)], …]``, re-read until a safety delay has passed.
event_cursors = Table(
    "event_cursors",
    metadata,
    Column("source", String(32), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("gaps", JsonDocument, nullable=False),
)

_PENDING = text("status = 'pending'")

# One event to one endpoint (or to a message's callback URL: ``endpoint_id`` NULL,
# ``target_url`` set). ``event_id`` is the ``webhook-id``, the same at every attempt and for
# every endpoint; ``body`` the exact bytes signed. Claimed under a lease like the outbox;
# ``ordering_key`` (a message id) holds a later event back until earlier ones are done.
event_deliveries = Table(
    "event_deliveries",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("event_id", String(40), nullable=False),
    Column(
        "endpoint_id",
        String(40),
        ForeignKey("event_endpoints.id", ondelete="CASCADE"),
        nullable=True,
    ),
    Column("target_url", Text, nullable=True),
    Column("type", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("ordering_key", String(64), nullable=True),
    Column("status", String(12), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("first_attempt_at", UtcDateTime, nullable=True),
    Column("last_attempt_at", UtcDateTime, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_response", Text, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", UtcDateTime, nullable=True),
    Column("lease_token", BigInteger, nullable=False),
    Index(
        "ix_event_deliveries_due",
        "next_attempt_at",
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    ),
    Index(
        "ix_event_deliveries_ordering_key_id",
        "ordering_key",
        "id",
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    ),
    Index("ix_event_deliveries_endpoint_id_id", "endpoint_id", "id"),
    Index("ix_event_deliveries_created_at", "created_at"),
)
