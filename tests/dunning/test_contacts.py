"""The contact ledger: caps, crashes, replicas, pauses and resumptions."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from arbor_dunning.adapters.messages import Message
from arbor_dunning.adapters.senders import ChannelSenders
from arbor_dunning.adapters.tables import contacts
from arbor_dunning.bootstrap import build_scheduler
from arbor_dunning.domain.policy import Step
from arbor_shared.events import (
    DisputeOpened,
    DisputeResolved,
    PaymentPlanRequested,
    PromiseToPayMade,
)
from tests.dunning.conftest import CrashError, FakeSender, Harness, customer, invoice

COURTESY = datetime(2026, 3, 13, 8, tzinfo=UTC)


async def _contact_states(dunning: Harness) -> list[tuple[str, str, str]]:
    async with dunning.runtime.sessions() as session:
        rows = (
            await session.execute(
                sa.select(
                    contacts.c.invoice_id, contacts.c.step, contacts.c.state
                ).order_by(contacts.c.id)
            )
        ).all()
    return [(r.invoice_id, r.step, r.state) for r in rows]


async def test_weekly_cap_defers_the_fourth_contact_to_the_next_week(
    dunning: Harness,
) -> None:
    await dunning.feed(
        customer(), *(invoice(f"inv-{n}", due=date(2026, 3, 16)) for n in range(4))
    )

    await dunning.at(COURTESY)

    assert len(dunning.sender.sent) == 3
    courtesies = [(await dunning.step_states(f"inv-{n}"))["courtesy"] for n in range(4)]
    assert sorted(courtesies) == [("done", None)] * 3 + [("planned", None)]
    # A week after the first contact, on the next business morning in Berlin.
    assert await dunning.next_due() == datetime(2026, 3, 16, 8, tzinfo=UTC)
    await dunning.at(datetime(2026, 3, 16, 8, tzinfo=UTC))
    assert len(dunning.sender.sent) == 3  # still three contacts in the last week


async def test_weekly_cap_counts_contacts_on_every_channel(
    dunning: Harness,
) -> None:
    await dunning.use_policy(
        Step("mail", -3, "email", "courtesy"),
        Step("text", -2, "sms", "courtesy"),
        Step("post", -1, "letter", "courtesy"),
        Step("due", 0, "email", "due_today"),
    )
    # Due Thursday 19 March: the four steps fall on Monday to Thursday at nine.
    await dunning.feed(customer(), invoice(due=date(2026, 3, 19)))
    for day in (16, 17, 18, 19):
        await dunning.at(datetime(2026, 3, day, 8, tzinfo=UTC))

    # Only one e-mail has gone out, so a cap per channel would have let this one
    # through; the cap counts the SMS and the letter too.
    assert [m.channel for m in dunning.sender.sent] == ["email", "sms", "letter"]
    assert (await dunning.step_states("inv-1"))["due"] == ("planned", None)
    # Deferred until Monday's e-mail is a week old.
    released = await dunning.next_due()
    assert released == datetime(2026, 3, 23, 8, 0, 1, tzinfo=UTC)
    await dunning.at(released)
    assert [m.channel for m in dunning.sender.sent][3:] == ["email"]


async def test_crash_between_deciding_and_sending_sends_once_on_recovery(
    dunning: Harness,
) -> None:
    await dunning.feed(customer(), invoice())
    dunning.clock.advance_to(COURTESY)

    # The decision commits, then the process dies before the hand-over.
    await dunning.scheduler.claim_and_decide(COURTESY)
    assert await _contact_states(dunning) == [("inv-1", "courtesy", "decided")]
    restarted = build_scheduler(
        dunning.runtime,
        dunning.settings,
        dunning.metrics,
        ChannelSenders(dunning.sender, dunning.sender),
    )
    await restarted.tick()
    await restarted.tick()
    await dunning.at(COURTESY + timedelta(minutes=5))

    assert [m.invoice_id for m in dunning.sender.sent] == ["inv-1"]
    assert await _contact_states(dunning) == [("inv-1", "courtesy", "sent")]
    assert len(await dunning.published("ReminderSent")) == 1


async def test_crash_after_sending_an_email_never_sends_it_again(
    dunning: Harness,
) -> None:
    await dunning.feed(customer(), invoice())
    dunning.sender.crash_after_taking = True

    with contextlib.suppress(CrashError):
        await dunning.at(COURTESY)
    await dunning.at(COURTESY + timedelta(minutes=1))
    await dunning.at(COURTESY + timedelta(minutes=2))

    assert [m.invoice_id for m in dunning.sender.sent] == ["inv-1"]
    assert await _contact_states(dunning) == [("inv-1", "courtesy", "unconfirmed")]


async def test_crash_after_sending_an_sms_resends_with_the_same_key(
    dunning: Harness,
) -> None:
    await dunning.feed(customer(channel="sms"), invoice())
    from arbor_dunning.adapters.policy_document import PolicyDocument
    from arbor_dunning.domain.policy import Policy, Step
    from arbor_dunning.policies import add_policy

    sms = Policy("default", 0, (Step("text", -3, "sms", "courtesy"),))
    async with dunning.runtime.sessions.begin() as session:
        await add_policy(
            session,
            dunning.runtime.outbox,
            cohort="default",
            document=PolicyDocument.from_policy(sms),
            created_by="test",
            now=dunning.clock.now(),
        )
    dunning.sender.crash_after_taking = True

    with contextlib.suppress(CrashError):
        await dunning.at(COURTESY)
    await dunning.at(COURTESY + timedelta(minutes=1))

    first, second = dunning.sender.sent
    assert first.channel == "sms"
    assert first.message_id == second.message_id  # the provider deduplicates
    assert await _contact_states(dunning) == [("inv-1", "text", "sent")]


async def test_two_scheduler_replicas_never_send_the_same_step(
    dunning: Harness,
) -> None:
    invoices = [invoice(f"inv-{n}", f"cus-{n}") for n in range(40)]
    await dunning.feed(*(customer(f"cus-{n}") for n in range(40)), *invoices)
    senders = [_SlowSender(), _SlowSender()]
    settings = dunning.settings.model_copy(update={"scheduler_batch_size": 4})
    replicas = [
        build_scheduler(
            dunning.runtime, settings, dunning.metrics, ChannelSenders(s, s)
        )
        for s in senders
    ]

    for moment in (COURTESY, datetime(2026, 3, 16, 8, tzinfo=UTC)):
        dunning.clock.advance_to(moment)
        for _ in range(8):
            await asyncio.gather(*(r.tick() for r in replicas))

    sent = [(m.invoice_id, m.subject) for s in senders for m in s.sent]
    assert len(sent) == 80
    assert len(set(sent)) == 80
    assert all(s.sent for s in senders)  # both replicas did part of the work


class _SlowSender(FakeSender):
    async def send(self, message: Message) -> None:
        await asyncio.sleep(0.005)
        await super().send(message)


async def test_dispute_pauses_and_a_won_dispute_resumes(dunning: Harness) -> None:
    await dunning.feed(customer(), invoice())
    opened = datetime(2026, 3, 14, tzinfo=UTC)
    dunning.clock.advance_to(opened)
    await dunning.feed(
        DisputeOpened(
            customer_id="cus-1",
            dispute_id="d-1",
            invoice_id="inv-1",
            currency="EUR",
            amount_minor=120_000,
            reason="wrong quantity",
            opened_at=opened,
        )
    )
    await dunning.at(datetime(2026, 3, 20, tzinfo=UTC))
    assert dunning.sender.sent == []
    assert (await dunning.step_states("inv-1"))["due_today"] == ("paused", "disputed")

    await dunning.feed(
        DisputeResolved(
            customer_id="cus-1",
            dispute_id="d-1",
            invoice_id="inv-1",
            outcome="won",
            resolved_at=datetime(2026, 3, 20, tzinfo=UTC),
        )
    )
    await dunning.at(datetime(2026, 3, 23, 8, tzinfo=UTC))

    # Catch-up after the pause: only the latest due step, the plan offer.
    assert [m.subject.split(":")[0] for m in dunning.sender.sent] == [
        "Invoice N-inv-1 is overdue"
    ]
    scheduled = [e["step"] for e in await dunning.published("ReminderScheduled")]
    assert scheduled == ["courtesy", "due_today", "plan_offer", "late_fee"] * 2


async def test_broken_promise_resumes_dunning_and_is_published(
    dunning: Harness,
) -> None:
    await dunning.feed(customer(), invoice())
    await dunning.feed(
        PromiseToPayMade(
            customer_id="cus-1",
            promise_id="p-1",
            invoice_id="inv-1",
            currency="EUR",
            amount_minor=120_000,
            promised_date=date(2026, 3, 18),
            made_at=datetime(2026, 3, 10, tzinfo=UTC),
        )
    )
    # 23:59 on the promised day in Berlin: not broken yet.
    await dunning.at(datetime(2026, 3, 18, 22, 59, tzinfo=UTC))
    assert await dunning.published("PromiseToPayBroken") == []
    assert dunning.sender.sent == []

    await dunning.at(datetime(2026, 3, 18, 23, 0, tzinfo=UTC))
    await dunning.at(datetime(2026, 3, 23, 8, tzinfo=UTC))

    [broken] = await dunning.published("PromiseToPayBroken")
    assert broken["promise_id"] == "p-1"
    assert broken["promised_date"] == "2026-03-18"
    assert len(dunning.sender.sent) == 1
    cancelled = await dunning.published("ReminderCancelled")
    assert {c["cancel_reason"] for c in cancelled} == {
        "promised",
        "missed_during_outage",
    }


def _plan_requested(at: datetime) -> PaymentPlanRequested:
    return PaymentPlanRequested(
        customer_id="cus-1",
        request_id="ppr-1",
        invoice_id="inv-1",
        installments=6,
        requested_at=at,
    )


async def test_payment_plan_request_pauses_dunning(dunning: Harness) -> None:
    await dunning.feed(customer(), invoice())
    await dunning.at(COURTESY)
    requested = datetime(2026, 3, 14, 10, tzinfo=UTC)
    dunning.clock.advance_to(requested)

    await dunning.feed(_plan_requested(requested))

    # Paused as the request is consumed, before any scheduler pass: paused, not
    # cancelled, because a person answers the request.
    states = await dunning.step_states("inv-1")
    assert states.pop("courtesy") == ("done", None)
    assert set(states.values()) == {("paused", "promised")}
    cancelled = await dunning.published("ReminderCancelled")
    assert [(c["step"], c["cancel_reason"]) for c in cancelled] == [
        ("due_today", "promised"),
        ("plan_offer", "promised"),
        ("late_fee", "promised"),
        ("escalation", "promised"),
    ]
    # Nothing goes out meanwhile, not even the late fee or the escalation task.
    await dunning.at(datetime(2026, 6, 1, 8, tzinfo=UTC))
    assert [m.invoice_id for m in dunning.sender.sent] == ["inv-1"]
    assert await dunning.published("LateFeeAssessed") == []
    assert await dunning.published("EscalationRaised") == []


async def test_payment_plan_request_still_holds_after_a_policy_change(
    dunning: Harness,
) -> None:
    requested = datetime(2026, 3, 2, tzinfo=UTC)
    await dunning.feed(customer(), invoice())
    dunning.clock.advance_to(requested)
    await dunning.feed(_plan_requested(requested))

    await dunning.use_policy(Step("firm", 3, "email", "late_fee"))
    await dunning.at(datetime(2026, 6, 1, 8, tzinfo=UTC))

    # The new policy's plan is made paused: the request is still unanswered.
    assert (await dunning.step_states("inv-1"))["firm"] == ("paused", None)
    assert dunning.sender.sent == []
