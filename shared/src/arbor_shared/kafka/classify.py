"""Which failures are worth retrying and which records are poison."""

from __future__ import annotations

import asyncio

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from sqlalchemy import exc as sa_exc


class PoisonRecordError(ValueError):
    """A record that will never succeed: it goes to the dead-letter topic."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


_TRANSIENT_DRIVER_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.QueryCanceledError,
    asyncpg.InterfaceError,
)


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same work later can succeed (an outage, a conflict)."""
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        return is_transient(exc.orig) if exc.orig is not None else False
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.InterfaceError):
        return True
    return isinstance(
        exc,
        (
            *_TRANSIENT_DRIVER_ERRORS,
            OSError,
            asyncio.TimeoutError,
            KafkaConnectionError,
            KafkaTimeoutError,
        ),
    ) or (exc.__cause__ is not None and is_transient(exc.__cause__))
