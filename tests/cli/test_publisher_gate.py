"""The publisher asks its gate before every clock step, after the step was sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import orjson

from arbor_cli.publisher import IngestPublisher
from arbor_shared.events import ClockAdvanced, EventData, InvoiceIssued
from tests.samples import issued


class RecordingIngest:
    """Accepts every batch and remembers the event types in the order received."""

    def __init__(self) -> None:
        self.received: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        events = orjson.loads(request.content)["events"]
        self.received.extend(e["type"] for e in events)
        return httpx.Response(200, json={"accepted": len(events), "results": []})


class RecordingGate:
    """Notes how much ingest had received each time the feed asked to go on."""

    def __init__(self, ingest: RecordingIngest) -> None:
        self._ingest = ingest
        self.seen_at_wait: list[list[str]] = []

    async def wait_for_services(self) -> None:
        self.seen_at_wait.append(list(self._ingest.received))


def _day(start: datetime, days: int, invoice: InvoiceIssued) -> list[EventData]:
    return [invoice, ClockAdvanced(now=start + timedelta(days=days))]


async def test_publisher_waits_at_each_clock_step_with_the_step_already_sent() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    events = [
        *_day(start, 1, issued("inv-1")),
        *_day(start, 2, issued("inv-2")),
        issued("inv-3"),
    ]
    ingest = RecordingIngest()
    gate = RecordingGate(ingest)
    transport = httpx.MockTransport(ingest)

    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as c:
        publisher = IngestPublisher(c, key_id="k", secret="s", batch_size=100)
        stats = await publisher.publish(events, gate=gate)

    assert stats.accepted == 5
    assert [len(seen) for seen in gate.seen_at_wait] == [2, 4]
    assert all(seen[-1] == "ClockAdvanced" for seen in gate.seen_at_wait)
