"""Tables of the clinic web app: accounts, patients, questionnaire answers, uploads,
assessments, reviews and the hash-chained audit log.

Clinical content is kept as the FHIR/Assessment JSON the engine produced; nothing here
re-derives a decision.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base

ROLES = ("staff", "physician", "admin")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # a TOTP second factor (RFC 6238): the secret once enrolment is confirmed with a code;
    # ``totp_pending`` holds a secret shown for enrolment until then
    totp_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    totp_pending: Mapped[str | None] = mapped_column(String(64), nullable=True)


class WebSession(Base):
    """A signed-in browser; only the token's hash is stored."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class Patient(Base):
    """Minimal demographics; ``fhir_id`` is the Patient id the engine sees."""

    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fhir_id: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    birth_date: Mapped[str | None] = mapped_column(String(10), nullable=True)
    gender: Mapped[str | None] = mapped_column(String(20), nullable=True)
    # an identifier staff entered ("value" or "system|value", e.g. the clinic's MRN), compared
    # with the identifiers of uploaded files
    identifier: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class Invitation(Base):
    """A single-use, expiring link to the questionnaire; only the token's hash is stored."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"),
                                            index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True),
                                                           nullable=True)
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)


class QuestionnaireAnswer(Base):
    """One patient's QuestionnaireResponse (in progress or completed)."""

    __tablename__ = "questionnaire_responses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"),
                                            index=True)
    invitation_id: Mapped[int | None] = mapped_column(ForeignKey("invitations.id"),
                                                      nullable=True, unique=True)
    status: Mapped[str] = mapped_column(String(20))
    resource: Mapped[dict[str, object]] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


# An upload's life: ``pending`` (its Patient differs from the clinic patient's, or it names
# none: not read until staff confirm with a reason), ``active`` (read by every screening),
# ``withdrawn`` (no longer read; the bytes are kept, since earlier screenings read them) or
# ``cancelled`` (never read; the bytes are deleted). Only pending and active uploads count
# as one file per patient (``sha256``).
UPLOAD_STATUSES = ("pending", "active", "withdrawn", "cancelled")
LIVE_UPLOAD = "status IN ('pending', 'active')"


class UploadedRecord(Base):
    """A FHIR Bundle / resource / NDJSON file uploaded for a patient, kept as sent, with who
    it says it is about and what staff decided about it."""

    __tablename__ = "uploaded_records"
    __table_args__ = (
        Index("uq_uploaded_records_live_sha256", "patient_id", "sha256", unique=True,
              sqlite_where=text(LIVE_UPLOAD), postgresql_where=text(LIVE_UPLOAD)),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"),
                                            index=True)
    filename: Mapped[str] = mapped_column(String(255))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="active")
    # staff marked the file as the patient's complete record: its kinds of data are
    # declared complete (provided even where it holds nothing of a kind)
    complete: Mapped[bool] = mapped_column(Boolean, default=False)
    # {"patient": who the file names (or null), "held": resources per kind of data,
    #  "differences": [{"field", "clinic", "file"}]} as found at upload
    summary: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    confirmed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True),
                                                             nullable=True)
    confirm_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    ended_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class StoredAssessment(Base):
    """An engine Assessment exactly as produced, with the ruleset and policy hashes."""

    __tablename__ = "assessments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"),
                                            index=True)
    decision: Mapped[str] = mapped_column(String(40), index=True)
    as_of: Mapped[str] = mapped_column(String(10))
    ruleset_sha256: Mapped[str] = mapped_column(String(64))
    policy_name: Mapped[str] = mapped_column(String(100))
    policy_sha256: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(40))
    document: Mapped[dict[str, object]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    # what a sign-off rests on (decision, findings, warnings, ruleset and policy): a re-screen
    # with the same fingerprint keeps the sign-off of the one before (web/signoff.py)
    findings_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Review(Base):
    """A staff note or a physician sign-off on one assessment."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"),
                                            index=True)
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessments.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(20))  # note | sign-off
    outcome: Mapped[str | None] = mapped_column(String(40), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # a standard sign-off reason (knowledge/signoff-reasons.yaml), besides the free text
    reason_code: Mapped[str | None] = mapped_column(String(60), nullable=True)


class LoginThrottleState(Base):
    """Failed sign-ins per key (``user:<name>``, ``ip:<address>``), shared by every server
    process through the database: the count, when the last failure was, and until when the
    next attempt waits."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    wait_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True),
                                                           nullable=True)


class AppSetting(Base):
    __tablename__ = "app_settings"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[str] = mapped_column(String(500))


class AuditHead(Base):
    """The chain's tip; updating this single row serialises appends across processes."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


class AuditEntry(Base):
    """Append-only, hash-chained: ``hash`` covers this row's canonical JSON and ``prev_hash``."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(80))
    target: Mapped[str | None] = mapped_column(String(120), nullable=True)
    details: Mapped[dict[str, object]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
