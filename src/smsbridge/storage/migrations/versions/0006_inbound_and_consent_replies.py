"""inbound and consent replies

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 17:36:54.303342
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consent_pending",
        sa.Column("sender", sa.String(length=32), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sender", "phone", name=op.f("pk_consent_pending")),
    )
    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("surface_id", sa.String(length=40), nullable=False),
        sa.Column("from_number", sa.String(length=32), nullable=False),
        sa.Column("to_number", sa.String(length=32), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("provider_message_id", sa.String(length=200), nullable=True),
        sa.Column("keyword", sa.String(length=16), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_messages")),
    )
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.create_index("ix_inbound_messages_from_number", ["from_number"], unique=False)
        batch_op.create_index(
            "uq_inbound_messages_surface_id_provider_message_id",
            ["surface_id", "provider_message_id"],
            unique=True,
        )

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("ignore_opt_out", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("ignore_opt_out")

    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_index("uq_inbound_messages_surface_id_provider_message_id")
        batch_op.drop_index("ix_inbound_messages_from_number")

    op.drop_table("inbound_messages")
    op.drop_table("consent_pending")
