"""The customer state as a JSON document, for the database and back."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import orjson

from arbor_segmentation.domain.features import ClosedInvoice, CustomerState, OpenInvoice

# The histogram of days late is keyed by whole numbers.
_STATE_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(state: CustomerState) -> bytes:
    """The :func:`dump` document of ``state`` as JSON, several times faster."""
    # orjson writes the dataclasses' fields by name, dates and instants in ISO 8601
    # and tuples as lists: the same document as dump, without building it first.
    return orjson.dumps(state, option=_STATE_OPTIONS)


def dumps_holding_states(value: Any) -> bytes:
    """``value`` as JSON, each state in it written as :func:`dumps` writes it."""
    # A batch's states go to the database in one document; writing it at once
    # spares encoding each state on its own and copying the pieces together.
    return orjson.dumps(value, option=_STATE_OPTIONS)


def dump(state: CustomerState) -> dict[str, Any]:
    """A JSON-ready document of ``state``."""
    return {
        "customer_id": state.customer_id,
        "profile": state.profile,
        "profile_times": {k: v.isoformat() for k, v in state.profile_times.items()},
        "started_on": _iso(state.started_on),
        "open": {k: _dump_open(v) for k, v in state.open.items()},
        "closed": {k: _dump_closed(v) for k, v in state.closed.items()},
        "settled_count": state.settled_count,
        "late_count": state.late_count,
        "days_late_sum": state.days_late_sum,
        "days_to_pay_sum": state.days_to_pay_sum,
        "days_late_histogram": {
            str(k): v for k, v in state.days_late_histogram.items()
        },
        "lifetime_value": state.lifetime_value,
        "balances": {
            currency: [amount, at.isoformat()]
            for currency, (amount, at) in state.balances.items()
        },
        "disputes": state.disputes,
        "disputes_total": state.disputes_total,
        "disputes_lost": state.disputes_lost,
        "promises": state.promises,
        "promises_made": state.promises_made,
        "promises_broken": state.promises_broken,
        "payment_failures": state.payment_failures,
        "last_failure_reason": state.last_failure_reason,
        "last_failure_at": _iso(state.last_failure_at),
        "horizon": _iso(state.horizon),
    }


def _dump_open(invoice: OpenInvoice) -> dict[str, Any]:
    return {
        "currency": invoice.currency,
        "amount": invoice.amount,
        "balance": invoice.balance,
        "issue_date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat(),
        "changed_at": invoice.changed_at.isoformat(),
        "disputed": invoice.disputed,
        "late_probability": invoice.late_probability,
        "expected_pay_date": _iso(invoice.expected_pay_date),
        "model_inputs": invoice.model_inputs,
    }


def _dump_closed(closed: ClosedInvoice) -> dict[str, Any]:
    return {
        "due_date": closed.due_date.isoformat(),
        "issue_date": closed.issue_date.isoformat(),
        "settled_date": closed.settled_date.isoformat(),
        "currency": closed.currency,
        "paid": closed.paid,
        "counted": closed.counted,
    }


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def load(document: dict[str, Any]) -> CustomerState:
    """The state a :func:`dump` document describes."""
    values = dict(document)
    values["profile_times"] = _profile_times(values)
    values["last_failure_at"] = _instant(values.get("last_failure_at"))
    values["started_on"] = _day(values.get("started_on"))
    values["horizon"] = _day(values.get("horizon"))
    values["open"] = {k: _open(v) for k, v in values["open"].items()}
    values["closed"] = {k: _closed(v) for k, v in values["closed"].items()}
    values["days_late_histogram"] = {
        int(k): v for k, v in values["days_late_histogram"].items()
    }
    values["balances"] = {
        c: (amount, datetime.fromisoformat(at))
        for c, (amount, at) in values["balances"].items()
    }
    return CustomerState(**values)


def _open(values: dict[str, Any]) -> OpenInvoice:
    paid_on = values.get("expected_pay_date")
    return OpenInvoice(
        currency=values["currency"],
        amount=values["amount"],
        balance=values["balance"],
        issue_date=date.fromisoformat(values["issue_date"]),
        due_date=date.fromisoformat(values["due_date"]),
        changed_at=datetime.fromisoformat(values["changed_at"]),
        disputed=values["disputed"],
        late_probability=values["late_probability"],
        expected_pay_date=date.fromisoformat(paid_on) if paid_on else None,
        model_inputs=values["model_inputs"],
    )


def _closed(values: dict[str, Any]) -> ClosedInvoice:
    return ClosedInvoice(
        due_date=date.fromisoformat(values["due_date"]),
        issue_date=date.fromisoformat(values["issue_date"]),
        settled_date=date.fromisoformat(values["settled_date"]),
        currency=values["currency"],
        paid=values["paid"],
        counted=values["counted"],
    )


def _profile_times(values: dict[str, Any]) -> dict[str, datetime]:
    # States written before fields kept their own times had one time for the whole
    # profile: every field it holds was stated then.
    legacy = _instant(values.pop("profile_at", None))
    if legacy is not None:
        return dict.fromkeys([*values["profile"], "started_on"], legacy)
    times = values.get("profile_times", {})
    return {name: datetime.fromisoformat(at) for name, at in times.items()}


def _instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None
