"""Tables. Each door adds its own models here (additively) plus an Alembic revision."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class CdsFeedback(Base):
    """One outcome an EHR reported for a card (CDS Hooks feedback); no patient data."""

    __tablename__ = "cds_feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service_id: Mapped[str] = mapped_column(String(100), index=True)
    card_uuid: Mapped[str] = mapped_column(String(100), index=True)
    outcome: Mapped[str] = mapped_column(String(20))
    outcome_timestamp: Mapped[str | None] = mapped_column(String(40), nullable=True)
    accepted_suggestions: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    override_reason: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    client_iss: Mapped[str | None] = mapped_column(String(500), nullable=True)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class CdsJwtUse(Base):
    """A client JWT already accepted (iss, jti) until it expires: replay protection shared
    by all worker processes."""

    __tablename__ = "cds_jwt_use"

    iss: Mapped[str] = mapped_column(String(500), primary_key=True)
    jti: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class CdsCall(Base):
    """One CDS Hooks call (issue 13: an audit of every call): who asked (EHR ``iss``, tenant,
    client ``sub``, ``userId``), for which patient and hook, what data the screening had, and
    what went back. The patient id is kept here, in the store, never in logs."""

    __tablename__ = "cds_calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    service_id: Mapped[str] = mapped_column(String(100), index=True)
    hook: Mapped[str] = mapped_column(String(40))
    hook_instance: Mapped[str | None] = mapped_column(String(100), nullable=True)
    iss: Mapped[str | None] = mapped_column(String(500), nullable=True)
    tenant: Mapped[str | None] = mapped_column(String(200), nullable=True)
    sub: Mapped[str | None] = mapped_column(String(200), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    patient_id: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    status: Mapped[int] = mapped_column(Integer)  # the HTTP status answered
    decision: Mapped[str | None] = mapped_column(String(40), nullable=True)
    coverage: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    cards: Mapped[list[dict[str, object]] | None] = mapped_column(JSON, nullable=True)
    duration_ms: Mapped[float | None] = mapped_column(Float, nullable=True)


class CdsCallCard(Base):
    """One (card, rule) a call returned: what feedback joins on (``card_uuid``) to give
    fired / accepted / overridden per rule."""

    __tablename__ = "cds_call_cards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(Integer, ForeignKey("cds_calls.id",
                                                             ondelete="CASCADE"), index=True)
    card_uuid: Mapped[str] = mapped_column(String(100), index=True)
    rule: Mapped[str] = mapped_column(String(100), index=True)
    indicator: Mapped[str] = mapped_column(String(20))
