"""KPIs of the IBM accounts-receivable sample, computed straight from the CSV.

Written without the metrics service's code, from the KPI definitions in BRIEF.md, so
that the service and this reference can only agree by both being right.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from tests.ingest.fixtures.data import IBM_CSV

# The very file the replay imports through ingest.
CSV = IBM_CSV


@dataclass(frozen=True)
class Row:
    customer: str
    invoice: str
    country: str
    paperless: date
    issued: date
    due: date
    cents: int
    settled: date
    days_to_settle: int
    days_late: int


def _day(text: str) -> date:
    return datetime.strptime(text, "%m/%d/%Y").date()


def rows() -> list[Row]:
    with CSV.open(newline="") as handle:
        return [
            Row(
                customer=r["customerID"],
                invoice=r["invoiceNumber"],
                country=r["countryCode"],
                paperless=_day(r["PaperlessDate"]),
                issued=_day(r["InvoiceDate"]),
                due=_day(r["DueDate"]),
                cents=int(Decimal(r["InvoiceAmount"]) * 100),
                settled=_day(r["SettledDate"]),
                days_to_settle=int(r["DaysToSettle"]),
                days_late=int(r["DaysLate"]),
            )
            for r in csv.DictReader(handle)
        ]


def _f(value: Fraction | None) -> float | None:
    return None if value is None else float(value)


def _share(part: int, whole: int) -> Fraction | None:
    return Fraction(part, whole) if whole else None


def _open_on(data: list[Row], day: date) -> list[Row]:
    return [r for r in data if r.issued <= day < r.settled]


def expected(data: list[Row], as_of: date, window: int | None) -> dict[str, Any]:
    """The parts of the API answer the CSV determines, as plain numbers."""
    issued = [r for r in data if r.issued <= as_of]
    start = (
        as_of - timedelta(days=window - 1) if window else min(r.issued for r in issued)
    )
    days = (as_of - start).days + 1

    def in_window(day: date) -> bool:
        return start <= day <= as_of

    due = [r for r in issued if in_window(r.due)]
    on_time = [r for r in due if r.settled <= as_of and r.settled <= r.due]
    paid = sorted(
        (r for r in issued if in_window(r.settled)), key=lambda r: r.days_to_settle
    )
    spans = [(r.settled - r.issued).days for r in paid]
    late = [max(0, (r.settled - r.due).days) for r in paid]
    n = len(spans)
    median = None
    if n:
        median = (
            Fraction(spans[n // 2])
            if n % 2
            else Fraction(spans[n // 2 - 1] + spans[n // 2], 2)
        )
    buckets = dict.fromkeys(["current", "1_30", "31_60", "61_90", "90_plus"], 0)
    counts = dict.fromkeys(buckets, 0)
    for r in _open_on(data, as_of):
        past = (as_of - r.due).days
        name = (
            "current"
            if past <= 0
            else "1_30"
            if past <= 30
            else "31_60"
            if past <= 60
            else "61_90"
            if past <= 90
            else "90_plus"
        )
        buckets[name] += r.cents
        counts[name] += 1
    ending = sum(buckets.values())
    current = buckets["current"]
    beginning = sum(r.cents for r in _open_on(data, start - timedelta(days=1)))
    sales = sum(r.cents for r in issued if in_window(r.issued))
    dso = _share(ending, sales)
    bpdso = _share(current, sales)
    cei = _share(beginning + sales - ending, beginning + sales - current)
    return {
        "invoices": len(issued),
        "period": {"start": start.isoformat(), "end": as_of.isoformat(), "days": days},
        "on_time": {
            "invoices_due": len(due),
            "paid_on_time": len(on_time),
            "on_time_rate": _f(_share(len(on_time), len(due))),
            "amount_due_minor": sum(r.cents for r in due),
            "amount_paid_on_time_minor": sum(r.cents for r in on_time),
            "on_time_amount_rate": _f(
                _share(sum(r.cents for r in on_time), sum(r.cents for r in due))
            ),
        },
        "days_to_pay": {
            "invoices_settled": n,
            "total_days": sum(spans),
            "mean_days": _f(_share(sum(spans), n)),
            "median_days": _f(median),
            "p90_days": spans[math.ceil(0.9 * n) - 1] if n else None,
            "days_late": {
                "total_days_late": sum(late),
                "mean_days_late": _f(_share(sum(late), n)),
                "paid_late": sum(1 for d in late if d),
                "max_days_late": max(late, default=None),
            },
        },
        "aging": {
            "buckets": [
                {"bucket": b, "amount_minor": buckets[b], "invoices": counts[b]}
                for b in buckets
            ],
            "open_ar_minor": ending,
            "current_ar_minor": current,
            "overdue_ar_minor": ending - current,
        },
        "receivables": {
            "beginning_ar_minor": beginning,
            "ending_ar_minor": ending,
            "ending_current_ar_minor": current,
            "credit_sales_minor": sales,
            "written_off_minor": 0,
            "dso_days": _f(None if dso is None else dso * days),
            "countback_dso_days": _f(_countback(issued, start, as_of, ending)),
            "best_possible_dso_days": _f(None if bpdso is None else bpdso * days),
            "add_days": _f(
                None if dso is None or bpdso is None else (dso - bpdso) * days
            ),
            "cei_percent": _f(None if cei is None else cei * 100),
            "bad_debt_ratio": _f(_share(0, sales)),
        },
        "billing_months": _months(issued, start, as_of),
    }


def _countback(issued: list[Row], start: date, end: date, ar: int) -> Fraction:
    left = Fraction(ar)
    total = Fraction(0)
    month_end = end
    while left > 0 and month_end >= start:
        first = max(month_end.replace(day=1), start)
        span = (month_end - first).days + 1
        sales = sum(r.cents for r in issued if first <= r.issued <= month_end)
        if sales >= left:
            return total + left / sales * span
        left -= sales
        total += span
        month_end = month_end.replace(day=1) - timedelta(days=1)
    return total


def _months(issued: list[Row], start: date, end: date) -> list[dict[str, Any]]:
    grouped: dict[str, list[Row]] = {}
    for r in issued:
        if start <= r.issued <= end:
            grouped.setdefault(r.issued.strftime("%Y-%m"), []).append(r)
    result = []
    for month in sorted(grouped):
        found = grouped[month]
        invoiced = sum(r.cents for r in found)
        paid = {
            str(k): sum(
                r.cents
                for r in found
                if r.settled <= min(r.issued + timedelta(days=k), end)
            )
            for k in (0, 30, 60, 90)
        }
        result.append(
            {
                "month": month,
                "invoices": len(found),
                "invoiced_minor": invoiced,
                "paid_within_minor": paid,
                "paid_within_share": {k: v / invoiced for k, v in paid.items()},
            }
        )
    return result


def cohort_on(row_paperless: date, country: str, day: date) -> str:
    """The test's membership rule: by country, then 'paperless' from the switch."""
    if day >= row_paperless and row_paperless.year == 2013:
        return "paperless"
    return f"country-{country}"


def subset(actual: Any, wanted: Any) -> Any:
    """``actual`` cut down to the keys ``wanted`` names, for a readable diff."""
    if isinstance(wanted, dict):
        return {k: subset(actual[k], v) for k, v in wanted.items()}
    if isinstance(wanted, list):
        return [subset(a, w) for a, w in zip(actual, wanted, strict=True)]
    return actual
