"""Replay the IBM accounts-receivable sample in time order through the domain model.

Each CSV row becomes the events the service would consume (customer created, invoice
issued, dispute opened and resolved, invoice settled by the ledger), sorted by time
and applied with :func:`arbor_segmentation.domain.engine.apply`, the function the
service's consumer calls. The late-payment probability of every invoice is taken when
it is issued (before anything about its own payment is known) and scored against
whether it was paid late, beside the baseline "the customer's historical late rate".

Usage: ``uv run python -m bench.segmentation.evaluate_ibm [path/to/csv]``
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from arbor_segmentation.domain import defaults, engine, rules
from arbor_segmentation.domain.features import CustomerState, features
from arbor_segmentation.domain.prediction import LatePaymentModel
from arbor_shared.events import (
    CustomerCreated,
    CustomerUpdated,
    DisputeOpened,
    DisputeResolved,
    EventData,
    InvoiceIssued,
    InvoiceSettled,
)

DATA = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "data"
    / "ibm-accounts-receivable.csv"
)
COUNTRIES = {"391": "US", "406": "CA", "770": "MX", "818": "BR", "897": "GB"}


@dataclass(frozen=True)
class Row:
    customer: str
    country: str
    invoice: str
    issued: date
    due: date
    settled: date
    amount_minor: int
    disputed: bool
    paperless: bool
    paperless_since: date
    days_late: int


def read_rows(path: Path) -> list[Row]:
    with path.open(newline="") as handle:
        return [_row(r) for r in csv.DictReader(handle)]


def _row(raw: dict[str, str]) -> Row:
    return Row(
        customer=raw["customerID"],
        country=raw["countryCode"],
        invoice=raw["invoiceNumber"],
        issued=_date(raw["InvoiceDate"]),
        due=_date(raw["DueDate"]),
        settled=_date(raw["SettledDate"]),
        amount_minor=round(float(raw["InvoiceAmount"]) * 100),
        disputed=raw["Disputed"] == "Yes",
        paperless=raw["PaperlessBill"] == "Electronic",
        paperless_since=_date(raw["PaperlessDate"]),
        days_late=int(raw["DaysLate"]),
    )


def _date(text: str) -> date:
    month, day, year = (int(p) for p in text.split("/"))
    return date(year, month, day)


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), UTC)


def events(
    rows: list[Row], *, early_disputes: bool = True
) -> list[tuple[datetime, int, EventData]]:
    """Every row's events with their times; the sequence number keeps ties stable."""
    timeline: list[tuple[datetime, int, EventData]] = []
    first: dict[str, Row] = {}
    for row in sorted(rows, key=lambda r: r.issued):
        first.setdefault(row.customer, row)
    for customer, row in first.items():
        created = CustomerCreated(
            customer_id=customer,
            name=customer,
            country=COUNTRIES.get(row.country, "US"),
            region=row.country,
            time_zone="UTC",
            currency="USD",
            preferred_channel="letter",
            started_on=row.issued,
        )
        timeline.append((_at(row.issued, 0), len(timeline), created))
        # The sample dates the switch to paperless billing: from then on the
        # customer is billed by e-mail.
        paperless = created.model_copy(update={"preferred_channel": "email"})
        switched = CustomerUpdated(**paperless.model_dump())
        if any(r.paperless for r in rows if r.customer == customer):
            timeline.append((_at(row.paperless_since, 1), len(timeline), switched))
    for row in rows:
        timeline.extend(
            (moment, len(timeline) + i, data)
            for i, (moment, data) in enumerate(_invoice_events(row, early_disputes))
        )
    return sorted(timeline, key=lambda t: (t[0], t[1]))


def _invoice_events(row: Row, early_disputes: bool) -> list[tuple[datetime, EventData]]:
    issued = InvoiceIssued(
        customer_id=row.customer,
        invoice_id=row.invoice,
        currency="USD",
        amount_minor=row.amount_minor,
        issue_date=row.issued,
        due_date=row.due,
        issued_at=_at(row.issued, 9),
    )
    settled = InvoiceSettled(
        customer_id=row.customer,
        invoice_id=row.invoice,
        currency="USD",
        issue_date=row.issued,
        due_date=row.due,
        amount_minor=row.amount_minor,
        paid_minor=row.amount_minor,
        credited_minor=0,
        written_off_minor=0,
        settled_by="payment",
        settled_at=_at(row.settled, 17),
        settled_date=row.settled,
    )
    timeline: list[tuple[datetime, EventData]] = [(_at(row.issued, 9), issued)]
    if row.disputed:
        timeline.extend(_dispute(row, early_disputes))
    timeline.append((_at(row.settled, 17), settled))
    return timeline


def _dispute(row: Row, early: bool) -> list[tuple[datetime, EventData]]:
    # The sample says whether an invoice was disputed, not when. Disputes are raised
    # on receipt of the invoice in practice, so the replay opens them the day after
    # issue (before the due date) and resolves them when the invoice settles; the
    # pessimistic variant opens them only at settlement, when nothing can be learnt.
    dispute = f"dsp-{row.invoice}"
    opened_on = (
        min(row.issued + timedelta(days=1), row.settled) if early else row.settled
    )
    opened_at = _at(opened_on, 10 if early else 16)
    opened = DisputeOpened(
        customer_id=row.customer,
        dispute_id=dispute,
        invoice_id=row.invoice,
        currency="USD",
        amount_minor=row.amount_minor,
        reason="sample: disputed",
        opened_at=opened_at,
    )
    resolved = DisputeResolved(
        customer_id=row.customer,
        dispute_id=dispute,
        invoice_id=row.invoice,
        outcome="won",
        resolved_at=_at(row.settled, 16),
    )
    return [(opened_at, opened), (_at(row.settled, 16), resolved)]


@dataclass
class Scores:
    model: list[float]
    at_issue: list[float]
    baseline: list[float]
    baseline_at_due: list[float]
    late: list[bool]


def replay(
    rows: list[Row], year: int, *, early_disputes: bool = True
) -> tuple[Scores, dict[str, CustomerState]]:
    """Apply every event in time order; score the invoices issued in ``year``."""
    model = LatePaymentModel()
    states: dict[str, CustomerState] = {}
    late = {row.invoice: row.days_late > 0 for row in rows}
    due = {row.invoice: _at(row.due, 23) for row in rows}
    at_due: dict[str, float] = {}
    at_issue: dict[str, float] = {}
    baseline: dict[str, float] = {}
    baseline_at_due: dict[str, float] = {}
    seen_late = seen = 0
    for moment, _, event in events(rows, early_disputes=early_disputes):
        state = states.setdefault(event.customer_id, CustomerState(event.customer_id))
        if isinstance(event, InvoiceIssued):
            settled = state.settled_count
            prior = seen_late / seen if seen else 0.5
            baseline[event.invoice_id] = (
                state.late_count / settled if settled else prior
            )
        applied = engine.apply(state, event, at=moment, as_of=moment, model=model)
        if isinstance(event, InvoiceIssued):
            baseline_at_due[event.invoice_id] = baseline[event.invoice_id]
        if isinstance(event, InvoiceSettled):
            rate = state.late_count / state.settled_count
            for invoice in state.open:
                if moment <= due[invoice]:
                    baseline_at_due[invoice] = rate
        for invoice, assessment in applied.assessments.items():
            at_issue.setdefault(invoice, assessment.late_probability)
            if moment <= due[invoice]:
                at_due[invoice] = assessment.late_probability
        if isinstance(event, InvoiceSettled):
            seen += 1
            seen_late += late[event.invoice_id]
    chosen = [row.invoice for row in rows if row.issued.year == year]
    scores = Scores(
        model=[at_due[i] for i in chosen],
        at_issue=[at_issue[i] for i in chosen],
        baseline=[baseline[i] for i in chosen],
        baseline_at_due=[baseline_at_due[i] for i in chosen],
        late=[late[i] for i in chosen],
    )
    return scores, states


def roc_auc(scores: list[float], labels: list[bool]) -> float:
    """Area under the ROC curve by ranks (ties share their average rank)."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    positives = sum(labels)
    negatives = len(labels) - positives
    rank_sum = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def brier(scores: list[float], labels: list[bool]) -> float:
    pairs = zip(scores, labels, strict=True)
    return sum((p - float(y)) ** 2 for p, y in pairs) / len(labels)


def cohorts(states: dict[str, CustomerState], as_of: datetime) -> Counter[str]:
    """Cohort counts under the seeded definition at ``as_of``."""
    definition = rules.build(1, defaults.SEED_RULES, defaults.DEFAULT_COHORT)
    return Counter(
        definition.evaluate(features(state, as_of)).cohort for state in states.values()
    )


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DATA
    rows = read_rows(path)
    scores, states = replay(rows, 2013)
    late_disputes, _ = replay(rows, 2013, early_disputes=False)
    print(f"invoices issued in 2013: {len(scores.late)}, late: {sum(scores.late)}")
    for name, values in (
        ("model, as of the due date", scores.model),
        ("model, as of due, disputes known late", late_disputes.model),
        ("model, at issue", scores.at_issue),
        ("baseline: historical late rate", scores.baseline),
        ("baseline, as of the due date", scores.baseline_at_due),
    ):
        auc = roc_auc(values, scores.late)
        print(f"{name:38} ROC AUC {auc:.4f}  Brier {brier(values, scores.late):.4f}")
    last = max(row.settled for row in rows)
    for cohort, count in cohorts(states, _at(last, 23)).most_common():
        print(f"cohort {cohort:31} {count}")


if __name__ == "__main__":
    main()
