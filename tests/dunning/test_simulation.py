"""Back-tests through `POST /v1/policies:simulate`: a CSV, events or the topics."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from arbor_dunning.bootstrap import create_app
from arbor_shared.events import EventData
from tests.conftest import Namespace
from tests.data import IBM_CSV
from tests.dunning.conftest import Harness, customer, invoice, settled
from tests.support import create_topics, encode, produce

SAMPLE_LINES = IBM_CSV.read_text().splitlines()

# One invoice in New York that is never paid, one in Berlin paid the day after
# its courtesy reminder; both fall due on Monday 16 March 2026.
PAST: list[EventData] = [
    customer("cus-ny", time_zone="America/New_York", country="US"),
    invoice("inv-ny", "cus-ny"),
    customer("cus-de"),
    invoice("inv-de", "cus-de"),
    settled(invoice("inv-de", "cus-de"), datetime(2026, 3, 14, 10, tzinfo=UTC)),
]
# What the seeded default policy does with them: nine in the morning locally,
# which is 13:00 UTC in New York (already on daylight time) and 08:00 in Berlin.
PLANNED = {
    "inv-ny": [
        ("courtesy", datetime(2026, 3, 13, 13, tzinfo=UTC)),
        ("due_today", datetime(2026, 3, 16, 13, tzinfo=UTC)),
        ("plan_offer", datetime(2026, 3, 23, 13, tzinfo=UTC)),
        ("late_fee", datetime(2026, 3, 30, 13, tzinfo=UTC)),
        ("escalation", datetime(2026, 4, 15, 13, tzinfo=UTC)),
    ],
    "inv-de": [("courtesy", datetime(2026, 3, 13, 8, tzinfo=UTC))],
}


async def _simulate(api: httpx.AsyncClient, **request: Any) -> dict[str, Any]:
    default = (await api.get("/v1/policies/default")).json()["policy"]
    response = await api.post(
        "/v1/policies:simulate", json={"policy": default} | request
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _planned(body: dict[str, Any]) -> dict[str, list[tuple[str, datetime]]]:
    plans: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    for action in body["actions"]:
        at = datetime.fromisoformat(action["send_at"])
        plans[action["invoice_id"]].append((action["step"], at))
    return dict(plans)


async def _publish(dunning: Harness, namespace: Namespace) -> None:
    await create_topics(namespace)
    for event in PAST:
        topic = dunning.runtime.topics(event.topic)
        await produce(namespace.kafka.bootstrap, topic, [encode(event)])


async def _groups_of(namespace: Namespace) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=namespace.kafka.bootstrap)
    await admin.start()
    try:
        groups = await admin.list_consumer_groups()
    finally:
        await admin.close()
    return [g[0] for g in groups if str(g[0]).startswith(namespace.name)]


async def test_simulation_replays_the_sample_without_sending(
    api: httpx.AsyncClient, dunning: Harness
) -> None:
    lines = SAMPLE_LINES[:301]

    body = await _simulate(api, csv="\n".join(lines), limit=10_000)

    assert body["invoices"] == 300
    mine = [a for a in body["actions"] if a["invoice_id"] == "0007900770"]
    # Due Monday 25 Feb 2013, settled 3 March: courtesy and due date, no plan offer.
    assert [(a["step"], a["send_at"][:10]) for a in mine] == [
        ("courtesy", "2013-02-22"),
        ("due_today", "2013-02-25"),
    ]
    assert not [a for a in body["actions"] if a["invoice_id"] == "0000611365"]
    assert body["actions_total"] == sum(body["actions_by_step"].values())
    assert body["records_read"] is None
    assert dunning.sender.sent == []


async def test_simulation_rejects_a_bad_csv_with_the_line(
    api: httpx.AsyncClient,
) -> None:
    default = (await api.get("/v1/policies/default")).json()["policy"]
    csv = "customerID,invoiceNumber,DueDate,InvoiceAmount\nc1,i1,13/45/2013,1.00\n"

    response = await api.post(
        "/v1/policies:simulate", json={"policy": default, "csv": csv}
    )

    assert response.status_code == 422
    assert "line 2" in response.json()["detail"]


@pytest.mark.parametrize("source", [{"source": "events"}, {}])
async def test_simulation_replays_events_given_in_the_body(
    api: httpx.AsyncClient, dunning: Harness, source: dict[str, str]
) -> None:
    events = [{"type": e.event_type, "data": e.model_dump(mode="json")} for e in PAST]

    body = await _simulate(api, events=events, **source)

    assert body["invoices"] == 2
    assert _planned(body) == PLANNED
    assert dunning.sender.sent == []


async def test_simulation_replays_the_topics_without_sending_or_committing(
    api: httpx.AsyncClient, dunning: Harness, namespace: Namespace
) -> None:
    await _publish(dunning, namespace)

    body = await _simulate(api, source="topics")

    assert (body["records_read"], body["reached_end"]) == (len(PAST), True)
    assert body["invoices"] == 2
    # The zones came from the customer topic and the settlement from the ledger.
    assert _planned(body) == PLANNED
    assert body["fees_minor"] == 1_800
    # Nothing sent, planned or published, and no consumer group left behind.
    assert dunning.sender.sent == []
    assert await dunning.step_states("inv-ny") == {}
    assert await dunning.published("ReminderScheduled") == []
    assert await _groups_of(namespace) == []


async def test_simulation_reads_the_topics_up_to_max_records(
    api: httpx.AsyncClient, dunning: Harness, namespace: Namespace
) -> None:
    await _publish(dunning, namespace)

    body = await _simulate(api, source="topics", max_records=2)

    assert (body["records_read"], body["reached_end"]) == (2, False)


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        ({"source": "kafka"}, "'csv', 'events' or 'topics'"),
        ({"source": "topics", "csv": "a,b\n"}, "drop ['csv']"),
        ({"source": "csv"}, "needs csv"),
        ({}, "exactly one of csv and events"),
        ({"source": "topics", "max_records": 0}, "greater than or equal to 1"),
    ],
)
async def test_simulation_refuses_a_past_it_cannot_read(
    api: httpx.AsyncClient, request_: dict[str, Any], reason: str
) -> None:
    default = (await api.get("/v1/policies/default")).json()["policy"]

    response = await api.post(
        "/v1/policies:simulate", json={"policy": default} | request_
    )

    assert response.status_code == 422
    assert reason in response.text


async def test_simulation_sources_are_documented_with_examples(
    api: httpx.AsyncClient,
) -> None:
    schema = (await api.get("/openapi.json")).json()

    operation = schema["paths"]["/v1/policies:simulate"]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    assert examples["topics"]["value"]["source"] == "topics"
    source = schema["components"]["schemas"]["SimulationCreate"]["properties"]
    assert source["source"]["anyOf"][0]["enum"] == ["csv", "events", "topics"]


async def test_simulation_from_topics_is_503_while_the_broker_is_away(
    dunning: Harness, namespace: Namespace
) -> None:
    away = namespace.kafka_settings().model_copy(update={"bootstrap": "127.0.0.1:9"})
    app = create_app(dunning.settings.model_copy(update={"kafka": away}))
    token = namespace.issuer.mint("ops-1", roles=("operator",))
    step = {"name": "due", "offset_days": 0, "channel": "email"}
    policy = {"steps": [step | {"template": "due_today"}]}

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://dunning"
    ) as client:
        response = await client.post(
            "/v1/policies:simulate",
            json={"policy": policy, "source": "topics"},
            headers={"Authorization": f"Bearer {token}"},
        )
    await app.state.runtime.engine.dispose()

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
