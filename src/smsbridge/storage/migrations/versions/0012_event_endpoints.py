"""event endpoints: signed events to the users' own systems

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 10:00:00

Endpoints (URL, subscribed types, sealed signing secrets), per-message callback URLs, a small
log of changes that have no ordered log of their own (inbound messages, completed campaigns),
the tailer's cursors over the ordered logs, and the deliveries (one per event and endpoint,
claimed under a lease like the outbox). See docs/events.md.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_table(
        "event_endpoints",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("event_types", _JSON, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("secrets", sa.Text(), nullable=False),
        sa.Column("secret_hint", sa.String(length=24), nullable=False),
        sa.Column("previous_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_endpoints")),
    )
    op.create_table(
        "message_callbacks",
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_message_callbacks")),
    )
    op.create_table(
        "app_events",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_events")),
    )
    op.create_table(
        "event_cursors",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("gaps", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_event_cursors")),
    )
    # Each log is followed from where it stands now: what happened before is not emitted.
    empty = "CAST('[]' AS jsonb)" if op.get_bind().dialect.name == "postgresql" else "'[]'"
    for source in ("message_events", "consent_events", "clicks", "app_events"):
        op.execute(
            f"INSERT INTO event_cursors (source, position, gaps) "  # noqa: S608 - fixed names
            f"SELECT '{source}', COALESCE(MAX(id), 0), {empty} FROM {source}"
        )
    op.create_table(
        "event_deliveries",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("endpoint_id", sa.String(length=40), nullable=True),
        sa.Column("target_url", sa.Text(), nullable=True),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("ordering_key", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_response", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_token", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["event_endpoints.id"],
            name=op.f("fk_event_deliveries_endpoint_id_event_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_deliveries")),
    )
    with op.batch_alter_table("event_deliveries") as batch:
        batch.create_index(
            "ix_event_deliveries_due",
            ["next_attempt_at"],
            sqlite_where=_PENDING,
            postgresql_where=_PENDING,
        )
        batch.create_index(
            "ix_event_deliveries_ordering_key_id",
            ["ordering_key", "id"],
            sqlite_where=_PENDING,
            postgresql_where=_PENDING,
        )
        batch.create_index("ix_event_deliveries_endpoint_id_id", ["endpoint_id", "id"])
        batch.create_index("ix_event_deliveries_created_at", ["created_at"])


def downgrade() -> None:
    op.drop_table("event_deliveries")
    op.drop_table("event_cursors")
    op.drop_table("app_events")
    op.drop_table("message_callbacks")
    op.drop_table("event_endpoints")
