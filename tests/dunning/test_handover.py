"""Cohort changes mid-sequence, new policy versions and terms notices."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from arbor_dunning.adapters.policy_document import PolicyDocument
from arbor_dunning.policies import add_policy
from arbor_shared.events import CohortChanged
from tests.dunning.conftest import Harness, customer, invoice

DUE_TODAY = datetime(2026, 3, 16, 8, tzinfo=UTC)

LATE_PAYERS: dict[str, Any] = {
    "steps": [
        {
            "name": "first",
            "offset_days": 0,
            "channel": "email",
            "template": "due_today",
        },
        {"name": "firm", "offset_days": 3, "channel": "email", "template": "late_fee"},
        {
            "name": "fee",
            "offset_days": 10,
            "channel": "email",
            "template": "late_fee",
            "fee": {"fixed_minor": 2_500},
        },
    ],
}


async def _add(dunning: Harness, cohort: str, document: dict[str, Any]) -> int:
    async with dunning.runtime.sessions.begin() as session:
        return await add_policy(
            session,
            dunning.runtime.outbox,
            cohort=cohort,
            document=PolicyDocument.model_validate(document),
            created_by="test",
            now=dunning.clock.now(),
        )


def _moved(version: int, to: str = "late_payers") -> CohortChanged:
    return CohortChanged(
        customer_id="cus-1",
        from_cohort="default",
        to_cohort=to,
        definition_version=1,
        rule="days_late > 10",
        features={"days_late": 12},
        version=version,
        changed_at=datetime(2026, 3, 17, tzinfo=UTC),
    )


async def test_cohort_change_keeps_sent_steps_and_continues_with_new_policy(
    dunning: Harness,
) -> None:
    version = await _add(dunning, "late_payers", LATE_PAYERS)
    await dunning.feed(customer(), invoice())
    await dunning.at(DUE_TODAY)  # courtesy missed, due_today sent

    dunning.clock.advance_to(datetime(2026, 3, 17, 10, tzinfo=UTC))
    await dunning.feed(_moved(1))
    await dunning.run_until_idle()

    states = await dunning.step_states("inv-1")
    assert states["plan_offer"] == ("cancelled", "superseded")
    assert "first" not in states  # its offset, 0, was already contacted
    sent = await dunning.published("ReminderSent")
    assert [(e["step"], e["reason"]["policy_version"]) for e in sent] == [
        ("due_today", 1),
        ("terms_notice", version),
        ("firm", version),
        ("fee", version),
    ]
    assert sent[-1]["reason"]["cohort"] == "late_payers"
    notice = next(m for m in dunning.sender.sent if "terms" in m.subject)
    assert "incentive_removed:payment_plan_offer" in notice.body
    [fee] = await dunning.published("LateFeeAssessed")
    assert fee["amount_minor"] == 2_500


async def test_stale_cohort_change_is_ignored(dunning: Harness) -> None:
    await _add(dunning, "late_payers", LATE_PAYERS)
    await dunning.feed(customer(), invoice(), _moved(2, "default"), _moved(1))

    states = await dunning.step_states("inv-1")

    assert "firm" not in states
    assert states["due_today"] == ("planned", None)


async def test_new_policy_version_hands_open_invoices_over(dunning: Harness) -> None:
    await dunning.feed(customer(), invoice())
    await dunning.at(DUE_TODAY)

    dunning.clock.advance_to(datetime(2026, 3, 17, 10, tzinfo=UTC))
    version = await _add(dunning, "default", LATE_PAYERS)

    states = await dunning.step_states("inv-1")
    assert states["late_fee"] == ("cancelled", "superseded")
    assert states["firm"] == ("planned", None)
    assert "first" not in states  # offset 0 was already contacted
    assert version > 1
