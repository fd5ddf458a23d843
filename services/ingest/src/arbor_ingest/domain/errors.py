"""Errors the ingest domain raises; the HTTP layer maps each to one status."""

from __future__ import annotations


class IngestError(Exception):
    """Base of every ingest domain error; the message is shown to the caller."""


class EventRejectedError(IngestError):
    """The event is well-formed JSON but breaks a rule; the message names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class DuplicateEventError(IngestError):
    """The same event id was accepted before with a different body."""
