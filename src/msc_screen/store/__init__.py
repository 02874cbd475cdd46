"""Persistence: SQLAlchemy models and Alembic migrations, SQLite by default, PostgreSQL too.

Clinical logic never lives here; the store only keeps what doors must remember (CDS feedback,
and the web app's accounts and saved screenings).
"""

from __future__ import annotations

from .db import Database, make_engine
from .migrate import migrate

__all__ = ["Database", "make_engine", "migrate"]
