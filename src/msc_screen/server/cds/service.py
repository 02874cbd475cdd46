"""CDS Hooks service state shared by the routes (placeholder, filled in next commit)."""

from __future__ import annotations

from ...store import Database
from ..config import Settings


class CdsService:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db

    async def aclose(self) -> None:
        return None
