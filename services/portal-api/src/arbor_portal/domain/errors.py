"""Errors the portal domain raises; the HTTP layer maps each to one status."""

from __future__ import annotations


class PortalError(Exception):
    """Base of every portal domain error; the message is shown to the caller."""


class NotFoundError(PortalError):
    """Nothing of that kind with that id belongs to the caller.

    Raised alike for ids that do not exist and ids of another customer, so an answer
    never reveals that someone else's object exists (RELIABILITY P8).
    """

    def __init__(self, kind: str, identifier: str) -> None:
        super().__init__(f"{kind} {identifier!r} not found")


class UnlinkedIdentityError(PortalError):
    """The token is valid but its subject is linked to no customer."""


class ConflictError(PortalError):
    """The action clashes with the account's current state; the message says how."""


class RuleViolationError(PortalError):
    """A field's value breaks a business rule; carries the field for the 422 body."""

    def __init__(self, field: str, reason: str, *, location: str = "body") -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.location = location
