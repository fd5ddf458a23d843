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
    client: httpx.AsyncClient, idempotency_key: str | None
) -> httpx.Response:
    headers = sign(BODY, KEY_ID, SECRET, datetime.now(UTC))
    headers["content-type"] = "application/json"
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return await client.post("/v1/events", content=BODY, headers=headers)


# With a key the stored answer is replayed; without one the request went through the
# group commit, and the event id alone makes the retry a duplicate.
@pytest.mark.parametrize(
    ("idempotency_key", "answer", "replayed"),
    [("f1-retry", "accepted", "true"), (None, "duplicate", None)],
    ids=["with-key", "group-commit"],
)
async def test_crash_between_commit_and_answer_then_retry_yields_one_event(
    namespace: Namespace,
    tmp_path: Path,
    idempotency_key: str | None,
    answer: str,
    replayed: str | None,
) -> None:
    ingest = await ingest_process(namespace, tmp_path)
    try:
        ingest.start(extra_env={"ARBOR_FAILPOINTS": "ingest_after_commit"})
        await ingest.wait_ready()
        async with ingest_client(ingest) as client:
            with pytest.raises(httpx.TransportError):
                await _post(client, idempotency_key=idempotency_key)
        assert await ingest.wait_exit() == 137

        ingest.start()
        await ingest.wait_ready()
        async with ingest_client(ingest) as client:
            retry = await _post(client, idempotency_key=idempotency_key)
        await eventually(outbox_drained(ingest, namespace))
        published = await topic_ce_ids(
            namespace.kafka.bootstrap, invoices_topic(namespace)
        )
    finally:
        ingest.stop()

    assert retry.status_code == 202
    assert retry.json() == {"id": "ev-inv-1", "status": answer}
    assert retry.headers.get("Idempotent-Replayed") == replayed
    assert published == ["ev-inv-1"]
