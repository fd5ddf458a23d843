"""Errors the segmentation domain raises; the HTTP layer maps each to one status."""

from __future__ import annotations

from dataclasses import dataclass


class SegmentationError(Exception):
    """Base of every segmentation domain error; the message is shown to the caller."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a cohort definition: the rule and the reason."""

    rule: str
    reason: str


class DefinitionInvalidError(SegmentationError):
    """A cohort definition breaks a rule; every problem names its rule."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.rule}: {p.reason}" for p in problems))
        self.problems = problems


class NotFoundError(SegmentationError):
    """The named definition, activation or customer does not exist."""


class ConflictError(SegmentationError):
    """The request conflicts with the current state (e.g. an activation running)."""
