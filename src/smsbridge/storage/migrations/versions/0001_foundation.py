"""foundation: api keys, credentials, surfaces

Revision ID: 0001
Revises:
Create Date: 2026-11-26 14:17:00.854973
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_table(
        "credentials",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "document",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("secrets", sa.Text(), nullable=False),
        sa.Column(
            "secret_hints",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials")),
        sa.UniqueConstraint("name", name=op.f("uq_credentials_name")),
    )
    op.create_table(
        "surfaces",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "document",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surfaces")),
        sa.UniqueConstraint("name", name=op.f("uq_surfaces_name")),
    )
    op.create_table(
        "surface_credentials",
        sa.Column("surface_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("credential_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_surface_credentials_credential_id_credentials"),
        ),
        sa.ForeignKeyConstraint(
            ["surface_id"],
            ["surfaces.id"],
            name=op.f("fk_surface_credentials_surface_id_surfaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("surface_id", "position", name=op.f("pk_surface_credentials")),
    )
    with op.batch_alter_table("surface_credentials", schema=None) as batch_op:
        batch_op.create_index(
            "ix_surface_credentials_credential_id", ["credential_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("surface_credentials", schema=None) as batch_op:
        batch_op.drop_index("ix_surface_credentials_credential_id")

    op.drop_table("surface_credentials")
    op.drop_table("surfaces")
    op.drop_table("credentials")
    op.drop_table("api_keys")
