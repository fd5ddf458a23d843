"""The JSON shape of a policy: what operators post and what the database stores."""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from arbor_dunning.domain.policy import (
    CatchUp,
    ContactRules,
    Fee,
    Incentive,
    IncentiveKind,
    Policy,
    Step,
    StepChannel,
    Variant,
)

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
Percent = Annotated[Decimal, Field(gt=0, le=100, max_digits=6, decimal_places=3)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class IncentiveDocument(_Strict):
    kind: IncentiveKind
    percent: Annotated[Percent | None, Field(strict=False)] = None
    valid_days: int | None = Field(default=None, ge=1, le=365)


class FeeDocument(_Strict):
    fixed_minor: int | None = Field(default=None, gt=0)
    percent: Annotated[Percent | None, Field(strict=False)] = None
    grace_days: int = Field(default=0, ge=0, le=365)
    cap_minor: int | None = Field(default=None, gt=0)


class StepDocument(_Strict):
    name: Name
    offset_days: int = Field(ge=-90, le=365)
    channel: StepChannel
    template: Name
    incentive: IncentiveDocument | None = None
    fee: FeeDocument | None = None


class ContactRulesDocument(_Strict):
    window_start: Annotated[time, Field(strict=False)] = time(9)
    window_end: Annotated[time, Field(strict=False)] = time(18)
    business_days: bool = True
    weekly_cap: int = Field(default=3, ge=1, le=50)


class VariantDocument(_Strict):
    name: Name
    weight: int = Field(ge=1, le=100)
    steps: list[StepDocument] = Field(min_length=1, max_length=20)


class PolicyDocument(_Strict):
    """A policy version: steps, contact rules, catch-up rule and experiment arms."""

    steps: list[StepDocument] = Field(min_length=1, max_length=20)
    rules: ContactRulesDocument = ContactRulesDocument()
    catch_up: CatchUp = "latest_only"
    variants: list[VariantDocument] = Field(default_factory=list, max_length=5)
    holdout_percent: int = Field(default=0, ge=0, le=50)

    def to_policy(self, cohort: str, version: int) -> Policy:
        """The domain policy this document describes, validated."""
        r = self.rules
        return Policy(
            cohort=cohort,
            version=version,
            steps=tuple(_step(s) for s in self.steps),
            rules=ContactRules(
                r.window_start, r.window_end, r.business_days, r.weekly_cap
            ),
            catch_up=self.catch_up,
            variants=tuple(
                Variant(v.name, v.weight, tuple(_step(s) for s in v.steps))
                for v in self.variants
            ),
            holdout_percent=self.holdout_percent,
        ).validate()

    @classmethod
    def from_policy(cls, policy: Policy) -> PolicyDocument:
        """The document of a domain policy (used to seed the defaults)."""
        return cls.model_validate(
            {
                "steps": [_step_dict(s) for s in policy.steps],
                "rules": {
                    "window_start": policy.rules.window_start,
                    "window_end": policy.rules.window_end,
                    "business_days": policy.rules.business_days,
                    "weekly_cap": policy.rules.weekly_cap,
                },
                "catch_up": policy.catch_up,
                "variants": [
                    {
                        "name": v.name,
                        "weight": v.weight,
                        "steps": [_step_dict(s) for s in v.steps],
                    }
                    for v in policy.variants
                ],
                "holdout_percent": policy.holdout_percent,
            },
            strict=False,
        )


def _step(doc: StepDocument) -> Step:
    incentive = fee = None
    if doc.incentive:
        i = doc.incentive
        incentive = Incentive(i.kind, i.percent, i.valid_days)
    if doc.fee:
        f = doc.fee
        fee = Fee(f.fixed_minor, f.percent, f.grace_days, f.cap_minor)
    return Step(doc.name, doc.offset_days, doc.channel, doc.template, incentive, fee)


def _step_dict(step: Step) -> dict[str, object]:
    result: dict[str, object] = {
        "name": step.name,
        "offset_days": step.offset_days,
        "channel": step.channel,
        "template": step.template,
    }
    if step.incentive:
        result["incentive"] = {
            "kind": step.incentive.kind,
            "percent": step.incentive.percent,
            "valid_days": step.incentive.valid_days,
        }
    if step.fee:
        result["fee"] = {
            "fixed_minor": step.fee.fixed_minor,
            "percent": step.fee.percent,
            "grace_days": step.fee.grace_days,
            "cap_minor": step.fee.cap_minor,
        }
    return result


def step_spec(step: Step) -> dict[str, object]:
    """The JSON a planned step row keeps of its incentive and fee."""
    return StepDocument.model_validate(_step_dict(step), strict=False).model_dump(
        mode="json"
    )


def step_from_spec(spec: dict[str, object]) -> Step:
    """The step a planned row was made from."""
    return _step(StepDocument.model_validate(spec, strict=False))
