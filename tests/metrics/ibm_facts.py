"""The IBM sample as events the tests write to the topics themselves.

``ledger_records`` stands in for ingest where a test is about metrics alone (the
crash test); the replay test takes its ledger facts from ingest instead. The cohort
moves are synthetic everywhere: by country, then "paperless" from a 2013
PaperlessDate, the rule ``ibm_reference.cohort_on`` states.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from arbor_shared.events import CohortChanged, InvoiceBalanceChanged, InvoiceSettled
from tests.metrics.ibm_reference import Row
from tests.support import encode

Record = tuple[bytes | None, bytes, list[tuple[str, bytes]]]


def _at(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def ledger_records(data: list[Row]) -> list[Record]:
    """An InvoiceBalanceChanged at issue and an InvoiceSettled per row."""
    records: list[Record] = []
    for row in data:
        common: dict[str, Any] = {
            "customer_id": row.customer,
            "invoice_id": row.invoice,
            "currency": "USD",
            "issue_date": row.issued,
            "due_date": row.due,
            "amount_minor": row.cents,
            "credited_minor": 0,
            "written_off_minor": 0,
        }
        issued = InvoiceBalanceChanged(
            **common,
            paid_minor=0,
            balance_minor=row.cents,
            status="open",
            cause_event_id=f"issue-{row.invoice}",
            cause_event_type="InvoiceIssued",
            changed_at=_at(row.issued),
        )
        settled = InvoiceSettled(
            **common,
            paid_minor=row.cents,
            settled_by="payment",
            settled_at=_at(row.settled),
            settled_date=row.settled,
        )
        records += [encode(issued), encode(settled)]
    return records


def cohort_moves(data: list[Row]) -> list[CohortChanged]:
    """Every customer's membership versions, newest first."""
    customers = {row.customer: row for row in data}
    moves = []
    for customer, row in sorted(customers.items()):
        first = CohortChanged(
            customer_id=customer,
            from_cohort=None,
            to_cohort=f"country-{row.country}",
            definition_version=1,
            rule="country",
            features={"country": row.country},
            version=1,
            changed_at=_at(date(2011, 12, 31)),
        )
        moves.append(first)
        if row.paperless.year == 2013:
            moves.append(
                first.model_copy(
                    update={
                        "from_cohort": first.to_cohort,
                        "to_cohort": "paperless",
                        "version": 2,
                        "changed_at": _at(row.paperless),
                    }
                )
            )
    # Newest first: the stale version 1 arrives after version 2 and must lose.
    return moves[::-1]


def cohort_records(moves: list[CohortChanged]) -> list[Record]:
    """The moves as records whose event ids say whose version each is."""
    return [encode(move, event_id=move_id(move)) for move in moves]


def move_id(move: CohortChanged) -> str:
    return f"cohort-{move.customer_id}-{move.version}"
