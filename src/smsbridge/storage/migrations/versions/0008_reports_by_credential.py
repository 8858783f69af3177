"""reports by credential: the campaign report's covering index gains credential_id

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_BEFORE = ["campaign_id", "status", "segments", "sent_at", "delivered_at"]


def upgrade() -> None:
    # The campaign report reads each message's credential too (its by_credential counts):
    # without it in the index, the report's one pass would read the table.
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_campaign_report")
        batch_op.create_index(
            "ix_messages_campaign_report", [*_BEFORE, "credential_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_campaign_report")
        batch_op.create_index("ix_messages_campaign_report", _BEFORE, unique=False)
