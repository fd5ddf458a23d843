"""Answering once per ``Idempotency-Key``: replay the first answer on a retry.

The stored answer commits in the same transaction as the events it reports, so a
client whose connection broke after the commit (RELIABILITY F1) gets the same answer
on retry and the events stay stored once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import StringConstraints, TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from arbor_ingest.adapters import idempotency
from arbor_ingest.adapters.idempotency import StoredAnswer
from arbor_ingest.domain.errors import IdempotencyKeyReusedError
from arbor_ingest.domain.publishers import Publisher
from arbor_shared.failpoints import failpoint
from arbor_shared.runtime import ServiceRuntime

Work = Callable[[AsyncSession], Awaitable[tuple[int, dict[str, Any]]]]

REPLAYED_HEADER = "Idempotent-Replayed"
KEY_HEADER = "Idempotency-Key"
_KEY_MIN, _KEY_MAX = 1, 255
_KEY_DESCRIPTION = (
    "Retry safely: the same key and body replay the first answer; the same key "
    "with another body is a 422. Answers are kept for the replay window, 7 days "
    "unless the deployment sets another (ARBOR_INGEST_IDEMPOTENCY_RETENTION_HOURS); "
    "a retry after it is a new request, whose events are answered as duplicates "
    "by their ids"
)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=KEY_HEADER,
        description=_KEY_DESCRIPTION,
        min_length=_KEY_MIN,
        max_length=_KEY_MAX,
    ),
]
"""The optional Idempotency-Key header, for routes that resolve dependencies."""

_KEY = TypeAdapter(
    Annotated[str, StringConstraints(min_length=_KEY_MIN, max_length=_KEY_MAX)]
)

KEY_PARAMETER: dict[str, Any] = {
    "name": KEY_HEADER,
    "in": "header",
    "required": False,
    "description": _KEY_DESCRIPTION,
    "schema": {
        "anyOf": [
            {"type": "string", "minLength": _KEY_MIN, "maxLength": _KEY_MAX},
            {"type": "null"},
        ],
        "title": KEY_HEADER,
        "description": _KEY_DESCRIPTION,
    },
}
"""The header as ``IdempotencyKey`` documents it, for a route that reads it itself."""


def key_of(request: Request) -> str | None:
    """The request's Idempotency-Key, refused as ``IdempotencyKey`` would refuse it."""
    key = request.headers.get(KEY_HEADER)
    if key is None:
        return None
    try:
        return _KEY.validate_python(key)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise RequestValidationError(
            [{**error, "loc": ("header", KEY_HEADER)} for error in errors]
        ) from None


class Answer(JSONResponse):
    """A JSON answer rendered by orjson: a batch's answer holds thousands of items."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class _RacedError(Exception):
    """A concurrent request with the same key committed first."""


async def respond(
    runtime: ServiceRuntime,
    publisher: Publisher,
    key: str | None,
    body: bytes,
    work: Work,
) -> JSONResponse:
    """Run ``work`` in one transaction and answer only after it committed."""
    digest = hashlib.sha256(body).hexdigest()
    if key is not None and (replay := await _replay(runtime, publisher, key, digest)):
        return replay
    try:
        async with runtime.sessions() as session, session.begin():
            status_code, payload = await work(session)
            # Only successes are kept: a refused request stored nothing, so the
            # publisher may correct it and send it again under the same key.
            answer = StoredAnswer(digest, status_code, payload)
            if key is not None and not await idempotency.add(
                session, publisher=publisher.key_id, key=key, answer=answer
            ):
                raise _RacedError
    except _RacedError:
        replay = await _replay(runtime, publisher, key or "", digest)
        assert replay is not None
        return replay
    # RELIABILITY F1: dying here, committed but unanswered, must be harmless.
    failpoint("ingest_after_commit")
    return Answer(payload, status_code=status_code)


async def _replay(
    runtime: ServiceRuntime, publisher: Publisher, key: str, digest: str
) -> JSONResponse | None:
    async with runtime.sessions() as session:
        stored = await idempotency.get(session, publisher=publisher.key_id, key=key)
    if stored is None:
        return None
    if stored.request_sha256 != digest:
        raise IdempotencyKeyReusedError(
            f"Idempotency-Key {key!r} was used before with a different request body"
        )
    return Answer(
        stored.response,
        status_code=stored.status_code,
        headers={REPLAYED_HEADER: "true"},
    )
