"""cds_jwt_use table (JWT replay protection shared across workers)

Revision ID: 0003_cds_jwt_use
Revises: 0002_clinic
Create Date: 2026-11-24
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_cds_jwt_use"
down_revision = "0002_clinic"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cds_jwt_use",
        sa.Column("iss", sa.String(500), primary_key=True),
        sa.Column("jti", sa.String(255), primary_key=True),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_cds_jwt_use_expires_at", "cds_jwt_use", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_cds_jwt_use_expires_at", "cds_jwt_use")
    op.drop_table("cds_jwt_use")
