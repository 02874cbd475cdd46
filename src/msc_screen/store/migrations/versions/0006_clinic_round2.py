"""clinic web app round 2 (issue 14): filled by the web work

Revision ID: 0006_clinic_round2
Revises: 0005_cds_calls
Create Date: 2026-12-02
"""
from __future__ import annotations

revision = "0006_clinic_round2"
down_revision = "0005_cds_calls"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
