"""lighter message indexes: provider ids and statuses get partial indexes

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 23:00:00

Every index of ``messages`` costs each message written (a campaign launch writes millions)
and, on PostgreSQL, each status change. Two of them indexed mostly nothing useful:

* ``provider_message_id`` is NULL until the provider accepts the message: only set ids are
  looked up (delivery reports, by provider id and surface), so only they are indexed — with
  the surface: without statistics, SQLite preferred the surface's own index for that lookup
  and walked all of the surface's messages for every report;
* ``status`` alone served listing messages by status, but not in the order a list wants
  them (newest first). The new index is (status, id) for every status but ``queued``: the
  status every message is created with (a launch writes millions) and the one a list finds
  through the outbox, where every queued message has its entry.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_LISTED = "status <> 'queued'"
_SET = "provider_message_id IS NOT NULL"


def upgrade() -> None:
    op.drop_index("ix_messages_status", table_name="messages")
    op.drop_index("ix_messages_provider_message_id", table_name="messages")
    op.create_index(
        "ix_messages_status_id",
        "messages",
        ["status", "id"],
        sqlite_where=sa.text(_LISTED),
        postgresql_where=sa.text(_LISTED),
    )
    op.create_index(
        "ix_messages_provider_message_id_surface_id",
        "messages",
        ["provider_message_id", "surface_id"],
        sqlite_where=sa.text(_SET),
        postgresql_where=sa.text(_SET),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_provider_message_id_surface_id", table_name="messages")
    op.drop_index("ix_messages_status_id", table_name="messages")
    op.create_index("ix_messages_provider_message_id", "messages", ["provider_message_id"])
    op.create_index("ix_messages_status", "messages", ["status"])
