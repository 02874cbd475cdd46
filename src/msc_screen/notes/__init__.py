"""Clinical notes: concept mentions with assertion context (negated, historical, family,
hypothetical, uncertain), section-aware, for the engine's ``kind: note`` criteria and the
``msc-screen notes`` commands."""

from __future__ import annotations

from functools import lru_cache

from .context import Assertion
from .extractor import Extractor, build_extractor, locate
from .vocabulary import lint_vocabulary, load_vocabularies

__all__ = ["Assertion", "Extractor", "build_extractor", "get_extractor", "lint_vocabulary",
           "load_vocabularies", "locate"]


@lru_cache(maxsize=1)
def get_extractor() -> Extractor:
    """The process-wide notes extractor (vocabulary and triggers compiled once)."""
    return build_extractor()
