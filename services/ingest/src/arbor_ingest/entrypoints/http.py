"""Ingest's canonical event routes: thin, parse, call one handler, answer.

Bodies are read raw: the publisher's signature covers the exact bytes, and a batch's
items are validated one by one so that a bad item never blocks the good ones.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_ingest import handlers
from arbor_ingest.domain.errors import EventRejectedError
from arbor_ingest.domain.publishers import CLOCK_SCOPE, Publisher
from arbor_ingest.entrypoints import submissions
from arbor_ingest.entrypoints.auth import EventsWriter
from arbor_ingest.entrypoints.group_commit import SingleEvents
from arbor_ingest.entrypoints.idempotent import Answer, respond
from arbor_ingest.entrypoints.parsing import (
    InvalidSubmissionError,
    Problem,
    load_json,
    parse_event,
)
from arbor_ingest.entrypoints.schemas import BatchRead, ErrorRead, EventRead
from arbor_shared.events import EventData
from arbor_shared.http import Runtime

router = APIRouter(prefix="/v1", tags=["events"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Retry safely: the same key and body replay the first answer; "
        "the same key with another body is a 422. Answers are kept for the replay "
        "window, 7 days unless the deployment sets another "
        "(ARBOR_INGEST_IDEMPOTENCY_RETENTION_HOURS); a retry after it is a new "
        "request, whose events are answered as duplicates by their ids",
    ),
]

REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorRead, "description": "Not signed by a known publisher"},
    403: {"model": ErrorRead, "description": "The publisher lacks the scope"},
    413: {"model": ErrorRead, "description": "The body exceeds the size limit"},
    422: {"model": ErrorRead, "description": "Invalid; every bad field is named"},
    429: {"model": ErrorRead, "description": "Rate limit; see Retry-After"},
    503: {"model": ErrorRead, "description": "Database unavailable; nothing stored"},
}


def _body(schema: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ref}},
        }
    }


@router.post(
    "/events",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=EventRead,
    responses=REFUSALS,
    openapi_extra=_body("EventCreate"),
)
async def post_event(
    request: Request,
    runtime: Runtime,
    publisher: EventsWriter,
    single_events: SingleEvents,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Accept one canonical event; a 2xx means it is committed and will be published."""
    body = await request.body()
    # The one-pass parse is the common case; the item parser names what is wrong.
    fast = submissions.parse_one(body)
    event_id, data = fast or parse_event(load_json(body), clock=_moves_clock(publisher))
    if idempotency_key is None:
        # Nothing is stored for the request itself, so it may share a transaction
        # with the others in flight; a keyed answer is stored with its events.
        result = await single_events.accept(publisher.key_id, event_id, data)
        status_code, payload = _event_answer(result)
        return Answer(payload, status_code=status_code)

    async def accept(session: AsyncSession) -> tuple[int, dict[str, Any]]:
        (result,) = await handlers.accept_many(
            session, runtime.outbox, [(event_id, data)], publisher=publisher.key_id
        )
        return _event_answer(result)

    return await respond(runtime, publisher, idempotency_key, body, accept)


def _event_answer(result: handlers.Acceptance) -> tuple[int, dict[str, Any]]:
    if result.status == "rejected":
        raise EventRejectedError(result.field or "", result.reason or "rejected")
    return status.HTTP_202_ACCEPTED, {"id": result.event_id, "status": result.status}


@router.post(
    "/events:batch",
    status_code=status.HTTP_200_OK,
    response_model=BatchRead,
    responses=REFUSALS,
    openapi_extra=_body("BatchCreate"),
)
async def post_events_batch(
    request: Request,
    runtime: Runtime,
    publisher: EventsWriter,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Accept many canonical events in one transaction, with one result per event."""
    body = await request.body()
    limit = request.app.state.max_batch_events
    results: dict[int, dict[str, Any]] = {}
    fast = submissions.parse_batch(body, limit)
    if fast is not None:
        parsed = dict(enumerate(fast))
    else:
        events = _events(load_json(body), limit)
        parsed = _parse_items(events, results, clock=_moves_clock(publisher))

    async def accept(session: AsyncSession) -> tuple[int, dict[str, Any]]:
        outcomes = await handlers.accept_many(
            session, runtime.outbox, list(parsed.values()), publisher=publisher.key_id
        )
        for n, outcome in zip(parsed, outcomes, strict=True):
            problems = _problems(n, outcome)
            results[n] = _result(n, outcome.event_id, outcome.status, problems)
        return status.HTTP_200_OK, _summary(results)

    return await respond(runtime, publisher, idempotency_key, body, accept)


def _parse_items(
    events: list[Any], results: dict[int, dict[str, Any]], *, clock: bool
) -> dict[int, tuple[str, EventData]]:
    """Parse item by item, answering each bad one in ``results``."""
    parsed: dict[int, tuple[str, EventData]] = {}
    for n, raw in enumerate(events):
        try:
            parsed[n] = parse_event(raw, f"events[{n}].", clock=clock)
        except InvalidSubmissionError as exc:
            event_id = exc.event_id or _raw_id(raw)
            results[n] = _result(n, event_id, "rejected", exc.problems)
    return parsed


def _moves_clock(publisher: Publisher) -> bool:
    return CLOCK_SCOPE in publisher.scopes


def _events(payload: Any, limit: int) -> list[Any]:
    if not isinstance(payload, dict) or set(payload) != {"events"}:
        problem = Problem("body", 'must be an object with exactly one key, "events"')
        raise InvalidSubmissionError([problem])
    events = payload["events"]
    if not isinstance(events, list) or not 1 <= len(events) <= limit:
        problem = Problem("events", f"must be a list of 1 to {limit} events")
        raise InvalidSubmissionError([problem])
    return events


def _raw_id(raw: Any) -> str | None:
    event_id = raw.get("id") if isinstance(raw, dict) else None
    return event_id if isinstance(event_id, str) else None


def _problems(n: int, outcome: handlers.Acceptance) -> list[Problem]:
    if outcome.status != "rejected":
        return []
    field = outcome.field or "data"
    path = f"events[{n}].{field if field == 'id' else 'data.' + field}"
    return [Problem(path, outcome.reason or "rejected", "rejected")]


def _result(
    n: int, event_id: str | None, outcome: str, problems: list[Problem]
) -> dict[str, Any]:
    return {
        "index": n,
        "id": event_id,
        "status": outcome,
        "errors": [p.as_json() for p in problems],
    }


def _summary(results: dict[int, dict[str, Any]]) -> dict[str, Any]:
    ordered = [results[n] for n in sorted(results)]
    return {
        "accepted": sum(r["status"] == "accepted" for r in ordered),
        "duplicate": sum(r["status"] == "duplicate" for r in ordered),
        "rejected": sum(r["status"] == "rejected" for r in ordered),
        "results": ordered,
    }
