"""The one place where ingest's errors become HTTP answers."""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from arbor_ingest.domain.errors import (
    AuthenticationFailedError,
    EventRejectedError,
    IngestError,
    PermissionDeniedError,
    RateLimitedError,
)
from arbor_ingest.entrypoints.parsing import InvalidSubmissionError, Problem

logger = logging.getLogger(__name__)

_STATUS: list[tuple[type[IngestError], int]] = [
    (AuthenticationFailedError, status.HTTP_401_UNAUTHORIZED),
    (PermissionDeniedError, status.HTTP_403_FORBIDDEN),
    (RateLimitedError, status.HTTP_429_TOO_MANY_REQUESTS),
]


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(IngestError, _ingest_error)  # type: ignore[arg-type]
    app.add_exception_handler(
        InvalidSubmissionError,
        _invalid_submission,  # type: ignore[arg-type]
    )


async def _ingest_error(request: Request, exc: IngestError) -> JSONResponse:
    if isinstance(exc, EventRejectedError):
        loc = ("id",) if exc.field == "id" else ("data", exc.field)
        field = ".".join(loc)
        return _unprocessable([Problem(field, exc.reason, "rejected", loc)])
    code = next(
        (c for kind, c in _STATUS if isinstance(exc, kind)),
        status.HTTP_422_UNPROCESSABLE_CONTENT,
    )
    headers: dict[str, str] = {}
    if isinstance(exc, AuthenticationFailedError):
        headers["WWW-Authenticate"] = 'ArborHMAC realm="ingest"'
    if isinstance(exc, RateLimitedError):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    logger.info("%s %s refused (%d): %s", request.method, request.url.path, code, exc)
    return JSONResponse({"detail": str(exc)}, status_code=code, headers=headers)


async def _invalid_submission(
    _request: Request, exc: InvalidSubmissionError
) -> JSONResponse:
    return _unprocessable(exc.problems)


def _unprocessable(problems: list[Problem]) -> JSONResponse:
    detail = [
        {
            "loc": ["body", *_loc(p)],
            "field": p.field,
            "msg": p.reason,
            "type": p.kind,
        }
        for p in problems
    ]
    return JSONResponse(
        {"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
    )


def _loc(problem: Problem) -> tuple[int | str, ...]:
    if problem.loc:
        return problem.loc
    return () if problem.field == "body" else (problem.field,)
