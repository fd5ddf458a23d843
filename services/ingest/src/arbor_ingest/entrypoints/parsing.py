"""Strict parsing of submitted events into the canonical models.

Data is validated as JSON in strict mode: ``true`` or ``"100"`` is not an amount, and
neither is ``256.0`` — an integral float is refused like any other float, because a
publisher sending floats for money has a bug that would one day send ``0.1 + 0.2``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from arbor_ingest.entrypoints.schemas import ACCEPTED_TYPES, EventCreate
from arbor_shared.events import ClockAdvanced, EventData, model_for

MAX_MINOR = 10**15
"""The largest amount accepted, in minor units: far above any invoice, far below
what PostgreSQL's BIGINT can sum."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a submission: where, and why."""

    field: str
    reason: str
    kind: str = "invalid"
    loc: tuple[int | str, ...] = ()
    """Where in the body, as FastAPI reports it; empty when only ``field`` is known."""

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


class InvalidSubmissionError(ValueError):
    """The submission breaks the contract; ``problems`` name every bad field."""

    def __init__(self, problems: list[Problem], event_id: str | None = None) -> None:
        super().__init__("; ".join(f"{p.field}: {p.reason}" for p in problems))
        self.problems = problems
        self.event_id = event_id


def load_json(body: bytes) -> Any:
    """The request body as JSON; refuse anything else."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidSubmissionError(
            [Problem("body", f"not valid JSON: {exc}", "json_invalid")]
        ) from None


def parse_event(
    raw: object, prefix: str = "", *, clock: bool = False
) -> tuple[str, EventData]:
    """One submitted event as (event id, canonical data).

    ``ClockAdvanced`` is accepted only with ``clock``: from a publisher allowed to move
    simulated time (the ``clock:write`` scope).
    """
    try:
        submission = EventCreate.model_validate(raw)
    except ValidationError as exc:
        raise InvalidSubmissionError(_problems(exc, prefix, EventCreate, ())) from None
    if submission.type not in ACCEPTED_TYPES and not (
        clock and submission.type == ClockAdvanced.event_type
    ):
        raise InvalidSubmissionError(
            [Problem(f"{prefix}type", _unknown_type(submission.type), "unknown_type")],
            submission.id,
        )
    model = model_for(submission.type)
    oversized = list(_oversized(submission.data, f"{prefix}data"))
    if oversized:
        raise InvalidSubmissionError(oversized, submission.id)
    try:
        data = model.model_validate_json(orjson.dumps(submission.data))
    except ValidationError as exc:
        problems = _problems(exc, f"{prefix}data.", model, ("data",))
        raise InvalidSubmissionError(problems, submission.id) from None
    return submission.id, data


def _unknown_type(name: str) -> str:
    return f"{name!r} is not an event ingest accepts; one of {sorted(ACCEPTED_TYPES)}"


def _oversized(value: object, path: str) -> list[Problem]:
    if isinstance(value, dict):
        return [
            p
            for key, item in value.items()
            for p in _oversized(item, f"{path}.{key}")
            + _too_large(key, item, f"{path}.{key}")
        ]
    if isinstance(value, list):
        return [
            p for n, item in enumerate(value) for p in _oversized(item, f"{path}[{n}]")
        ]
    return []


def _too_large(key: str, value: object, path: str) -> list[Problem]:
    if key.endswith("_minor") and type(value) is int and abs(value) > MAX_MINOR:
        return [Problem(path, f"must not exceed {MAX_MINOR} minor units", "too_large")]
    return []


def _problems(
    exc: ValidationError,
    prefix: str,
    model: type[Any],
    loc: tuple[int | str, ...],
) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        field = _field(error["loc"], error["msg"], model)
        problems.append(
            Problem(
                _join(prefix, field),
                error["msg"].removeprefix("Value error, "),
                error["type"],
                (*loc, *(error["loc"] or ((field,) if field else ()))),
            )
        )
    return problems


def _field(loc: tuple[int | str, ...], message: str, model: type[Any]) -> str:
    if loc:
        return "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc
        ).lstrip(".")
    # A rule over several fields reports no location; the field it names first in
    # its message is the one to fix.
    named = [
        (match.start(), name)
        for name in model.model_fields
        if (match := re.search(rf"\b{name}\b", message))
    ]
    return min(named)[1] if named else ""


def _join(prefix: str, field: str) -> str:
    return (prefix + field).rstrip(".") or "body"
