"""DSO, best possible DSO, ADD, CEI and bad debt: the balance-sheet KPIs."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

from arbor_metrics.domain.kpis import Period, ratio


@dataclass(frozen=True)
class Receivables:
    """AR at both ends of the period and the sales in between, in minor units."""

    period: Period
    beginning_ar_minor: int
    ending_ar_minor: int
    ending_current_ar_minor: int
    credit_sales_minor: int
    written_off_minor: int
    monthly_sales_minor: dict[date, int]

    @property
    def dso(self) -> Fraction | None:
        """Simple DSO: ending AR / credit sales * days in the period."""
        share = ratio(self.ending_ar_minor, self.credit_sales_minor)
        return None if share is None else share * self.period.days

    @property
    def best_possible_dso(self) -> Fraction | None:
        share = ratio(self.ending_current_ar_minor, self.credit_sales_minor)
        return None if share is None else share * self.period.days

    @property
    def add(self) -> Fraction | None:
        """Average days delinquent: DSO - best possible DSO."""
        if self.dso is None or self.best_possible_dso is None:
            return None
        return self.dso - self.best_possible_dso

    @property
    def cei_percent(self) -> Fraction | None:
        """Collection effectiveness index, in percent."""
        available = self.beginning_ar_minor + self.credit_sales_minor
        collected = available - self.ending_ar_minor
        collectible = available - self.ending_current_ar_minor
        share = ratio(collected, collectible)
        return None if share is None else share * 100

    @property
    def bad_debt_ratio(self) -> Fraction | None:
        """Written off in the period ÷ credit sales of the period."""
        return ratio(self.written_off_minor, self.credit_sales_minor)

    @property
    def countback_dso(self) -> Fraction | None:
        """Walk back month by month, consuming each month's sales until AR is gone."""
        if self.ending_ar_minor == 0:
            return Fraction(0)
        remaining = Fraction(self.ending_ar_minor)
        days = Fraction(0)
        for month_start, span in months_back(self.period):
            sales = self.monthly_sales_minor.get(month_start, 0)
            if sales >= remaining:
                return days + remaining / sales * span
            remaining -= sales
            days += span
        # Sales of the whole period do not cover AR: every day of it is owed.
        return days


def months_back(period: Period) -> list[tuple[date, int]]:
    """Calendar months from the period's end back to its start, with days covered."""
    months: list[tuple[date, int]] = []
    end = period.end
    while end >= period.start:
        first = end.replace(day=1)
        start = max(first, period.start)
        months.append((first, (end - start).days + 1))
        end = first - timedelta(days=1)
    return months


def month_of(day: date) -> date:
    return day.replace(day=1)


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])
