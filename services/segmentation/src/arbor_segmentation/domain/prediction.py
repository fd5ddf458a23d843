"""The late-payment model: probability an open invoice is paid late, and when.

An online logistic regression (river) behind a running standard scaler. It learns
one example per counted settlement, from the inputs it saw when the invoice was
first known, so it never learns from facts that arrived after the prediction. Online
learning was chosen over a periodically refitted batch model because the service
already sees every settlement in order: the model is current after each one, needs
no scheduler, and its state is a few hundred bytes to persist.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass
from datetime import date, timedelta

from river import compose, linear_model, optim, preprocessing

from arbor_segmentation.domain.features import (
    CustomerState,
    OpenInvoice,
    percentile,
    recent_days_late,
)

MODEL_VERSION = "late-logreg-1"
_PRIOR_LATE = 0.5


@dataclass(frozen=True)
class Assessment:
    late_probability: float
    expected_pay_date: date
    inputs: dict[str, float]


def model_inputs(
    state: CustomerState, invoice: OpenInvoice, today: date
) -> dict[str, float]:
    """What the model knows about ``invoice`` on ``today`` from its customer's past."""
    settled = state.settled_count
    recent = recent_days_late(state, 5)
    terms = (invoice.due_date - invoice.issue_date).days
    others = [i for i in state.open.values() if i is not invoice]
    overdue = [i for i in others if i.due_date < today]
    oldest = max([(today - i.issue_date).days for i in others] + [0])
    return {
        "overdue_open": math.log1p(len(overdue)),
        "max_days_overdue": float(
            max([(today - i.due_date).days for i in overdue] + [0])
        ),
        "oldest_open_days": float(oldest),
        "late_rate": (state.late_count + _PRIOR_LATE) / (settled + 1),
        "recent_late_rate": (sum(d > 0 for d in recent) + _PRIOR_LATE)
        / (len(recent) + 1),
        "history": math.log1p(settled),
        "avg_days_late": state.days_late_sum / settled if settled else 0.0,
        "p90_days_late": float(percentile(state.days_late_histogram, 0.9)),
        "last_days_late": float(recent[-1]) if recent else 0.0,
        "avg_days_to_pay_over_terms": (
            state.days_to_pay_sum / settled - terms if settled else 0.0
        ),
        "disputes": math.log1p(state.disputes_total),
        "disputed": float(invoice.disputed),
        "open_invoices": math.log1p(len(state.open)),
        "log_amount": math.log1p(invoice.amount / 100),
        "terms_days": float(terms),
        "paper": float(state.profile.get("preferred_channel") == "letter"),
    }


class LatePaymentModel:
    """Scaled online logistic regression over :func:`model_inputs`."""

    def __init__(self) -> None:
        self._pipeline = compose.Pipeline(
            preprocessing.StandardScaler(),
            linear_model.LogisticRegression(
                optimizer=optim.SGD(0.02), l2=0.0001, intercept_lr=0.02
            ),
        )
        self.examples = 0

    def probability(self, inputs: dict[str, float]) -> float:
        """The probability of a late payment; the prior until trained."""
        if self.examples == 0:
            return inputs["late_rate"]
        proba = self._pipeline.predict_proba_one(inputs)
        return float(min(max(proba.get(True, 0.0), 0.0), 1.0))

    def learn(self, inputs: dict[str, float], late: bool) -> None:
        """Learn from one settled invoice."""
        self._pipeline.learn_one(inputs, late)
        self.examples += 1

    def adopt(self, other: LatePaymentModel) -> None:
        """Take ``other``'s learned state (a restored snapshot)."""
        self._pipeline = other._pipeline
        self.examples = other.examples

    def dump(self) -> bytes:
        return pickle.dumps(self)

    @staticmethod
    def load(payload: bytes) -> LatePaymentModel:
        # The payload is written by this service into its own table, never received.
        model = pickle.loads(payload)  # noqa: S301
        if not isinstance(model, LatePaymentModel):
            raise TypeError("the stored model is not a LatePaymentModel")
        return model


def assess(
    model: LatePaymentModel, state: CustomerState, invoice: OpenInvoice, today: date
) -> Assessment:
    """Score ``invoice`` on ``today`` and predict its pay date from the habits."""
    inputs = model_inputs(state, invoice, today)
    probability = model.probability(inputs)
    return Assessment(
        probability, expected_pay_date(state, invoice, probability), inputs
    )


def expected_pay_date(
    state: CustomerState, invoice: OpenInvoice, probability: float
) -> date:
    """The due date, pushed out by the customer's usual lateness when likely late."""
    settled = state.settled_count
    late = state.late_count
    typical_late = state.days_late_sum / late if late else 7.0
    delay = round(typical_late) if probability >= 0.5 else 0
    if settled and probability < 0.5:
        usual = state.days_to_pay_sum / settled
        early = invoice.issue_date + timedelta(days=round(usual))
        return min(early, invoice.due_date)
    return invoice.due_date + timedelta(days=delay)
