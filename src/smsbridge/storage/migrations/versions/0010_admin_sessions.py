"""admin sessions: sign-ins kept server-side, so signing out revokes the cookie

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 10:00:00

Until now an admin session lived only in its signed cookie: a copy taken before signing out
kept working until it expired (12 hours). Each sign-in now has a row here, named by the
SHA-256 of the random session id the cookie carries; signing out deletes it, and rows past
their expiry are swept at each sign-in.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_sessions")),
    )
    op.create_index("ix_admin_sessions_expires_at", "admin_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_admin_sessions_expires_at", table_name="admin_sessions")
    op.drop_table("admin_sessions")
