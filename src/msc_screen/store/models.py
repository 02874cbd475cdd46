"""Tables. Each door adds its own models here (additively) plus an Alembic revision."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, DateTime, Float, Integer, String
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
