"""Publishing canonical events to ingest as an internal system does: signed batches."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import orjson

from arbor_ingest.signing import sign
from arbor_shared.events import ClockAdvanced, EventData

_IDS = uuid.UUID("6f1d7b1e-3f5c-4c43-8a8e-0b7c2d9e4a10")
_RETRYABLE = {429, 502, 503, 504}


def event_id(data: EventData) -> str:
    """A stable id from the event's content, so a replay is accepted only once."""
    return str(uuid.uuid5(_IDS, f"{data.event_type}:{data.model_dump_json()}"))


@dataclass
class PublishStats:
    accepted: int = 0
    duplicate: int = 0
    rejected: list[dict[str, object]] = field(default_factory=list)
    simulated_now: datetime | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def sent(self) -> int:
        return self.accepted + self.duplicate + len(self.rejected)

    def rate(self) -> float:
        return self.sent / max(time.monotonic() - self.started, 1e-9)


class Gate(Protocol):
    async def wait_for_services(self) -> None: ...


class IngestPublisher:
    """Posts events to ``/v1/events:batch`` with the publisher's signature."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        key_id: str,
        secret: str,
        batch_size: int = 500,
    ) -> None:
        self._client = client
        self._key_id = key_id
        self._secret = secret
        self._batch_size = batch_size
        self.stats = PublishStats()

    async def publish(
        self,
        events: Iterable[EventData],
        *,
        speed: float | None = None,
        gate: Gate | None = None,
    ) -> PublishStats:
        """Send every event in order.

        With ``speed``, simulated time runs at most that many seconds per real
        second; with ``gate``, each clock advance also waits for the services to
        catch up with the events before it.
        """
        batch: list[EventData] = []
        pace = Pace(speed)
        for data in events:
            batch.append(data)
            if isinstance(data, ClockAdvanced):
                self.stats.simulated_now = data.now
                await self._flush(batch)
                await pace.until(data.now)
                if gate is not None:
                    await gate.wait_for_services()
            elif len(batch) >= self._batch_size:
                await self._flush(batch)
        await self._flush(batch)
        return self.stats

    async def _flush(self, batch: list[EventData]) -> None:
        if not batch:
            return
        body = orjson.dumps(
            {
                "events": [
                    {"id": event_id(e), "type": e.event_type, "data": _data(e)}
                    for e in batch
                ]
            }
        )
        result = await self._post(body)
        self.stats.accepted += result.get("accepted", 0)
        self.stats.duplicate += result.get("duplicate", 0)
        self.stats.rejected.extend(
            r for r in result.get("results", []) if r.get("status") == "rejected"
        )
        batch.clear()

    async def _post(self, body: bytes) -> dict[str, Any]:
        delay = 0.2
        while True:
            headers = sign(body, self._key_id, self._secret, datetime.now(UTC))
            headers["Content-Type"] = "application/json"
            response = await self._client.post(
                "/v1/events:batch", content=body, headers=headers
            )
            if response.status_code not in _RETRYABLE:
                response.raise_for_status()
                decoded: dict[str, Any] = response.json()
                return decoded
            wait = float(response.headers.get("Retry-After", delay))
            await asyncio.sleep(wait)
            delay = min(delay * 2, 10.0)


def _data(event: EventData) -> object:
    return orjson.loads(event.model_dump_json())


@dataclass
class Pace:
    """Keeps simulated time from running faster than ``speed`` times real time."""

    speed: float | None
    origin: tuple[datetime, float] | None = None

    async def until(self, now: datetime) -> None:
        """Sleep until simulated ``now`` is due; never hurry to make up lost time."""
        if not self.speed:
            return
        real_now = time.monotonic()
        simulated_start, real_start = self.origin or (now, real_now)
        due = real_start + (now - simulated_start).total_seconds() / self.speed
        if due > real_now:
            await asyncio.sleep(due - real_now)
        else:
            # Behind the schedule (a slow request, a wait for the services): the
            # schedule starts again from here, or the feed would rush to catch up
            # in a burst faster than ``speed``.
            self.origin = (now, real_now)
