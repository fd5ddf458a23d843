"""A simulated company: customers with payment habits, invoicing and paying over time.

Deterministic for a seed. It yields canonical events in time order, as the billing
engine, the payment provider and the collections desk of a real company would report
them to ingest, plus ``ClockAdvanced`` watermarks so every service in event-clock mode
moves through simulated time together.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from zoneinfo import ZoneInfo

from arbor_shared.events import (
    Allocation,
    ClockAdvanced,
    CustomerCreated,
    DisputeOpened,
    DisputeResolved,
    EventData,
    InvoiceIssued,
    InvoiceLine,
    InvoiceWrittenOff,
    PaymentFailed,
    PaymentReceived,
    PromiseToPayMade,
)


class Archetype(Enum):
    """How a customer pays; the weights are the share of the customer base."""

    PUNCTUAL = 0.34
    AT_DUE = 0.26
    CHRONICALLY_LATE = 0.16
    SEASONAL = 0.1
    DISPUTER = 0.08
    CHURNED = 0.06


@dataclass(frozen=True)
class Market:
    country: str
    region: str
    time_zone: str
    currency: str
    typical_amount_minor: int


MARKETS = (
    Market("DE", "EMEA", "Europe/Berlin", "EUR", 90_000),
    Market("FR", "EMEA", "Europe/Paris", "EUR", 75_000),
    Market("GB", "EMEA", "Europe/London", "GBP", 65_000),
    Market("US", "AMER", "America/New_York", "USD", 110_000),
    Market("US", "AMER", "America/Los_Angeles", "USD", 95_000),
    Market("JP", "APAC", "Asia/Tokyo", "JPY", 120_000),
    Market("AU", "APAC", "Australia/Sydney", "AUD", 85_000),
)
CHANNELS = ("direct", "partner", "marketplace", "outbound")
TERMS_DAYS = (14, 30, 30, 30, 45)


@dataclass(frozen=True)
class Customer:
    customer_id: str
    archetype: Archetype
    market: Market
    billing_cycle: str
    payment_method: str
    acquisition_channel: str
    terms_days: int
    started_on: date
    churns_on: date | None


@dataclass(order=True)
class _Pending:
    at: datetime
    sequence: int
    event: EventData = field(compare=False)


class Simulation:
    """Generates the event stream of ``customers`` customers from ``start``."""

    def __init__(
        self, *, seed: int = 7, customers: int = 2_000, start: date, months: int = 12
    ) -> None:
        self._random = random.Random(seed)
        self._start = start
        self._end = _add_months(start, months)
        self._customers = [self._make_customer(n) for n in range(customers)]
        self._queue: list[_Pending] = []
        self._sequence = 0

    @property
    def customers(self) -> list[Customer]:
        return list(self._customers)

    def events(self, tick: timedelta = timedelta(hours=6)) -> Iterator[EventData]:
        """Every event in time order, with a clock watermark every ``tick``."""
        for customer in self._customers:
            self._schedule_customer(customer)
        watermark = datetime.combine(self._start, time(), UTC)
        while self._queue:
            pending = heapq.heappop(self._queue)
            while watermark + tick <= pending.at:
                watermark += tick
                yield ClockAdvanced(now=watermark)
            yield pending.event
        yield ClockAdvanced(now=datetime.combine(self._end, time(), UTC))

    def _push(self, at: datetime, event: EventData) -> None:
        # The simulation ends "now": later events have not happened yet, which leaves
        # the open, overdue receivables a real ledger would have.
        if at.date() >= self._end:
            return
        self._sequence += 1
        heapq.heappush(self._queue, _Pending(at, self._sequence, event))

    def _make_customer(self, number: int) -> Customer:
        pick = self._random
        archetype = pick.choices(list(Archetype), [a.value for a in Archetype])[0]
        started = self._start - timedelta(days=pick.randint(0, 900))
        churns = (
            self._start + timedelta(days=pick.randint(60, 240))
            if archetype is Archetype.CHURNED
            else None
        )
        return Customer(
            customer_id=f"cus-{number:05d}",
            archetype=archetype,
            market=pick.choice(MARKETS),
            billing_cycle=pick.choices(["monthly", "annual"], [0.8, 0.2])[0],
            payment_method=pick.choices(
                ["card", "bank_transfer", "direct_debit"], [0.4, 0.35, 0.25]
            )[0],
            acquisition_channel=pick.choice(CHANNELS),
            terms_days=pick.choice(TERMS_DAYS),
            started_on=started,
            churns_on=churns,
        )

    def _schedule_customer(self, customer: Customer) -> None:
        opened = _local_noon(self._start, customer) - timedelta(days=1)
        self._push(opened, _created(customer))
        step = 12 if customer.billing_cycle == "annual" else 1
        issue = self._start + timedelta(days=self._random.randint(0, 27))
        number = 0
        while issue < self._end:
            number += 1
            self._schedule_invoice(customer, number, issue)
            issue = _add_months(issue, step)

    def _schedule_invoice(self, customer: Customer, number: int, issue: date) -> None:
        amount = self._amount(customer)
        invoice_id = f"{customer.customer_id}-inv-{number:03d}"
        due = issue + timedelta(days=customer.terms_days)
        issued_at = _local_noon(issue, customer) - timedelta(hours=3)
        self._push(
            issued_at, _invoice(customer, invoice_id, amount, issue, due, issued_at)
        )
        self._schedule_outcome(customer, invoice_id, amount, issue, due)

    def _amount(self, customer: Customer) -> int:
        base = customer.market.typical_amount_minor
        if customer.billing_cycle == "annual":
            base *= 10
        scaled = int(base * self._random.uniform(0.6, 1.5))
        # JPY has no minor unit and the table already holds yen; round others to cents.
        return (
            max(scaled - scaled % 100, 100)
            if customer.market.currency != "JPY"
            else (max(scaled, 1))
        )

    def _schedule_outcome(
        self, customer: Customer, invoice_id: str, amount: int, issue: date, due: date
    ) -> None:
        pick = self._random
        if customer.churns_on and issue >= customer.churns_on:
            self._schedule_default(customer, invoice_id, amount, due)
            return
        days_late = self._days_late(customer, due)
        if customer.archetype is Archetype.DISPUTER and pick.random() < 0.3:
            days_late = self._schedule_dispute(customer, invoice_id, amount, issue, due)
        elif days_late > 10 and pick.random() < 0.35:
            self._schedule_promise(customer, invoice_id, amount, due, days_late)
        paid_on = due + timedelta(days=days_late)
        if customer.payment_method == "card" and pick.random() < 0.05:
            failed_at = _local_noon(paid_on, customer) - timedelta(days=2)
            self._push(failed_at, _failure(customer, invoice_id, amount, failed_at))
        self._schedule_payment(customer, invoice_id, amount, paid_on)

    def _days_late(self, customer: Customer, due: date) -> int:
        pick = self._random
        match customer.archetype:
            case Archetype.PUNCTUAL:
                return -pick.randint(0, 7)
            case Archetype.AT_DUE:
                return pick.choices([0, 1, 2, 5], [0.6, 0.2, 0.12, 0.08])[0]
            case Archetype.CHRONICALLY_LATE:
                return pick.randint(8, 50)
            case Archetype.SEASONAL:
                return (
                    pick.randint(15, 40)
                    if due.month in (7, 8, 12)
                    else -pick.randint(0, 3)
                )
            case _:
                return pick.randint(-2, 12)

    def _schedule_payment(
        self, customer: Customer, invoice_id: str, amount: int, paid_on: date
    ) -> None:
        received_at = _local_noon(paid_on, customer) + timedelta(
            minutes=self._random.randint(-180, 240)
        )
        parts = [amount] if self._random.random() > 0.1 else _split(amount)
        for part_number, part in enumerate(parts, start=1):
            at = received_at + timedelta(days=7 * (part_number - 1))
            self._push(at, _payment(customer, invoice_id, part, at, part_number))

    def _schedule_dispute(
        self, customer: Customer, invoice_id: str, amount: int, issue: date, due: date
    ) -> int:
        opened = _local_noon(
            issue + timedelta(days=self._random.randint(3, 20)), customer
        )
        resolved = opened + timedelta(days=self._random.randint(10, 35))
        dispute_id = f"{invoice_id}-dsp"
        self._push(
            opened,
            DisputeOpened(
                customer_id=customer.customer_id,
                dispute_id=dispute_id,
                invoice_id=invoice_id,
                currency=customer.market.currency,
                amount_minor=amount,
                reason="quantities on the invoice do not match the order",
                origin="internal",
                opened_at=opened,
            ),
        )
        self._push(
            resolved,
            DisputeResolved(
                customer_id=customer.customer_id,
                dispute_id=dispute_id,
                invoice_id=invoice_id,
                outcome="lost",
                resolved_at=resolved,
            ),
        )
        return max((resolved.date() - due).days + 3, 0)

    def _schedule_promise(
        self, customer: Customer, invoice_id: str, amount: int, due: date, late: int
    ) -> None:
        made = _local_noon(due + timedelta(days=min(late - 5, 9)), customer)
        kept = self._random.random() < 0.7
        promised = due + timedelta(days=late if kept else max(late - 7, 1))
        self._push(
            made,
            PromiseToPayMade(
                customer_id=customer.customer_id,
                promise_id=f"{invoice_id}-ptp",
                invoice_id=invoice_id,
                currency=customer.market.currency,
                amount_minor=amount,
                promised_date=promised,
                origin="internal",
                made_at=made,
            ),
        )

    def _schedule_default(
        self, customer: Customer, invoice_id: str, amount: int, due: date
    ) -> None:
        written_off = _local_noon(due + timedelta(days=120), customer)
        if written_off.date() < self._end:
            self._push(
                written_off,
                InvoiceWrittenOff(
                    customer_id=customer.customer_id,
                    invoice_id=invoice_id,
                    currency=customer.market.currency,
                    amount_minor=amount,
                    reason="uncollectible after 120 days",
                    written_off_at=written_off,
                ),
            )


def _created(customer: Customer) -> CustomerCreated:
    market = customer.market
    return CustomerCreated(
        customer_id=customer.customer_id,
        name=f"Customer {customer.customer_id[4:]}",
        email=f"billing+{customer.customer_id}@example.com",
        country=market.country,
        region=market.region,
        time_zone=market.time_zone,
        currency=market.currency,
        billing_cycle=customer.billing_cycle,  # type: ignore[arg-type]
        payment_method=customer.payment_method,  # type: ignore[arg-type]
        acquisition_channel=customer.acquisition_channel,
        language="en",
        preferred_channel="email",
        started_on=customer.started_on,
    )


def _invoice(
    customer: Customer,
    invoice_id: str,
    amount: int,
    issue: date,
    due: date,
    at: datetime,
) -> InvoiceIssued:
    line = InvoiceLine(
        description="Subscription"
        if customer.billing_cycle == "annual"
        else "Services",
        quantity=1,
        unit_amount_minor=amount,
        amount_minor=amount,
    )
    return InvoiceIssued(
        customer_id=customer.customer_id,
        invoice_id=invoice_id,
        number=invoice_id.upper(),
        currency=customer.market.currency,
        amount_minor=amount,
        issue_date=issue,
        due_date=due,
        issued_at=at,
        lines=(line,),
    )


def _payment(
    customer: Customer, invoice_id: str, amount: int, at: datetime, part: int
) -> PaymentReceived:
    return PaymentReceived(
        customer_id=customer.customer_id,
        payment_id=f"{invoice_id}-pay-{part}",
        currency=customer.market.currency,
        amount_minor=amount,
        received_at=at,
        method=customer.payment_method,  # type: ignore[arg-type]
        allocations=(Allocation(invoice_id=invoice_id, amount_minor=amount),),
    )


def _failure(
    customer: Customer, invoice_id: str, amount: int, at: datetime
) -> PaymentFailed:
    return PaymentFailed(
        customer_id=customer.customer_id,
        payment_id=f"{invoice_id}-fail",
        invoice_id=invoice_id,
        currency=customer.market.currency,
        amount_minor=amount,
        reason="card_declined",
        failed_at=at,
    )


def _split(amount: int) -> list[int]:
    first = amount // 2
    return [first, amount - first]


def _local_noon(day: date, customer: Customer) -> datetime:
    zone = ZoneInfo(customer.market.time_zone)
    return datetime.combine(day, time(12), zone).astimezone(UTC)


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    return date(year, month, min(day.day, 28))
