"""link tracking and reports

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 17:02:37.671542
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clicks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("campaign_id", sa.String(length=40), nullable=True),
        sa.Column("surface_id", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("ip_hash", sa.String(length=64), nullable=True),
        sa.Column("is_bot", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clicks")),
    )
    with op.batch_alter_table("clicks", schema=None) as batch_op:
        batch_op.create_index("ix_clicks_campaign_id_at", ["campaign_id", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_clicks_message_id"), ["message_id"], unique=False)
        batch_op.create_index("ix_clicks_surface_id_at", ["surface_id", "at"], unique=False)

    op.create_table(
        "links",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("campaign_id", sa.String(length=40), nullable=True),
        sa.Column("surface_id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_links")),
    )
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_links_message_id"), ["message_id"], unique=False)

    with op.batch_alter_table("campaign_exclusions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_surface_id"))
        batch_op.create_index(
            "ix_messages_surface_id_created_at", ["surface_id", "created_at"], unique=False
        )
        batch_op.drop_index("ix_messages_campaign_id_status")
        batch_op.create_index(
            "ix_messages_campaign_report",
            ["campaign_id", "status", "segments", "sent_at", "delivered_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_campaign_report")
        batch_op.create_index(
            "ix_messages_campaign_id_status", ["campaign_id", "status"], unique=False
        )
        batch_op.drop_index("ix_messages_surface_id_created_at")
        batch_op.create_index(batch_op.f("ix_messages_surface_id"), ["surface_id"], unique=False)

    with op.batch_alter_table("campaign_exclusions", schema=None) as batch_op:
        batch_op.drop_column("created_at")

    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_links_message_id"))

    op.drop_table("links")
    with op.batch_alter_table("clicks", schema=None) as batch_op:
        batch_op.drop_index("ix_clicks_surface_id_at")
        batch_op.drop_index(batch_op.f("ix_clicks_message_id"))
        batch_op.drop_index("ix_clicks_campaign_id_at")

    op.drop_table("clicks")
