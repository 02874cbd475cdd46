"""keyed, anchored audit chain (issue 15): filled by the hardening work

Revision ID: 0007_audit_keyed
Revises: 0006_clinic_round2
Create Date: 2026-12-02
"""
from __future__ import annotations

revision = "0007_audit_keyed"
down_revision = "0006_clinic_round2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
