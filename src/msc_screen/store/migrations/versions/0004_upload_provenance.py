"""uploads: content hash and size, status (pending / active / withdrawn / cancelled), the
complete-record mark, who the file names and what it held, confirmation and withdrawal; one
live upload per file and patient; an optional identifier on clinic patients

Existing uploads become ``active`` with their sha256 and size; a file that was stored more
than once for the same patient (the old behaviour) keeps its first upload and the later
copies are marked withdrawn (they held the same bytes, so no screening loses data).

Revision ID: 0004_upload_provenance
Revises: 0003_cds_jwt_use
Create Date: 2026-12-03
"""
from __future__ import annotations

import datetime as dt
import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0004_upload_provenance"
down_revision = "0003_cds_jwt_use"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
LIVE = "status IN ('pending', 'active')"
INDEX = "uq_uploaded_records_live_sha256"


def upgrade() -> None:
    with op.batch_alter_table("uploaded_records") as batch:
        batch.add_column(sa.Column("sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("size", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("status", sa.String(20), nullable=False,
                                   server_default="active"))
        batch.add_column(sa.Column("complete", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("summary", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("confirmed_by", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("confirmed_at", TZ, nullable=True))
        batch.add_column(sa.Column("confirm_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("ended_by", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("ended_at", TZ, nullable=True))
        batch.add_column(sa.Column("ended_reason", sa.Text(), nullable=True))
        batch.create_foreign_key("fk_uploaded_records_confirmed_by", "users",
                                 ["confirmed_by"], ["id"])
        batch.create_foreign_key("fk_uploaded_records_ended_by", "users", ["ended_by"], ["id"])

    bind = op.get_bind()
    t = sa.table("uploaded_records", sa.column("id", sa.Integer()),
                 sa.column("patient_id", sa.Integer()), sa.column("data", sa.LargeBinary()),
                 sa.column("sha256", sa.String()), sa.column("size", sa.Integer()),
                 sa.column("status", sa.String()), sa.column("ended_at", TZ),
                 sa.column("ended_reason", sa.Text()))
    first: dict[tuple[int, str], int] = {}
    now = dt.datetime.now(dt.UTC)
    ids = [r[0] for r in bind.execute(sa.select(t.c.id).order_by(t.c.id))]
    for rid in ids:  # one row at a time: uploads can be large
        pid, data = bind.execute(sa.select(t.c.patient_id, t.c.data)
                                 .where(t.c.id == rid)).one()
        digest = hashlib.sha256(bytes(data)).hexdigest()
        values: dict[str, object] = {"sha256": digest, "size": len(data)}
        dup = first.setdefault((pid, digest), rid)
        if dup != rid:
            values.update(status="withdrawn", ended_at=now,
                          ended_reason=f"duplicate of upload {dup} (the same file), "
                                       "merged by migration 0004")
        bind.execute(sa.update(t).where(t.c.id == rid).values(**values))

    with op.batch_alter_table("uploaded_records") as batch:
        batch.alter_column("sha256", existing_type=sa.String(64), nullable=False)
        batch.alter_column("size", existing_type=sa.Integer(), nullable=False)
    op.create_index(INDEX, "uploaded_records", ["patient_id", "sha256"], unique=True,
                    sqlite_where=sa.text(LIVE), postgresql_where=sa.text(LIVE))

    with op.batch_alter_table("patients") as batch:
        batch.add_column(sa.Column("identifier", sa.String(200), nullable=True))


def downgrade() -> None:
    bind = op.get_bind()
    left = bind.execute(sa.text("SELECT COUNT(*) FROM uploaded_records "
                                "WHERE status <> 'active'")).scalar()
    if left:
        # the older schema reads every stored upload: withdrawn, cancelled and unconfirmed
        # files would be screened again as this patient's
        raise RuntimeError(f"cannot downgrade below 0004: {left} upload(s) are withdrawn, "
                           "cancelled or awaiting confirmation, and the older schema would "
                           "read them; remove them first if that is what you want")
    with op.batch_alter_table("patients") as batch:
        batch.drop_column("identifier")
    op.drop_index(INDEX, "uploaded_records")
    with op.batch_alter_table("uploaded_records") as batch:
        batch.drop_constraint("fk_uploaded_records_ended_by", type_="foreignkey")
        batch.drop_constraint("fk_uploaded_records_confirmed_by", type_="foreignkey")
        for col in ("ended_reason", "ended_at", "ended_by", "confirm_reason", "confirmed_at",
                    "confirmed_by", "summary", "complete", "status", "size", "sha256"):
            batch.drop_column(col)
