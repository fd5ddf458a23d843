"""Late fees and incentives: the events dunning publishes for the billing system."""

from __future__ import annotations

from decimal import Decimal

from arbor_dunning.domain.policy import Fee, Incentive, Step
from tests.dunning.conftest import Harness, balance, customer, invoice

# Every invoice here falls due on Monday 16 March 2026 in Berlin.
FIXED_FEE = Fee(fixed_minor=2_500)


def _fee_step(name: str, offset_days: int, fee: Fee = FIXED_FEE) -> Step:
    return Step(name, offset_days, "email", "late_fee", fee=fee)


async def _fees(dunning: Harness) -> list[tuple[str, int, str, str]]:
    return [
        (f["reason"]["step"], f["amount_minor"], f["currency"], f["period"])
        for f in await dunning.published("LateFeeAssessed")
    ]


def _subjects(dunning: Harness) -> list[str]:
    return [m.subject for m in dunning.sender.sent]


async def test_fee_step_inside_its_grace_period_sends_without_a_fee(
    dunning: Harness,
) -> None:
    grace = Fee(fixed_minor=2_500, grace_days=7)
    # +3 is Thursday 19 March, inside the grace days; +8 is the first day after.
    await dunning.use_policy(
        _fee_step("in_grace", 3, grace), _fee_step("after_grace", 8, grace)
    )
    await dunning.feed(customer(), invoice())

    await dunning.run_until_idle()

    # The rule is "no fee before the grace days end", not "charge it later": the
    # step in the grace period is sent, and charges nothing then or afterwards.
    assert await _fees(dunning) == [("after_grace", 2_500, "EUR", "2026-03")]
    assert _subjects(dunning) == [
        "Invoice N-inv-1 is overdue",
        "Invoice N-inv-1 is overdue: late fee 25.00 EUR",
    ]
    assert set((await dunning.step_states("inv-1")).values()) == {("done", None)}


async def test_two_fee_steps_in_one_month_assess_a_single_fee(
    dunning: Harness,
) -> None:
    # 17 and 24 March share a period; +20 falls on 7 April (after Easter Monday).
    await dunning.use_policy(
        _fee_step("first", 1), _fee_step("second", 8), _fee_step("april", 20)
    )
    await dunning.feed(customer(), invoice())

    await dunning.run_until_idle()

    assert await _fees(dunning) == [
        ("first", 2_500, "EUR", "2026-03"),
        ("april", 2_500, "EUR", "2026-04"),
    ]
    fee_ids = [f["fee_id"] for f in await dunning.published("LateFeeAssessed")]
    assert fee_ids == ["fee-inv-1-2026-03", "fee-inv-1-2026-04"]
    # The second March step is still a reminder; it just carries no second fee.
    assert _subjects(dunning) == [
        "Invoice N-inv-1 is overdue: late fee 25.00 EUR",
        "Invoice N-inv-1 is overdue",
        "Invoice N-inv-1 is overdue: late fee 25.00 EUR",
    ]


async def test_fee_cap_per_invoice_holds_across_steps_and_months(
    dunning: Harness,
) -> None:
    capped = Fee(percent=Decimal("1.5"), cap_minor=3_000)
    await dunning.use_policy(
        _fee_step("march", 1, capped),
        _fee_step("april", 20, capped),
        _fee_step("may", 50, capped),
    )
    await dunning.feed(customer(), invoice())

    await dunning.run_until_idle()

    # 1.5 % of 1 200.00 EUR is 18.00 each time; the cap of 30.00 leaves 12.00
    # for April and nothing for May.
    assert await _fees(dunning) == [
        ("march", 1_800, "EUR", "2026-03"),
        ("april", 1_200, "EUR", "2026-04"),
    ]
    assert _subjects(dunning) == [
        "Invoice N-inv-1 is overdue: late fee 18.00 EUR",
        "Invoice N-inv-1 is overdue: late fee 12.00 EUR",
        "Invoice N-inv-1 is overdue",
    ]


async def test_early_payment_discount_is_published_with_its_terms(
    dunning: Harness,
) -> None:
    discount = Incentive("early_payment_discount", Decimal("2"), valid_days=10)
    await dunning.use_policy(Step("early", -10, "email", "courtesy", discount))
    issued = invoice()
    await dunning.feed(customer(), issued, balance(issued, paid=20_000))

    await dunning.run_until_idle()

    [offer] = await dunning.published("IncentiveOffered")
    assert (offer["invoice_id"], offer["kind"], offer["percent"]) == (
        "inv-1",
        "early_payment_discount",
        "2",
    )
    # Sent on Friday 6 March at nine in Berlin; ten local days from then.
    assert offer["offered_at"] == "2026-03-06T08:00:00Z"
    assert offer["valid_until"] == "2026-03-16"
    # The discount is taken off the balance the offer was based on, in its currency.
    facts = offer["reason"]["facts"]
    assert (facts["balance_minor"], facts["currency"]) == (100_000, "EUR")
    assert offer["reason"]["step"] == "early"
    [message] = dunning.sender.sent
    assert "Pay by 2026-03-16 and we take 2 % off." in message.body


async def test_fee_waiver_is_published_with_the_fee_it_waives(
    dunning: Harness,
) -> None:
    waiver = Incentive("fee_waiver", valid_days=7)
    await dunning.use_policy(
        Step("fee", 8, "email", "late_fee", incentive=waiver, fee=FIXED_FEE)
    )
    await dunning.feed(customer(), invoice())

    await dunning.run_until_idle()

    [offer] = await dunning.published("IncentiveOffered")
    assert (offer["kind"], offer["percent"]) == ("fee_waiver", None)
    # Sent on Tuesday 24 March; the waiver holds for seven local days.
    assert (offer["offered_at"], offer["valid_until"]) == (
        "2026-03-24T08:00:00Z",
        "2026-03-31",
    )
    # What it waives is the fee the same step assessed, in the same transaction.
    assert await _fees(dunning) == [("fee", 2_500, "EUR", "2026-03")]
    assert offer["reason"]["step"] == "fee"
    [message] = dunning.sender.sent
    assert "a late fee of 25.00 EUR has been assessed" in message.body
    assert "Pay by 2026-03-31 and we waive the late fee." in message.body
