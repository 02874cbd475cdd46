"""CDS Hooks call audit (issue 13): filled by the CDS work

Revision ID: 0005_cds_calls
Revises: 0004_upload_provenance
Create Date: 2026-12-02
"""
from __future__ import annotations

revision = "0005_cds_calls"
down_revision = "0004_upload_provenance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
