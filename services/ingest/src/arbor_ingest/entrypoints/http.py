"""Ingest's canonical event routes: thin, parse, call one handler, answer.

Bodies are read raw: the publisher's signature covers the exact bytes, and a batch's
items are validated one by one so that a bad item never blocks the good ones.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_ingest import handlers
from arbor_ingest.domain.errors import EventRejectedError
from arbor_ingest.domain.publishers import CLOCK_SCOPE, Publisher
from arbor_ingest.entrypoints import submissions
from arbor_ingest.entrypoints.auth import EVENTS_WRITE, EventsWriter, admit
from arbor_ingest.entrypoints.group_commit import SingleEventCommitter
from arbor_ingest.entrypoints.idempotent import (
    KEY_PARAMETER,
    Answer,
    IdempotencyKey,
    key_of,
    respond,
)
from arbor_ingest.entrypoints.parsing import (
    InvalidSubmissionError,
    Problem,
    load_json,
    parse_event,
)
from arbor_ingest.entrypoints.schemas import BatchRead, ErrorRead, EventRead
from arbor_shared.events import EventData
from arbor_shared.http import Runtime
from arbor_shared.runtime import ServiceRuntime

router = APIRouter(prefix="/v1", tags=["events"])

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
    openapi_extra=_body("EventCreate") | {"parameters": [KEY_PARAMETER]},
)
async def post_event(request: Request) -> JSONResponse:
    """Accept one canonical event; a 2xx means it is committed and will be published."""
    # The busiest route resolves no dependencies: FastAPI's resolution of them cost
    # more CPU than the route's own work. The order stays a dependency's: the
    # signature is checked before any header or the body is looked at.
    publisher = await admit(request, EVENTS_WRITE)
    idempotency_key = key_of(request)
    runtime: ServiceRuntime = request.app.state.runtime
    single_events: SingleEventCommitter = request.app.state.single_events
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
            results[n] = _outcome(n, outcome)
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


def _outcome(n: int, outcome: handlers.Acceptance) -> dict[str, Any]:
    if outcome.status != "rejected":
        # The answer to nearly every item of a batch: built without the detour
        # through problems, a few microseconds each of thousands.
        return {
            "index": n,
            "id": outcome.event_id,
            "status": outcome.status,
            "errors": [],
        }
    field = outcome.field or "data"
    path = f"events[{n}].{field if field == 'id' else 'data.' + field}"
    problem = Problem(path, outcome.reason or "rejected", "rejected")
    return _result(n, outcome.event_id, "rejected", [problem])


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
    counts = Counter(r["status"] for r in ordered)
    return {
        "accepted": counts["accepted"],
        "duplicate": counts["duplicate"],
        "rejected": counts["rejected"],
        "results": ordered,
    }
