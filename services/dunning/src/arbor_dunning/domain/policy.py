"""Dunning policies: per-cohort, versioned ladders of steps with contact rules."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import time
from decimal import Decimal
from typing import Literal

from arbor_dunning.domain.errors import InvalidPolicyError

StepChannel = Literal["email", "sms", "letter", "task"]
IncentiveKind = Literal["early_payment_discount", "payment_plan_offer", "fee_waiver"]
CatchUp = Literal["latest_only", "skip_missed"]

DEFAULT_COHORT = "default"
HOLDOUT = "holdout"
CONTROL = "control"


@dataclass(frozen=True)
class Incentive:
    """An offer published for the billing system; dunning never edits invoices."""

    kind: IncentiveKind
    percent: Decimal | None = None
    valid_days: int | None = None


@dataclass(frozen=True)
class Fee:
    """A late fee: fixed minor units or a percentage of the balance, capped."""

    fixed_minor: int | None = None
    percent: Decimal | None = None
    grace_days: int = 0
    cap_minor: int | None = None


@dataclass(frozen=True)
class Step:
    name: str
    offset_days: int
    channel: StepChannel
    template: str
    incentive: Incentive | None = None
    fee: Fee | None = None


@dataclass(frozen=True)
class ContactRules:
    """When a customer may be contacted, in their own time zone."""

    window_start: time = time(9)
    window_end: time = time(18)
    business_days: bool = True
    weekly_cap: int = 3


@dataclass(frozen=True)
class Variant:
    """An experiment arm: ``weight`` percent of the customers not held out."""

    name: str
    weight: int
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Policy:
    cohort: str
    version: int
    steps: tuple[Step, ...]
    rules: ContactRules = field(default_factory=ContactRules)
    catch_up: CatchUp = "latest_only"
    variants: tuple[Variant, ...] = ()
    holdout_percent: int = 0

    @property
    def policy_id(self) -> str:
        return f"policy-{self.cohort}"

    def validate(self) -> Policy:
        """Return self, or raise naming the rule the policy breaks."""
        for ladder in (self.steps, *(v.steps for v in self.variants)):
            _validate_ladder(ladder)
        weights = sum(v.weight for v in self.variants)
        if weights + self.holdout_percent > 100:
            raise InvalidPolicyError(
                f"variant weights ({weights}) and hold-out ({self.holdout_percent}) "
                "exceed 100 percent"
            )
        if self.rules.window_start >= self.rules.window_end:
            raise InvalidPolicyError("the sending window must start before it ends")
        return self

    def assign(self, customer_id: str) -> tuple[str | None, tuple[Step, ...]]:
        """The variant a customer is in and its steps; the same answer every time."""
        if not self.variants and not self.holdout_percent:
            return None, self.steps
        bucket = _bucket(f"{self.policy_id}:{customer_id}")
        if bucket < self.holdout_percent:
            return HOLDOUT, ()
        position = bucket - self.holdout_percent
        for variant in self.variants:
            if position < variant.weight:
                return variant.name, variant.steps
            position -= variant.weight
        return CONTROL, self.steps


def _bucket(text: str) -> int:
    # A hash, not random(): a customer stays in one arm across restarts and replicas.
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % 100


def _validate_ladder(steps: tuple[Step, ...]) -> None:
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise InvalidPolicyError(f"step names must be unique, got {names}")
    offsets = [s.offset_days for s in steps]
    if offsets != sorted(offsets) or len(set(offsets)) != len(offsets):
        raise InvalidPolicyError(
            f"step offsets must be strictly increasing, got {offsets}"
        )
    for step in steps:
        if step.fee and step.fee.fixed_minor is None and step.fee.percent is None:
            raise InvalidPolicyError(f"fee of step {step.name!r} has no amount")
        if step.fee and step.fee.fixed_minor is not None and step.fee.percent:
            raise InvalidPolicyError(
                f"fee of step {step.name!r} is either fixed or a percentage, not both"
            )


def default_policy(cohort: str = DEFAULT_COHORT) -> Policy:
    """The seeded ladder: courtesy, due date, plan offer, late fee, escalation."""
    return Policy(
        cohort=cohort,
        version=1,
        steps=(
            Step("courtesy", -3, "email", "courtesy"),
            Step("due_today", 0, "email", "due_today"),
            Step(
                "plan_offer",
                7,
                "email",
                "payment_plan",
                incentive=Incentive("payment_plan_offer", valid_days=14),
            ),
            Step(
                "late_fee",
                14,
                "email",
                "late_fee",
                fee=Fee(percent=Decimal("1.5"), grace_days=7, cap_minor=5_000),
            ),
            Step("escalation", 30, "task", "escalation"),
        ),
    )
