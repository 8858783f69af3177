"""attempt start marks: at-most-once holds across a crash

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 02:00:00

A credential with ``retry_ambiguous: false`` promises that an attempt whose outcome is unknown
is not repeated. A worker killed while its requests were in flight left no trace of them: the
next claim sent them again. Before an at-most-once request leaves, the worker now marks its
outbox row (one statement per group of sends); a claim that finds the mark knows an attempt
started and never recorded its outcome, and ends the message instead of sending it again.
Completion deletes the row or, for a retry, clears the mark.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("started_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("started_by")
        batch.drop_column("started_at")
