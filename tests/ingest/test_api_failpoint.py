"""RELIABILITY F1: ingest dies after its commit, before it answers; the client retries.

A real process with the ``ingest_after_commit`` failpoint armed: the retry with the
same Idempotency-Key gets the first answer, a retry without a key (its event committed
in a group) is a duplicate, and either way one event is stored and published.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest

from arbor_ingest.signing import sign
from tests.conftest import Namespace
from tests.faults.harness import (
    KEY_ID,
    SECRET,
    ingest_client,
    ingest_process,
    invoice,
    invoices_topic,
    outbox_drained,
    topic_ce_ids,
)
from tests.support import eventually

BODY = orjson.dumps(invoice(1))


async def _post(
    client: httpx.AsyncClient, idempotency_key: str | None = "f1-retry"
) -> httpx.Response:
    headers = sign(BODY, KEY_ID, SECRET, datetime.now(UTC))
    headers["content-type"] = "application/json"
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return await client.post("/v1/events", content=BODY, headers=headers)


async def test_crash_between_commit_and_answer_then_retry_yields_one_event(
    namespace: Namespace, tmp_path: Path
) -> None:
    ingest = await ingest_process(namespace, tmp_path)
    try:
        ingest.start(extra_env={"ARBOR_FAILPOINTS": "ingest_after_commit"})
        await ingest.wait_ready()
        async with ingest_client(ingest) as client:
            with pytest.raises(httpx.TransportError):
                await _post(client)
        assert await ingest.wait_exit() == 137

        ingest.start()
        await ingest.wait_ready()
        async with ingest_client(ingest) as client:
            retry = await _post(client)
        await eventually(outbox_drained(ingest, namespace))
        published = await topic_ce_ids(
            namespace.kafka.bootstrap, invoices_topic(namespace)
        )
    finally:
        ingest.stop()

    assert retry.status_code == 202
    assert retry.json() == {"id": "ev-inv-1", "status": "accepted"}
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert published == ["ev-inv-1"]


async def test_crash_after_a_group_commit_then_retry_is_a_duplicate_published_once(
    namespace: Namespace, tmp_path: Path
) -> None:
    ingest = await ingest_process(namespace, tmp_path)
    try:
        ingest.start(extra_env={"ARBOR_FAILPOINTS": "ingest_after_commit"})
        await ingest.wait_ready()
        async with ingest_client(ingest) as client:
            with pytest.raises(httpx.TransportError):
                await _post(client, idempotency_key=None)
        assert await ingest.wait_exit() == 137

        ingest.start()
        await ingest.wait_ready()
        async with ingest_client(ingest) as client:
            retry = await _post(client, idempotency_key=None)
        await eventually(outbox_drained(ingest, namespace))
        published = await topic_ce_ids(
            namespace.kafka.bootstrap, invoices_topic(namespace)
        )
    finally:
        ingest.stop()

    assert retry.status_code == 202
    assert retry.json() == {"id": "ev-inv-1", "status": "duplicate"}
    assert published == ["ev-inv-1"]
