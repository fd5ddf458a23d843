"""Read models of the operations API, built from domain and stored objects."""

from __future__ import annotations

from datetime import datetime

from arbor_segmentation.adapters.definitions import Activation, StoredDefinition
from arbor_segmentation.domain.membership import Interval
from arbor_segmentation.domain.rules import Definition
from arbor_segmentation.domain.survey import Survey
from arbor_segmentation.entrypoints.schemas import (
    ActivationRead,
    CohortDefinitionRead,
    FlowRead,
    GapRead,
    IntervalRead,
    OverlapRead,
    RuleRead,
    SurveyRead,
)


def survey_read(
    result: Survey, definition: Definition, version: int | None, now: datetime
) -> SurveyRead:
    return SurveyRead(
        definition_version=version,
        as_of=now,
        customers=result.customers,
        moving=result.moving,
        flows=[
            FlowRead(
                from_cohort=f.from_cohort,
                to_cohort=f.to_cohort,
                count=f.count,
                samples=f.samples,
            )
            for f in sorted(result.flows.values(), key=lambda f: -f.count)
        ],
        overlaps=[
            OverlapRead(
                rules=list(o.rules), winner=o.winner, count=o.count, samples=o.samples
            )
            for o in sorted(result.overlaps.values(), key=lambda o: -o.count)
        ],
        gaps=GapRead(
            default_cohort=definition.default_cohort,
            count=result.default_only,
            samples=result.default_samples,
        ),
    )


def definition_read(stored: StoredDefinition) -> CohortDefinitionRead:
    definition = stored.definition
    return CohortDefinitionRead(
        version=definition.version,
        status=stored.status,
        rules=[
            RuleRead(
                name=r.name,
                priority=r.priority,
                expression=r.expression,
                cohort=r.cohort,
                features=list(r.features_used),
            )
            for r in definition.rules
        ],
        default_cohort=definition.default_cohort,
        description=stored.description,
        created_by=stored.created_by,
        created_at=stored.created_at,
        activated_at=stored.activated_at,
    )


def activation_read(activation: Activation) -> ActivationRead:
    total = activation.total
    progress = (
        1.0
        if activation.status == "done"
        else (min(activation.processed / total, 1.0) if total else 0.0)
    )
    return ActivationRead(
        id=activation.id,
        definition_version=activation.definition_version,
        status=activation.status,
        total=total,
        processed=activation.processed,
        moved=activation.moved,
        progress=progress,
        started_at=activation.started_at,
        finished_at=activation.finished_at,
    )


def interval_read(interval: Interval) -> IntervalRead:
    return IntervalRead(
        version=interval.version,
        from_cohort=interval.from_cohort,
        to_cohort=interval.to_cohort,
        definition_version=interval.definition_version,
        rule=interval.rule,
        features=dict(interval.features),
        valid_from=interval.valid_from,
        valid_to=interval.valid_to,
    )
