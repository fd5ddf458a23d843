"""Validating a whole submission in one pass, when nothing in it is wrong.

Each accepted event type gets a submission model (id, type, and data as the event's
own model); a batch is validated as one list of them, discriminated by type,
straight from the raw bytes. That is the common case, and it costs a fraction of
validating item by item. Whatever this pass refuses, and any body with a number
long enough to break the limit on amounts, goes to the item-by-item parser of
:mod:`arbor_ingest.entrypoints.parsing`, which names every problem: this pass never
decides that something is wrong, and accepts nothing that parser would refuse.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic import create_model as _create_model

from arbor_ingest.entrypoints.parsing import MAX_MINOR
from arbor_ingest.entrypoints.schemas import ACCEPTED_TYPES, EventCreate
from arbor_shared.events import EventData, model_for

_CONFIG = ConfigDict(extra="forbid", strict=True)


def _submission(event_type: str) -> Any:
    tag: Any = Literal[event_type]
    return _create_model(
        f"{event_type}Submission",
        __config__=_CONFIG,
        id=(str, EventCreate.model_fields["id"]),
        type=(tag, ...),
        data=(model_for(event_type), ...),
    )


# Simulated time (ClockAdvanced) is left to the item parser, which checks the scope.
_ANY: Any = Annotated[
    Union[tuple(_submission(t) for t in sorted(ACCEPTED_TYPES))],  # noqa: UP007
    Field(discriminator="type"),
]
_ONE: TypeAdapter[Any] = TypeAdapter(_ANY)
_BATCH: type[BaseModel] = _create_model(
    "BatchSubmission", __config__=_CONFIG, events=(list[_ANY], ...)
)

# An amount over MAX_MINOR has at least as many digits as MAX_MINOR; a body without
# such a run of digits cannot hold one. bytes.translate finds the run an order of
# magnitude faster than a regular expression.
_LONG = b"0" * len(str(MAX_MINOR))
_DIGITS = bytes(48 if 48 <= c <= 57 else 32 for c in range(256))


def parse_batch(body: bytes, limit: int) -> list[tuple[str, EventData]] | None:
    """The (event id, data) of each event, or None when the item parser must look."""
    if _LONG in body.translate(_DIGITS):
        return None
    try:
        batch: Any = _BATCH.model_validate_json(body)
    except ValidationError:
        return None
    if not 1 <= len(batch.events) <= limit:
        return None
    return [(item.id, item.data) for item in batch.events]


def parse_one(body: bytes) -> tuple[str, EventData] | None:
    """The (event id, data) of one event, or None when the item parser must look."""
    if _LONG in body.translate(_DIGITS):
        return None
    try:
        item = _ONE.validate_json(body)
    except ValidationError:
        return None
    return item.id, item.data
