"""When each invoice's cancellation commits, seen from outside the service.

A trigger the benchmark adds to dunning's ``steps`` table sends a NOTIFY for every
step cancelled because its invoice was settled. PostgreSQL delivers a notification
only when the sending transaction commits, so its arrival marks the commit of the
cancellation: a little late (it includes the delivery to this process), never early.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import asyncpg

from bench.common import percentile

_TRIGGER = """
CREATE FUNCTION "{schema}".bench_notify() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('{channel}', NEW.invoice_id);
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER bench_cancelled AFTER UPDATE ON "{schema}".steps FOR EACH ROW
  WHEN (NEW.state = 'cancelled' AND NEW.cancel_reason = 'settled')
  EXECUTE FUNCTION "{schema}".bench_notify();
"""


class Cancellations:
    """The ``perf_counter`` moment each invoice's first cancellation committed."""

    def __init__(self, expected: int) -> None:
        self.seen_at: dict[str, float] = {}
        self._expected = expected
        self._everyone: asyncio.Future[None] | None = None
        self._connection: asyncpg.Connection | None = None

    async def start(self, database_url: str, schema: str) -> None:
        """Install the trigger in ``schema`` and start listening."""
        self._everyone = asyncio.get_running_loop().create_future()
        self._connection = await asyncpg.connect(plain_url(database_url))
        await self._connection.execute(_TRIGGER.format(schema=schema, channel=schema))
        await self._connection.add_listener(schema, self._arrived)

    async def wait(self, seconds: float) -> bool:
        """Wait until every expected invoice was seen; False if time ran out."""
        assert self._everyone is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._everyone), seconds)
        return self._everyone.done()

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    def _arrived(self, *args: object) -> None:
        self.seen_at.setdefault(str(args[-1]), time.perf_counter())
        everyone = self._everyone
        if len(self.seen_at) >= self._expected and everyone and not everyone.done():
            everyone.set_result(None)


def summary(latencies_ms: list[float]) -> dict[str, float]:
    """The percentiles the benchmark reports, in milliseconds."""
    return {
        "p50_ms": round(percentile(latencies_ms, 0.5), 1),
        "p90_ms": round(percentile(latencies_ms, 0.9), 1),
        "p99_ms": round(percentile(latencies_ms, 0.99), 1),
        "max_ms": round(max(latencies_ms, default=float("nan")), 1),
    }


async def drop_schemas(database_url: str, *schemas: str) -> None:
    connection = await asyncpg.connect(plain_url(database_url))
    try:
        for schema in schemas:
            await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await connection.close()


def plain_url(database_url: str) -> str:
    """The SQLAlchemy URL the services take, as asyncpg wants it."""
    return database_url.replace("+asyncpg", "")
