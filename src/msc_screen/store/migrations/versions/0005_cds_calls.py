"""CDS Hooks call audit (issue 13): cds_calls (one row per call: who, which patient and
hook, coverage, decision, cards) and cds_call_cards (one row per card and rule, joined to
cds_feedback on the card's uuid)

Revision ID: 0005_cds_calls
Revises: 0004_upload_provenance
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_cds_calls"
down_revision = "0004_upload_provenance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cds_calls",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("service_id", sa.String(100), nullable=False),
        sa.Column("hook", sa.String(40), nullable=False),
        sa.Column("hook_instance", sa.String(100), nullable=True),
        sa.Column("iss", sa.String(500), nullable=True),
        sa.Column("tenant", sa.String(200), nullable=True),
        sa.Column("sub", sa.String(200), nullable=True),
        sa.Column("user_id", sa.String(200), nullable=True),
        sa.Column("patient_id", sa.String(200), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(40), nullable=True),
        sa.Column("coverage", sa.JSON(), nullable=True),
        sa.Column("cards", sa.JSON(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=True),
    )
    op.create_index("ix_cds_calls_received_at", "cds_calls", ["received_at"])
    op.create_index("ix_cds_calls_service_id", "cds_calls", ["service_id"])
    op.create_index("ix_cds_calls_patient_id", "cds_calls", ["patient_id"])
    op.create_table(
        "cds_call_cards",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.Integer(), sa.ForeignKey("cds_calls.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("card_uuid", sa.String(100), nullable=False),
        sa.Column("rule", sa.String(100), nullable=False),
        sa.Column("indicator", sa.String(20), nullable=False),
    )
    op.create_index("ix_cds_call_cards_call_id", "cds_call_cards", ["call_id"])
    op.create_index("ix_cds_call_cards_card_uuid", "cds_call_cards", ["card_uuid"])
    op.create_index("ix_cds_call_cards_rule", "cds_call_cards", ["rule"])


def downgrade() -> None:
    for ix in ("rule", "card_uuid", "call_id"):
        op.drop_index(f"ix_cds_call_cards_{ix}", "cds_call_cards")
    op.drop_table("cds_call_cards")
    for ix in ("patient_id", "service_id", "received_at"):
        op.drop_index(f"ix_cds_calls_{ix}", "cds_calls")
    op.drop_table("cds_calls")
