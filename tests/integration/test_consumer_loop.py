"""The shared consumer loop against the real broker and database, via metrics."""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa

from arbor_metrics.adapters.tables import invoice_facts
from arbor_metrics.bootstrap import MIGRATIONS, create_app
from arbor_metrics.config import MetricsSettings
from arbor_shared import topics
from arbor_shared.events import InvoiceBalanceChanged
from tests.conftest import Namespace
from tests.support import (
    encode,
    eventually,
    migrate,
    produce,
    read_topic,
    running,
    service_settings,
)


def _balance(invoice_id: str, customer: str = "cus-1") -> InvoiceBalanceChanged:
    return InvoiceBalanceChanged(
        customer_id=customer,
        invoice_id=invoice_id,
        currency="EUR",
        issue_date=date(2024, 1, 1),
        due_date=date(2024, 1, 31),
        amount_minor=10_000,
        paid_minor=0,
        credited_minor=0,
        written_off_minor=0,
        balance_minor=10_000,
        status="open",
        cause_event_id="e-1",
        cause_event_type="InvoiceIssued",
        changed_at=datetime(2024, 1, 1, tzinfo=UTC),
    )


async def test_malformed_records_are_dead_lettered_and_later_ones_applied(
    namespace: Namespace,
) -> None:
    settings = service_settings(MetricsSettings, namespace, "metrics")
    await migrate(MIGRATIONS, settings)
    ledger = namespace.kafka_settings().topic_prefix + "." + topics.LEDGER
    key, good_value, good_headers = encode(_balance("inv-2"))
    bad_json = (b"cus-1", b"{not json", encode(_balance("inv-x"))[2])
    unknown_currency = (
        b"cus-1",
        good_value.replace(b'"EUR"', b'"XYZ"'),
        encode(_balance("inv-y"))[2],
    )
    no_envelope: tuple[bytes, bytes, list[tuple[str, bytes]]] = (
        b"cus-1",
        good_value,
        [],
    )

    app = create_app(settings)
    async with running(app):
        await produce(
            namespace.kafka.bootstrap,
            ledger,
            [
                encode(_balance("inv-1")),
                bad_json,
                unknown_currency,
                no_envelope,
                (key, good_value, good_headers),
            ],
        )
        sessions = app.state.runtime.sessions

        async def both_applied() -> list[str] | None:
            async with sessions() as session:
                ids = (
                    await session.scalars(sa.select(invoice_facts.c.invoice_id))
                ).all()
            return sorted(ids) if len(ids) == 2 else None

        assert await eventually(both_applied) == ["inv-1", "inv-2"]
        dead = await read_topic(namespace.kafka.bootstrap, ledger + ".dlq", 3)

    reasons = [dict(r.headers)["dlq_reason"].decode() for r in dead]
    assert reasons == ["invalid_data", "invalid_data", "bad_envelope"]
    assert dict(dead[1].headers)["dlq_error"].find(b"XYZ") >= 0
    assert {dict(r.headers)["dlq_source_offset"] for r in dead} == {b"1", b"2", b"3"}


async def test_redelivered_event_is_applied_once(namespace: Namespace) -> None:
    settings = service_settings(MetricsSettings, namespace, "metrics")
    await migrate(MIGRATIONS, settings)
    ledger = namespace.kafka_settings().topic_prefix + "." + topics.LEDGER
    record = encode(_balance("inv-1"), event_id="same-event")

    app = create_app(settings)
    async with running(app):
        await produce(namespace.kafka.bootstrap, ledger, [record, record, record])
        runtime = app.state.runtime

        async def consumed_three() -> bool:
            samples = runtime.metrics.consumed.collect()[0].samples
            total = sum(s.value for s in samples if s.name.endswith("_total"))
            return bool(total >= 3)

        await eventually(consumed_three)
        outcomes = {
            s.labels["outcome"]: s.value
            for s in runtime.metrics.consumed.collect()[0].samples
            if s.name.endswith("_total")
        }
    assert outcomes == {"applied": 1.0, "duplicate": 2.0}
