"""Segmentation end to end against the real broker and database, in-process."""

from __future__ import annotations

from datetime import UTC, date, datetime

from arbor_shared import topics
from tests.segmentation.conftest import Start, customer, invoice


async def test_events_in_publish_cohort_changes_with_reason_and_version(
    start_segmentation: Start,
) -> None:
    async with start_segmentation() as service:
        await service.send(customer("cus-1", payment_method="direct_debit"))
        first = (await service.read(topics.COHORTS, 1))[0]
        await service.send(
            invoice("cus-1", "inv-1", date(2025, 1, 1), date(2025, 1, 31))
        )
        changes = await service.read(topics.COHORTS, 2)
        risks = await service.read(topics.RISK, 1)

    assert first["from_cohort"] is None
    assert first["to_cohort"] == "direct-debit"
    assert first["rule"] == "direct-debit"
    assert first["features"] == {"payment_method": "direct_debit"}
    assert (first["version"], first["definition_version"]) == (1, 1)
    second = changes[1]
    assert (second["from_cohort"], second["to_cohort"]) == ("direct-debit", "at-risk")
    assert second["features"]["overdue_invoices"] == 1
    assert second["version"] == 2
    assert risks[0]["invoice_id"] == "inv-1"
    assert 0.0 <= risks[0]["late_probability"] <= 1.0


async def test_due_date_passing_moves_customer_without_any_new_event(
    start_segmentation: Start,
) -> None:
    async with start_segmentation(clock="event") as service:
        await service.advance_clock(datetime(2024, 3, 1, 12, tzinfo=UTC))
        await service.send(
            customer("cus-1", started_on=date(2023, 1, 1)),
            invoice("cus-1", "inv-1", date(2024, 2, 10), date(2024, 3, 10)),
        )
        await service.read(topics.COHORTS, 1)
        await service.advance_clock(datetime(2024, 3, 11, 9, tzinfo=UTC))
        changes = await service.read(topics.COHORTS, 2)

    assert changes[0]["to_cohort"] == "standard"
    moved = changes[1]
    assert (moved["from_cohort"], moved["to_cohort"]) == ("standard", "at-risk")
    assert moved["features"]["overdue_invoices"] == 1
    # Midnight after the due date in Berlin is 23:00 UTC on the due date.
    assert moved["changed_at"].startswith("2024-03-11T09:00")


async def test_tenure_passing_a_rule_bound_moves_customer_without_any_new_event(
    start_segmentation: Start,
) -> None:
    async with start_segmentation(clock="event") as service:
        await service.advance_clock(datetime(2024, 2, 1, 12, tzinfo=UTC))
        await service.send(customer("cus-1", started_on=date(2024, 1, 1)))
        await service.read(topics.COHORTS, 1)
        # "new-customers" holds while tenure_days < 90: up to 30 March.
        await service.advance_clock(datetime(2024, 3, 31, 9, tzinfo=UTC))
        changes = await service.read(topics.COHORTS, 2)

    assert changes[0]["to_cohort"] == "new-customers"
    moved = changes[1]
    assert (moved["from_cohort"], moved["to_cohort"]) == ("new-customers", "standard")
    assert moved["changed_at"].startswith("2024-03-31T09:00")
