"""What a loader raises when a file cannot be turned into text."""
from __future__ import annotations


class LoadError(ValueError):
    """The file cannot be turned into text; the message says why."""


class EmptyDocument(LoadError):
    """The file was read but holds no text (e.g. a scanned PDF without a text layer)."""
