"""event endpoints remember their last failure

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 22:30:00

An endpoint is disabled after a day of failures (``failing_since``). Before, two failures a
day apart with nothing between them counted as a day of failures. ``last_failed_at`` lets a
failure that comes after a quiet gap (longer than any wait between two tries of a delivery)
start a new run instead. Adding a nullable column rewrites nothing on either database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "event_endpoints", sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("event_endpoints") as batch:
        batch.drop_column("last_failed_at")
