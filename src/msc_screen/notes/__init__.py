"""Clinical notes: concept mentions with assertion context (issue 5 builds the extractor)."""

from __future__ import annotations

from ..engine import NotesExtractor


def get_extractor() -> NotesExtractor | None:
    """The process-wide notes extractor, or None while none is available."""
    return None
