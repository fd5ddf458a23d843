"""Request and response models of the segmentation operations API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, JsonValue

CohortName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RuleCreate(_Strict):
    """One rule: when ``expression`` (CEL over the features) holds, the cohort."""

    name: CohortName
    priority: int = Field(ge=0, le=1_000_000, description="Lower is tried first")
    expression: str = Field(min_length=1, max_length=2000)
    cohort: CohortName | None = Field(
        default=None, description="The cohort it assigns; the rule's name if absent"
    )


class CohortDefinitionCreate(_Strict):
    """A candidate definition version: rules and the default cohort."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "description": "Late payers first",
                    "default_cohort": "standard",
                    "rules": [
                        {
                            "name": "chronic-late",
                            "priority": 10,
                            "expression": "on_time_rate_365 < 0.5",
                        }
                    ],
                }
            ]
        },
    )

    rules: list[RuleCreate] = Field(max_length=100)
    default_cohort: CohortName
    description: str = Field(default="", max_length=500)


class RuleRead(BaseModel):
    name: str
    priority: int
    expression: str
    cohort: str
    features: list[str]


class CohortDefinitionRead(BaseModel):
    version: int
    status: str
    rules: list[RuleRead]
    default_cohort: str
    description: str
    created_by: str
    created_at: datetime
    activated_at: datetime | None


class FlowRead(BaseModel):
    from_cohort: str | None
    to_cohort: str
    count: int
    samples: list[str]


class OverlapRead(BaseModel):
    rules: list[str]
    winner: str
    count: int
    samples: list[str]


class GapRead(BaseModel):
    """Customers no rule matches: only the default cohort holds them."""

    default_cohort: str
    count: int
    samples: list[str]


class SurveyRead(BaseModel):
    """What a definition does to today's customers."""

    definition_version: int | None
    as_of: datetime
    customers: int
    moving: int
    flows: list[FlowRead]
    overlaps: list[OverlapRead]
    gaps: GapRead


class ActivationRead(BaseModel):
    id: str
    definition_version: int
    status: str
    total: int
    processed: int
    moved: int
    progress: float
    started_at: datetime
    finished_at: datetime | None


class IntervalRead(BaseModel):
    version: int
    from_cohort: str | None
    to_cohort: str
    definition_version: int
    rule: str
    features: dict[str, JsonValue]
    valid_from: datetime
    valid_to: datetime | None


class MembershipRead(BaseModel):
    """The cohort at ``as_of`` and why, with the whole history."""

    customer_id: str
    as_of: datetime
    cohort: str | None
    current: IntervalRead | None
    history: list[IntervalRead]


class FeaturesRead(BaseModel):
    customer_id: str
    as_of: datetime
    features: dict[str, JsonValue]
