"""Simulated time enters through ingest, only from publishers allowed to move it."""

from __future__ import annotations

import orjson
from fastapi import FastAPI

from arbor_shared import topics
from tests.conftest import Namespace
from tests.ingest.conftest import CLOCK, SignedClient
from tests.support import eventually, read_topic, relayed

TICK = {
    "id": "tick-2025-01-02",
    "type": "ClockAdvanced",
    "data": {"now": "2025-01-02T00:00:00+00:00"},
}


async def test_clock_tick_from_a_publisher_without_the_scope_is_rejected(
    client: SignedClient,
) -> None:
    response = await client.post("/v1/events", TICK)

    assert response.status_code == 422
    assert "ClockAdvanced" in response.text


async def test_clock_tick_is_published_without_touching_the_ledger(
    client: SignedClient, namespace: Namespace, app: FastAPI
) -> None:
    response = await client.post("/v1/events", TICK, key=CLOCK)

    assert response.status_code == 202, response.text
    (record,) = await read_topic(
        namespace.kafka.bootstrap, f"{namespace.name}.{topics.CLOCK}", 1
    )
    assert orjson.loads(record.value)["now"] == "2025-01-02T00:00:00Z"
    runtime = app.state.runtime

    async def counted() -> bool:
        # The relay counts a round's records together, once Kafka has them all.
        return sum(relayed(runtime).values()) > 0

    await eventually(counted)
    assert relayed(runtime) == {runtime.topics(topics.CLOCK): 1}
