"""Idempotency-Key answers are replayed within their window and deleted after it."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from fastapi import FastAPI

from arbor_ingest.adapters.tables import idempotency_keys
from arbor_shared import topics
from arbor_shared.runtime import ServiceRuntime
from tests.ingest.conftest import SignedClient
from tests.ingest.test_api import invoice, published_ids


async def test_answers_past_the_window_are_purged_and_their_events_stay_unique(
    client: SignedClient, app: FastAPI
) -> None:
    runtime: ServiceRuntime = app.state.runtime
    old, recent = invoice("inv-old") | {"id": "ev-old"}, invoice("inv-new")
    await client.post("/v1/events", old, headers={"Idempotency-Key": "old"})
    await client.post("/v1/events", recent, headers={"Idempotency-Key": "recent"})
    await _age(runtime, "old", timedelta(days=8))

    purged = await app.state.key_retention.purge_once(runtime)
    retried = await client.post("/v1/events", old, headers={"Idempotency-Key": "old"})
    replayed = await client.post(
        "/v1/events", recent, headers={"Idempotency-Key": "recent"}
    )

    assert purged == 1
    assert "Idempotent-Replayed" not in retried.headers
    assert retried.json() == {"id": "ev-old", "status": "duplicate"}
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert (await published_ids(app, topics.INVOICES)).count("ev-old") == 1


async def _age(runtime: ServiceRuntime, key: str, by: timedelta) -> None:
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            sa.update(idempotency_keys)
            .where(idempotency_keys.c.key == key)
            .values(created_at=idempotency_keys.c.created_at - by)
        )
