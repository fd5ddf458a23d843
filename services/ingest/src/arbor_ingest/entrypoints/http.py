"""Ingest's HTTP routes: thin, parse, call one handler, map domain errors."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, HTTPException, Request, status
from pydantic import ValidationError

from arbor_ingest import handlers
from arbor_ingest.domain.errors import DuplicateEventError
from arbor_ingest.entrypoints.schemas import EventCreate, EventRead
from arbor_shared.events import EventData, model_for
from arbor_shared.http import Runtime

router = APIRouter(prefix="/v1", tags=["events"])


@router.post(
    "/events",
    status_code=status.HTTP_202_ACCEPTED,
    responses={422: {"description": "The event breaks the contract; fields named"}},
)
async def post_event(
    submission: EventCreate, request: Request, runtime: Runtime
) -> EventRead:
    """Accept one canonical event: durable once this answers 2xx."""
    data = parse_data(submission)
    body = await request.body()
    try:
        async with runtime.sessions() as session, session.begin():
            result = await handlers.accept_event(
                session, runtime.outbox, data, event_id=submission.id, body=body
            )
    except DuplicateEventError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return EventRead(id=result.event_id, status=result.status)


def parse_data(submission: EventCreate) -> EventData:
    """Validate ``data`` against the model of ``type``, as JSON, strictly."""
    try:
        model = model_for(submission.type)
    except LookupError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [{"loc": ["body", "type"], "msg": str(exc), "type": "unknown_event"}],
        ) from exc
    try:
        return model.model_validate_json(orjson.dumps(submission.data))
    except ValidationError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [
                {
                    "loc": ["body", "data", *error["loc"]],
                    "msg": error["msg"],
                    "type": error["type"],
                }
                for error in exc.errors(include_url=False, include_input=False)
            ],
        ) from exc
