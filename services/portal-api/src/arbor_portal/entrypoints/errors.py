"""The one place where domain errors and bad input become HTTP answers."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from arbor_portal.domain.errors import (
    ConflictError,
    NotFoundError,
    PortalError,
    RuleViolationError,
    UnlinkedIdentityError,
)

_STATUS: dict[type[PortalError], int] = {
    NotFoundError: status.HTTP_404_NOT_FOUND,
    UnlinkedIdentityError: status.HTTP_403_FORBIDDEN,
    ConflictError: status.HTTP_409_CONFLICT,
}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is not valid JSON"},
    401: {"description": "Missing, expired or otherwise invalid bearer token"},
    403: {"description": "The identity is not linked to a customer account"},
    422: {"description": "A field is invalid; `detail` names it (input never echoed)"},
    429: {
        "description": "Rate limit reached for this account",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}
TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {"description": "The body exceeds the size limit"}
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such object on your account (others' ids look the same)"}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "The invoice's state does not allow this action now"}
}


def install(app: FastAPI) -> None:
    """Register the portal's error mapping on ``app``."""
    app.add_exception_handler(PortalError, _portal_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)


async def _portal_error(_request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, RuleViolationError):
        problem = {"loc": [exc.location, exc.field], "msg": exc.reason, "type": "rule"}
        return JSONResponse(
            {"detail": [problem]}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
        )
    code = next(
        (code for kind, code in _STATUS.items() if isinstance(exc, kind)),
        status.HTTP_400_BAD_REQUEST,
    )
    return JSONResponse({"detail": str(exc)}, status_code=code)


async def _invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    # The rejected value is left out: it may be the card number the customer pasted,
    # and answers end up in browser histories, proxies and support tickets.
    assert isinstance(exc, RequestValidationError)
    detail = [
        {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
        for error in exc.errors()
    ]
    return JSONResponse(
        {"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
    )
