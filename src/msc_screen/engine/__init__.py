"""The screening engine: a pure function of (patient record, compiled ruleset, as-of date,
notes extractor) -> Assessment. It never reads files, the clock or the network."""

from .evaluate import NotesExtractor, evaluate

__all__ = ["NotesExtractor", "evaluate"]
