"""clinic web app round 2 (issue 14): revocable invitations, TOTP second factor, standard
sign-off reasons, assessment fingerprints (a re-screen that changes nothing keeps the
sign-off), and login throttling shared by every server process

Revision ID: 0006_clinic_round2
Revises: 0005_cds_calls
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_clinic_round2"
down_revision = "0005_cds_calls"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invitations") as t:
        t.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
        t.add_column(sa.Column("revoked_by", sa.Integer(),
                               sa.ForeignKey("users.id", name="fk_invitations_revoked_by"),
                               nullable=True))
    with op.batch_alter_table("users") as t:
        t.add_column(sa.Column("totp_secret", sa.String(64), nullable=True))
        t.add_column(sa.Column("totp_pending", sa.String(64), nullable=True))
    with op.batch_alter_table("reviews") as t:
        t.add_column(sa.Column("reason_code", sa.String(60), nullable=True))
    with op.batch_alter_table("assessments") as t:
        # null for screenings stored before: their sign-offs are kept only by their own id
        t.add_column(sa.Column("findings_sha256", sa.String(64), nullable=True))
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("wait_until", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("login_throttle")
    with op.batch_alter_table("assessments") as t:
        t.drop_column("findings_sha256")
    with op.batch_alter_table("reviews") as t:
        t.drop_column("reason_code")
    with op.batch_alter_table("users") as t:
        t.drop_column("totp_pending")
        t.drop_column("totp_secret")
    with op.batch_alter_table("invitations") as t:
        t.drop_column("revoked_by")
        t.drop_column("revoked_at")
