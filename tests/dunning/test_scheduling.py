"""The step ladder, cancellation and catch-up, on the real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from arbor_shared.events import DisputeOpened
from tests.dunning.conftest import Harness, balance, customer, invoice, settled

# Due Monday 16 March 2026; Berlin is on CET (UTC+1) until 29 March.
BERLIN_9AM = {
    "courtesy": datetime(2026, 3, 13, 8, tzinfo=UTC),  # Friday -3
    "due_today": datetime(2026, 3, 16, 8, tzinfo=UTC),
    "plan_offer": datetime(2026, 3, 23, 8, tzinfo=UTC),
    "late_fee": datetime(2026, 3, 30, 7, tzinfo=UTC),  # CEST after the change
    "escalation": datetime(2026, 4, 15, 7, tzinfo=UTC),
}


async def test_full_ladder_sends_every_step_once_at_nine_local(
    dunning: Harness,
) -> None:
    await dunning.feed(customer(), invoice())

    await dunning.run_until_idle()
    await dunning.at(dunning.clock.now() + timedelta(days=60))

    sent = await dunning.published("ReminderSent")
    assert [(e["step"], e["sent_at"]) for e in sent] == [
        (name, at.isoformat().replace("+00:00", "Z"))
        for name, at in BERLIN_9AM.items()
        if name != "escalation"
    ]
    assert [m.subject for m in dunning.sender.sent][1] == "Invoice N-inv-1 is due today"
    fees = await dunning.published("LateFeeAssessed")
    # 1.5 % of 1 200.00 EUR is 18.00 EUR, under the 50.00 cap.
    assert [(f["amount_minor"], f["period"]) for f in fees] == [(1_800, "2026-03")]
    offers = await dunning.published("IncentiveOffered")
    assert [(o["kind"], o["valid_until"]) for o in offers] == [
        ("payment_plan_offer", "2026-04-06")
    ]
    escalations = await dunning.published("EscalationRaised")
    assert [e["reason"]["step"] for e in escalations] == ["escalation"]
    assert escalations[0]["raised_at"].startswith("2026-04-15T07:00")
    assert len(dunning.sender.sent) == 4


async def test_messages_carry_balance_at_send_time_and_reason(
    dunning: Harness,
) -> None:
    from tests.dunning.conftest import balance

    issued = invoice()
    await dunning.feed(customer(language="de"), issued, balance(issued, paid=20_000))

    await dunning.at(BERLIN_9AM["courtesy"])

    [message] = dunning.sender.sent
    assert "1.000,00" not in message.body  # amounts use the plain ISO form
    assert "1,000.00 EUR" in message.body  # balance after the part payment
    assert "1,200.00 EUR" in message.body
    assert message.subject == "Rechnung N-inv-1 wird am 2026-03-16 fällig"
    [sent] = await dunning.published("ReminderSent")
    assert sent["balance_minor"] == 100_000
    assert sent["reason"]["policy_id"] == "policy-default"
    assert sent["reason"]["cohort"] == "default"
    assert sent["reason"]["facts"]["days_past_due"] == -3


async def test_payment_one_second_before_a_step_cancels_it(dunning: Harness) -> None:
    issued = invoice()
    await dunning.feed(customer(), issued)
    await dunning.at(BERLIN_9AM["courtesy"])
    step_at = BERLIN_9AM["due_today"]

    dunning.clock.advance_to(step_at - timedelta(seconds=1))
    await dunning.feed(settled(issued, step_at - timedelta(seconds=1)))
    await dunning.at(step_at)
    await dunning.at(step_at + timedelta(days=60))

    assert [m.subject for m in dunning.sender.sent] == [
        "Invoice N-inv-1 falls due on 2026-03-16"
    ]
    cancelled = await dunning.published("ReminderCancelled")
    assert [(c["step"], c["cancel_reason"]) for c in cancelled] == [
        ("due_today", "settled"),
        ("plan_offer", "settled"),
        ("late_fee", "settled"),
        ("escalation", "settled"),
    ]


async def test_invoice_settled_before_any_step_is_never_contacted(
    dunning: Harness,
) -> None:
    issued = invoice()
    await dunning.feed(
        customer(), issued, settled(issued, datetime(2026, 3, 2, tzinfo=UTC))
    )

    await dunning.run_until_idle()
    await dunning.at(datetime(2026, 6, 1, tzinfo=UTC))

    assert dunning.sender.sent == []
    assert await dunning.published("EscalationRaised") == []
    assert await dunning.published("LateFeeAssessed") == []


async def test_invoice_known_only_settled_from_the_ledger_is_not_planned(
    dunning: Harness,
) -> None:
    from tests.dunning.conftest import balance

    issued = invoice()
    await dunning.feed(
        customer(), balance(issued, paid=issued.amount_minor, status="settled")
    )

    await dunning.at(datetime(2026, 6, 1, tzinfo=UTC))

    assert await dunning.step_states("inv-1") == {}
    assert dunning.sender.sent == []


async def test_catch_up_after_outage_sends_only_the_latest_missed_step(
    dunning: Harness,
) -> None:
    await dunning.feed(customer(), invoice())

    # Down from before the courtesy reminder until after the plan offer's day.
    await dunning.at(datetime(2026, 3, 24, 10, tzinfo=UTC))

    assert [m.subject.split(":")[0] for m in dunning.sender.sent] == [
        "Invoice N-inv-1 is overdue"
    ]
    states = await dunning.step_states("inv-1")
    assert states["courtesy"] == ("cancelled", "missed_during_outage")
    assert states["due_today"] == ("cancelled", "missed_during_outage")
    assert states["plan_offer"] == ("done", None)
    assert states["late_fee"] == ("planned", None)


async def test_step_due_during_quiet_hours_waits_for_the_window(
    dunning: Harness,
) -> None:
    await dunning.feed(customer(), invoice())

    # 19:30 in Berlin on the courtesy day: the scheduler was down all day.
    await dunning.at(datetime(2026, 3, 13, 18, 30, tzinfo=UTC))
    assert dunning.sender.sent == []
    # The next window opens on Monday, the due date, when due_today is also due.
    await dunning.at(datetime(2026, 3, 16, 8, tzinfo=UTC))

    assert len(dunning.sender.sent) == 1
    states = await dunning.step_states("inv-1")
    assert states["courtesy"] == ("cancelled", "missed_during_outage")
    assert states["due_today"] == ("done", None)


async def test_credit_write_off_and_void_cancel_with_their_reason(
    dunning: Harness,
) -> None:
    from arbor_shared.events import InvoiceVoided, InvoiceWrittenOff
    from tests.dunning.conftest import balance

    credited, written_off, voided = (invoice(f"inv-{n}") for n in range(3))
    by_credit = balance(credited, status="settled").model_copy(
        update={"cause_event_type": "CreditNoteIssued", "balance_minor": 0}
    )
    at = datetime(2026, 3, 2, tzinfo=UTC)
    await dunning.feed(customer(), credited, written_off, voided, by_credit)
    await dunning.feed(
        InvoiceWrittenOff(
            customer_id="cus-1",
            invoice_id="inv-1",
            currency="EUR",
            amount_minor=120_000,
            reason="insolvent",
            written_off_at=at,
        ),
        InvoiceVoided(
            customer_id="cus-1", invoice_id="inv-2", reason="duplicate", voided_at=at
        ),
    )

    reasons = {
        (c["invoice_id"], c["cancel_reason"])
        for c in await dunning.published("ReminderCancelled")
    }
    assert reasons == {
        ("inv-0", "credited"),
        ("inv-1", "written_off"),
        ("inv-2", "voided"),
    }
    await dunning.at(datetime(2026, 6, 1, tzinfo=UTC))
    assert dunning.sender.sent == []


async def test_reopened_invoice_continues_from_the_next_future_step(
    dunning: Harness,
) -> None:
    from arbor_shared.events import InvoiceReopened

    issued = invoice()
    await dunning.feed(customer(), issued)
    await dunning.at(BERLIN_9AM["due_today"])
    await dunning.feed(settled(issued, BERLIN_9AM["due_today"] + timedelta(hours=1)))

    dunning.clock.advance_to(datetime(2026, 3, 25, tzinfo=UTC))
    await dunning.feed(
        InvoiceReopened(
            customer_id="cus-1",
            invoice_id="inv-1",
            currency="EUR",
            balance_minor=30_000,
            reopened_at=datetime(2026, 3, 25, tzinfo=UTC),
        )
    )

    states = await dunning.step_states("inv-1")
    assert states["plan_offer"] == ("cancelled", "settled")  # its date has passed
    assert states["late_fee"] == ("planned", None)
    assert states["escalation"] == ("planned", None)


async def test_actions_and_recovered_amount_are_counted(dunning: Harness) -> None:
    issued = invoice()
    await dunning.feed(customer(), issued)
    await dunning.at(BERLIN_9AM["courtesy"])
    # What the ledger publishes for two payments after the reminder: a balance per
    # movement, then the settlement once the balance is zero.
    await dunning.feed(balance(issued, paid=20_000))
    paid_off = balance(issued, paid=issued.amount_minor, status="settled")
    await dunning.feed(
        paid_off, settled(issued, BERLIN_9AM["courtesy"] + timedelta(hours=3))
    )

    registry = dunning.runtime.metrics.registry

    def actions(step: str, outcome: str) -> float | None:
        labels = {"step": step, "channel": "email", "variant": "none"}
        return registry.get_sample_value(
            "arbor_dunning_actions_total", labels | {"outcome": outcome}
        )

    recovered = registry.get_sample_value(
        "arbor_dunning_recovered_minor_total", {"currency": "EUR"}
    )
    assert actions("courtesy", "sent") == 1.0
    assert actions("due_today", "cancelled") == 1.0
    assert recovered == 120_000.0


async def test_a_dispute_counts_the_steps_it_pauses(dunning: Harness) -> None:
    issued = invoice()
    opened = datetime(2026, 3, 2, tzinfo=UTC)
    disputed = DisputeOpened(
        customer_id=issued.customer_id,
        dispute_id="d-1",
        invoice_id=issued.invoice_id,
        currency=issued.currency,
        amount_minor=issued.amount_minor,
        reason="wrong quantity",
        opened_at=opened,
    )
    await dunning.feed(customer(), issued, disputed)

    paused = dunning.runtime.metrics.registry.get_sample_value(
        "arbor_dunning_actions_total",
        {
            "step": "courtesy",
            "channel": "email",
            "outcome": "paused",
            "variant": "none",
        },
    )
    recovered = dunning.runtime.metrics.registry.get_sample_value(
        "arbor_dunning_recovered_minor_total", {"currency": "EUR"}
    )
    assert paused == 1.0
    assert recovered is None


async def test_unknown_time_zone_is_refused_before_it_is_stored(
    dunning: Harness,
) -> None:
    import pytest

    from arbor_shared.kafka.classify import PoisonRecordError

    with pytest.raises(PoisonRecordError, match="Mars/Olympus"):
        await dunning.feed(customer(time_zone="Mars/Olympus"))


async def test_settlement_arriving_before_the_issue_still_means_no_contact(
    dunning: Harness,
) -> None:
    issued = invoice()
    await dunning.feed(
        settled(issued, datetime(2026, 3, 2, tzinfo=UTC)), customer(), issued
    )

    await dunning.at(datetime(2026, 6, 1, tzinfo=UTC))

    assert await dunning.step_states("inv-1") == {}
    assert dunning.sender.sent == []


async def test_cohort_move_arriving_before_the_customer_is_kept(
    dunning: Harness,
) -> None:
    from arbor_shared.events import CohortChanged

    moved = CohortChanged(
        customer_id="cus-1",
        from_cohort=None,
        to_cohort="late_payers",
        definition_version=1,
        rule="days_late > 10",
        features={},
        version=1,
        changed_at=ISSUED,
    )
    await dunning.feed(moved, invoice(), customer())

    [scheduled, *_] = await dunning.published("ReminderScheduled")
    assert scheduled["reason"]["cohort"] == "late_payers"
    assert scheduled["reason"]["policy_id"] == "policy-default"  # its fallback


ISSUED = datetime(2026, 3, 1, 12, tzinfo=UTC)
