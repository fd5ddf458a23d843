"""Errors the ingest domain raises; the HTTP layer maps each to one status."""

from __future__ import annotations


class IngestError(Exception):
    """Base of every ingest domain error; the message is shown to the caller."""


class EventRejectedError(IngestError):
    """The event is well-formed but breaks a rule; ``field`` names where."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class DuplicateEventError(IngestError):
    """The same event id was accepted before with a different body."""


class AuthenticationFailedError(IngestError):
    """The request is not signed by a known publisher (401)."""


class PermissionDeniedError(IngestError):
    """The publisher is known but lacks the scope the route needs (403)."""


class RateLimitedError(IngestError):
    """The publisher has spent its request budget (429)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limit reached; retry in {retry_after:.2f} s")
        self.retry_after = retry_after


class IdempotencyKeyReusedError(IngestError):
    """The Idempotency-Key was used before with a different request body (422)."""
