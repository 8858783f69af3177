"""delivery reports that arrive before their send is recorded

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 20:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "early_delivery_reports",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("surface_id", sa.String(length=40), nullable=False),
        sa.Column("provider_message_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_early_delivery_reports")),
    )
    with op.batch_alter_table("early_delivery_reports", schema=None) as batch_op:
        batch_op.create_index(
            "ix_early_delivery_reports_provider_message_id", ["provider_message_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("early_delivery_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_early_delivery_reports_provider_message_id")
    op.drop_table("early_delivery_reports")
