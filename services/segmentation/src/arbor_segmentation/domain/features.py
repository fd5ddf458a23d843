"""Per-customer behaviour state, kept incrementally, and the features read from it.

The state is a JSON document per customer. Each event updates it in O(open invoices)
without rescanning history. Windows (90 and 365 days) need the settlements whose due
date is still inside the widest window, so those are kept per invoice and pruned once
they are older than :data:`RETENTION_DAYS`; all-time figures are running sums plus a
histogram of days late, which gives an exact p90 with integer days.

Only invoices settled by payment count as behaviour: voided, fully credited and
written-off invoices are excluded, as in the KPI definitions of the brief.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

FeatureValue = int | float | str | bool
Features = dict[str, FeatureValue]

WINDOWS = (90, 365)
_WINDOW_SPANS = tuple(timedelta(days=days) for days in WINDOWS)
_WINDOW_NAMES = tuple((f"invoices_due_{d}", f"on_time_rate_{d}") for d in WINDOWS)
_NO_WINDOWS = ((0, 0),) * len(WINDOWS)
_DAY = timedelta(days=1)
RETENTION_DAYS = 400
MAX_SETTLED_RECORDS = 2000
MAX_CASE_IDS = 500
TREND_SPAN = 5


@dataclass
class OpenInvoice:
    """An invoice the ledger says is still owed."""

    currency: str
    amount: int
    balance: int
    issue_date: date
    due_date: date
    changed_at: datetime
    disputed: bool = False
    late_probability: float | None = None
    expected_pay_date: date | None = None
    model_inputs: dict[str, float] | None = None


@dataclass
class ClosedInvoice:
    """An invoice that left the open set: settled, voided or written off."""

    due_date: date
    issue_date: date
    settled_date: date
    currency: str
    paid: int
    counted: bool

    @property
    def days_late(self) -> int:
        return max(0, (self.settled_date - self.due_date).days)

    @property
    def days_to_pay(self) -> int:
        return (self.settled_date - self.issue_date).days


@dataclass
class CustomerState:
    """Everything segmentation remembers about one customer."""

    customer_id: str
    profile: dict[str, str] = field(default_factory=dict)
    profile_times: dict[str, datetime] = field(default_factory=dict)
    started_on: date | None = None
    open: dict[str, OpenInvoice] = field(default_factory=dict)
    closed: dict[str, ClosedInvoice] = field(default_factory=dict)
    settled_count: int = 0
    late_count: int = 0
    days_late_sum: int = 0
    days_to_pay_sum: int = 0
    days_late_histogram: dict[int, int] = field(default_factory=dict)
    lifetime_value: dict[str, int] = field(default_factory=dict)
    balances: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    disputes: dict[str, str] = field(default_factory=dict)
    disputes_total: int = 0
    disputes_lost: int = 0
    promises: dict[str, str] = field(default_factory=dict)
    promises_made: int = 0
    promises_broken: int = 0
    payment_failures: int = 0
    last_failure_reason: str = ""
    last_failure_at: datetime | None = None
    horizon: date | None = None

    @property
    def currency(self) -> str:
        """The customer's own currency, or the one of its first invoice."""
        if currency := self.profile.get("currency"):
            return currency
        for invoice in self.open.values():
            return invoice.currency
        for closed in self.closed.values():
            return closed.currency
        return ""

    @property
    def zone_name(self) -> str:
        """The IANA name of the customer's time zone, UTC unless stated."""
        return self.profile.get("time_zone") or "UTC"

    @property
    def time_zone(self) -> ZoneInfo:
        return _zone(self.zone_name)

    def local_date(self, moment: datetime) -> date:
        """The calendar date of ``moment`` in the customer's time zone."""
        return _local_date(moment, self.zone_name)

    def overdue_at(self, due_date: date) -> datetime:
        """The instant an invoice due on ``due_date`` becomes overdue: next midnight."""
        return _overdue_at(due_date, self.zone_name)


@functools.lru_cache(maxsize=1024)
def _local_date(moment: datetime, zone_name: str) -> date:
    # An event asks for its customer's day at one instant four times (the timers
    # before and after it, the assessments, the features).
    return moment.astimezone(_zone(zone_name)).date()


@functools.lru_cache(maxsize=65_536)
def _overdue_at(due_date: date, zone_name: str) -> datetime:
    # Every event asks for its customer's timers before and after it applies, and
    # customers share due dates and zones: the zone arithmetic is the costly part.
    midnight = datetime.combine(due_date + timedelta(days=1), time(), _zone(zone_name))
    return midnight.astimezone(UTC)


@functools.lru_cache(maxsize=4096)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def timers(
    state: CustomerState, now: datetime, tenure_marks: Sequence[int] = ()
) -> dict[str, datetime]:
    """When the features change with no event: each due date passing, the next day
    a settlement or overdue invoice leaves a 90- or 365-day window, and the next day
    the customer's tenure reaches one of ``tenure_marks`` (days).

    Keys are invoice ids, and ``"window <customer>"`` and ``"tenure <customer>"``
    for the others (a space no identifier may contain, so they never collide).
    """
    return still_due(timer_instants(state, state.local_date(now), tenure_marks), now)


def still_due(instants: dict[str, datetime], now: datetime) -> dict[str, datetime]:
    """The timers of :func:`timer_instants` that have not fired by ``now``."""
    return {key: at for key, at in instants.items() if at > now}


def timer_instants(
    state: CustomerState, today: date, tenure_marks: Sequence[int] = ()
) -> dict[str, datetime]:
    """Every timer of :func:`timers` on the customer's ``today``, fired or not."""
    # Asked for before and after every event: the zone is read once and the open
    # invoices are walked once.
    zone = state.zone_name
    wanted: dict[str, datetime] = {}
    dues = [c.due_date for c in state.closed.values() if c.counted]
    for invoice_id, invoice in state.open.items():
        wanted[invoice_id] = _overdue_at(invoice.due_date, zone)
        dues.append(invoice.due_date)
    if leaves := _window_exit(today, dues):
        wanted[f"window {state.customer_id}"] = _overdue_at(leaves - _DAY, zone)
    if reached := _next_tenure(today, state.started_on, tenure_marks):
        # At the customer's midnight starting the day the tenure reaches it.
        wanted[f"tenure {state.customer_id}"] = _overdue_at(reached - _DAY, zone)
    return wanted


def _window_exit(today: date, dues: list[date]) -> date | None:
    """The earliest ``due + window`` later than ``today``, if there is one."""
    # Per window only the earliest due date still inside it matters: comparing
    # dates spares a date for every due date and window, on every event.
    exits: list[date] = []
    for span in _WINDOW_SPANS:
        start = today - span
        if inside := [due for due in dues if due > start]:
            exits.append(min(inside) + span)
    return min(exits) if exits else None


def _next_tenure(
    today: date, started_on: date | None, marks: Sequence[int]
) -> date | None:
    """The earliest ``started_on + mark`` days later than ``today``, if any."""
    if started_on is None or not marks:
        return None
    elapsed = (today - started_on).days
    ahead = [mark for mark in marks if mark > elapsed]
    return started_on + timedelta(days=min(ahead)) if ahead else None


def features(state: CustomerState, as_of: datetime) -> Features:
    """The feature values rules see for ``state`` at ``as_of``."""
    # Every event and every re-scored customer computes these: each group walks
    # the invoices once, instead of once per feature.
    today = state.local_date(as_of)
    currency = state.currency
    values = _profile_features(state, today, currency)
    values.update(_balance_features(state, today, currency))
    values.update(_punctuality_features(state, today))
    values.update(_case_features(state))
    return values


def _profile_features(state: CustomerState, today: date, currency: str) -> Features:
    profile = state.profile
    tenure = (today - state.started_on).days if state.started_on else 0
    return {
        "billing_cycle": profile.get("billing_cycle", ""),
        "payment_method": profile.get("payment_method", ""),
        "preferred_channel": profile.get("preferred_channel", ""),
        "currency": currency,
        "country": profile.get("country", ""),
        "region": profile.get("region", ""),
        "time_zone": profile.get("time_zone", ""),
        "acquisition_channel": profile.get("acquisition_channel", ""),
        "last_payment_method": profile.get("last_payment_method", ""),
        "tenure_days": max(tenure, 0),
    }


def _balance_features(state: CustomerState, today: date, currency: str) -> Features:
    balance = overdue_balance = overdue = max_overdue = 0
    likeliest: float | None = None
    for invoice in state.open.values():
        late = invoice.due_date < today
        if invoice.currency == currency:
            balance += invoice.balance
            overdue_balance += invoice.balance if late else 0
        overdue += late
        max_overdue = max(max_overdue, (today - invoice.due_date).days)
        probability = invoice.late_probability
        if probability is not None and (likeliest is None or probability > likeliest):
            likeliest = probability
    reported = state.balances.get(currency)
    return {
        "lifetime_value_minor": state.lifetime_value.get(currency, 0),
        "open_balance_minor": reported[0] if reported else balance,
        "overdue_balance_minor": overdue_balance,
        "open_invoices": len(state.open),
        "overdue_invoices": overdue,
        "max_days_overdue": max_overdue,
        "max_late_probability": likeliest if likeliest is not None else 0.0,
    }


def _punctuality_features(state: CustomerState, today: date) -> Features:
    overdue = [i.due_date for i in state.open.values() if i.due_date < today]
    values: Features = {}
    for (due_name, rate_name), (due, on_time) in zip(
        _WINDOW_NAMES, _windows(state, today, overdue), strict=True
    ):
        values[due_name] = due
        values[rate_name] = on_time / due if due else 1.0
    settled = state.settled_count
    due_all = settled + len(overdue)
    on_time_all = settled - state.late_count
    recent = recent_days_late(state, 2 * TREND_SPAN)
    values["invoices_settled"] = settled
    values["invoices_due_all"] = due_all
    values["on_time_rate_all"] = on_time_all / due_all if due_all else 1.0
    values["late_rate"] = state.late_count / settled if settled else 0.0
    values["avg_days_late"] = state.days_late_sum / settled if settled else 0.0
    values["p90_days_late"] = float(percentile(state.days_late_histogram, 0.9))
    values["avg_days_to_pay"] = state.days_to_pay_sum / settled if settled else 0.0
    values["days_late_trend"] = _trend(recent)
    values["last_days_late"] = recent[-1] if recent else 0
    return values


def _windows(
    state: CustomerState, today: date, overdue: list[date]
) -> Sequence[tuple[int, int]]:
    """:func:`window_counts` for every window, in one walk over the invoices.

    ``overdue`` holds the due dates of the open invoices already past due.
    """
    fell_due = [(due_date, False) for due_date in overdue]
    for closed in state.closed.values():
        due_date = closed.due_date
        if not closed.counted or due_date > today:
            continue
        settled = closed.settled_date <= today
        if settled or due_date < today:
            fell_due.append((due_date, settled and closed.settled_date <= due_date))
    if not fell_due:
        return _NO_WINDOWS
    counts: list[tuple[int, int]] = []
    for span in _WINDOW_SPANS:
        start = today - span
        inside = [punctual for due_date, punctual in fell_due if start < due_date]
        counts.append((len(inside), sum(inside)))
    return counts


def _case_features(state: CustomerState) -> Features:
    invoices = state.settled_count + len(state.open)
    return {
        "disputes_open": sum(1 for s in state.disputes.values() if s == "open"),
        "disputes_total": state.disputes_total,
        "dispute_rate": min(state.disputes_total / invoices, 1.0) if invoices else 0.0,
        "disputes_lost": state.disputes_lost,
        "promises_made": state.promises_made,
        "promises_broken": state.promises_broken,
        "payment_failures": state.payment_failures,
        "last_payment_failure_reason": state.last_failure_reason,
    }


def window_counts(state: CustomerState, today: date, days: int) -> tuple[int, int]:
    """Invoices that fell due in the last ``days`` days, and those paid on time.

    An invoice falls due once its due date has passed, or earlier if it was settled;
    one still open past due counts as late.
    """
    start = today - timedelta(days=days)
    due = on_time = 0
    for closed in state.closed.values():
        if not closed.counted or not start < closed.due_date <= today:
            continue
        settled = closed.settled_date <= today
        if settled or closed.due_date < today:
            due += 1
            on_time += settled and closed.settled_date <= closed.due_date
    for invoice in state.open.values():
        if start < invoice.due_date < today:
            due += 1
    return due, on_time


def percentile(histogram: dict[int, int], share: float) -> int:
    """The smallest value with at least ``share`` of the observations at or below."""
    total = sum(histogram.values())
    if total == 0:
        return 0
    rank = math.ceil(share * total)
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    return max(histogram)


def recent_days_late(state: CustomerState, count: int) -> list[int]:
    """Days late of the last ``count`` counted settlements, oldest first."""
    # Days late follow from the two dates, so they need working out only for the
    # last few: every event and every assessment asks for them.
    counted = [(c.settled_date, c.due_date) for c in state.closed.values() if c.counted]
    counted.sort()
    return [max(0, (settled - due).days) for settled, due in counted[-count:]]


def days_late_trend(state: CustomerState) -> float:
    """Mean days late of the last few settlements minus that of the few before."""
    return _trend(recent_days_late(state, 2 * TREND_SPAN))


def _trend(recent: list[int]) -> float:
    if len(recent) < 2:
        return 0.0
    half = len(recent) // 2
    older, newer = recent[:half], recent[half:]
    return sum(newer) / len(newer) - sum(older) / len(older)
