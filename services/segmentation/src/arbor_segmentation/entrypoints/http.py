"""Segmentation's operations API: definitions, previews, activations, membership."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse

from arbor_segmentation.adapters import definitions, repository
from arbor_segmentation.adapters.definitions import Activation, StoredDefinition
from arbor_segmentation.config import SegmentationSettings
from arbor_segmentation.domain import rules
from arbor_segmentation.domain.errors import (
    ConflictError,
    DefinitionInvalidError,
    NotFoundError,
)
from arbor_segmentation.domain.features import features
from arbor_segmentation.domain.membership import Interval, interval_at
from arbor_segmentation.domain.rules import Definition
from arbor_segmentation.domain.survey import Survey, survey
from arbor_segmentation.entrypoints import views
from arbor_segmentation.entrypoints.schemas import (
    ActivationRead,
    CohortDefinitionCreate,
    CohortDefinitionRead,
    FeaturesRead,
    MembershipRead,
    SurveyRead,
)
from arbor_shared.auth import Operator
from arbor_shared.http import Runtime

router = APIRouter(prefix="/v1", tags=["cohorts"])

_SURVEY_PAGE = 1000
_INVALID: dict[int | str, dict[str, Any]] = {
    422: {"description": "The definition is invalid; each rule and reason"}
}


def _settings(request: Request) -> SegmentationSettings:
    settings: SegmentationSettings = request.app.state.runtime.settings
    return settings


Settings = Annotated[SegmentationSettings, Depends(_settings)]


@router.get("/cohorts")
async def list_definitions(
    runtime: Runtime, _operator: Operator
) -> list[CohortDefinitionRead]:
    """Every definition version, oldest first."""
    async with runtime.sessions() as session:
        stored = await definitions.list_all(session)
    return [views.definition_read(s) for s in stored]


@router.post("/cohorts", status_code=status.HTTP_201_CREATED, responses=_INVALID)
async def create_definition(
    body: CohortDefinitionCreate, runtime: Runtime, operator: Operator
) -> CohortDefinitionRead:
    """Validate and store a new definition version (not yet active)."""
    async with runtime.sessions() as session, session.begin():
        stored = await definitions.add(
            session,
            [(r.name, r.priority, r.expression, r.cohort) for r in body.rules],
            body.default_cohort,
            description=body.description,
            created_by=operator.subject,
            at=runtime.clock.now(),
        )
    return views.definition_read(stored)


@router.post("/cohorts:preview", responses=_INVALID)
async def preview_definition(
    body: CohortDefinitionCreate,
    runtime: Runtime,
    settings: Settings,
    _operator: Operator,
) -> SurveyRead:
    """What a candidate definition would do now: moves, overlaps and gaps."""
    candidate = rules.build(
        0,
        [(r.name, r.priority, r.expression, r.cohort) for r in body.rules],
        body.default_cohort,
    )
    return await _survey(runtime, candidate, settings.preview_sample_size, None)


@router.get("/cohorts/activations/{activation_id}")
async def get_activation(
    activation_id: str, runtime: Runtime, _operator: Operator
) -> ActivationRead:
    """An activation's progress."""
    async with runtime.sessions() as session:
        activation = await definitions.get_activation(session, activation_id)
    if activation is None:
        raise NotFoundError(f"no activation {activation_id!r}")
    return views.activation_read(activation)


@router.get("/cohorts/{version}")
async def get_definition(
    version: int, runtime: Runtime, _operator: Operator
) -> CohortDefinitionRead:
    """One definition version."""
    return views.definition_read(await _stored(runtime, version))


@router.get("/cohorts/{version}/report")
async def report_definition(
    version: int, runtime: Runtime, settings: Settings, _operator: Operator
) -> SurveyRead:
    """Gaps and overlaps of a stored version over today's customers."""
    stored = await _stored(runtime, version)
    return await _survey(
        runtime, stored.definition, settings.preview_sample_size, version
    )


@router.post("/cohorts/{version}/activations", status_code=status.HTTP_202_ACCEPTED)
async def activate_definition(
    version: int, runtime: Runtime, operator: Operator
) -> ActivationRead:
    """Make ``version`` active and re-score every customer in the background."""
    now = runtime.clock.now()
    async with runtime.sessions() as session, session.begin():
        stored = await definitions.get(session, version)
        if stored is None:
            raise NotFoundError(f"no cohort definition version {version}")
        if stored.status == "active":
            raise ConflictError(f"version {version} is already active")
        await definitions.mark_active(session, version, now)
        activation = Activation(
            id=str(uuid.uuid4()),
            definition_version=version,
            status="running",
            total=await repository.count_customers(session),
            processed=0,
            moved=0,
            cursor=None,
            requested_by=operator.subject,
            started_at=now,
            finished_at=None,
        )
        await definitions.add_activation(session, activation)
    return views.activation_read(activation)


@router.get("/customers/{customer_id}/cohorts")
async def get_membership(
    customer_id: str,
    runtime: Runtime,
    _operator: Operator,
    as_of: Annotated[
        datetime | None, Query(description="An instant with offset; now if absent")
    ] = None,
) -> MembershipRead:
    """Which cohort the customer was in at ``as_of``, and why."""
    moment = as_of or runtime.clock.now()
    if moment.tzinfo is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [
                {
                    "loc": ["query", "as_of"],
                    "msg": "must carry a time zone offset",
                    "type": "naive_datetime",
                }
            ],
        )
    async with runtime.sessions() as session:
        rows = await repository.list_history(session, customer_id)
    if not rows:
        raise NotFoundError(f"customer {customer_id!r} has no membership")
    history = [
        Interval(**{k: v for k, v in r._mapping.items() if k != "customer_id"})
        for r in rows
    ]
    current = interval_at(history, moment)
    return MembershipRead(
        customer_id=customer_id,
        as_of=moment,
        cohort=current.to_cohort if current else None,
        current=views.interval_read(current) if current else None,
        history=[views.interval_read(i) for i in history],
    )


@router.get("/customers/{customer_id}/features")
async def get_features(
    customer_id: str, runtime: Runtime, _operator: Operator
) -> FeaturesRead:
    """The customer's behaviour features now."""
    now = runtime.clock.now()
    async with runtime.sessions() as session:
        state = await repository.peek_state(session, customer_id)
    if state is None:
        raise NotFoundError(f"customer {customer_id!r} is unknown")
    return FeaturesRead(
        customer_id=customer_id, as_of=now, features=dict(features(state, now))
    )


async def domain_error(_request: Request, exc: Exception) -> JSONResponse:
    """The one place segmentation's domain errors become HTTP answers."""
    if isinstance(exc, DefinitionInvalidError):
        problems = [
            {"loc": ["body", "rules", p.rule], "msg": p.reason, "type": "invalid_rule"}
            for p in exc.problems
        ]
        return JSONResponse({"detail": problems}, status_code=422)
    code = 400
    if isinstance(exc, NotFoundError):
        code = 404
    elif isinstance(exc, ConflictError):
        code = 409
    return JSONResponse({"detail": str(exc)}, status_code=code)


async def _stored(runtime: Runtime, version: int) -> StoredDefinition:
    async with runtime.sessions() as session:
        stored = await definitions.get(session, version)
    if stored is None:
        raise NotFoundError(f"no cohort definition version {version}")
    return stored


async def _survey(
    runtime: Runtime, definition: Definition, sample_size: int, version: int | None
) -> SurveyRead:
    # TODO: a survey of a very large book runs inside the request — move it to a
    # background job with progress, like activations, once books pass ~1M customers.
    now = runtime.clock.now()
    result = Survey()
    cursor: str | None = None
    while True:
        async with runtime.sessions() as session:
            page = await repository.states_with_cohorts(session, cursor, _SURVEY_PAGE)
        rows = [(s.customer_id, features(s, now), cohort) for s, cohort in page]
        survey(definition, rows, sample_size=sample_size, into=result)
        if len(page) < _SURVEY_PAGE:
            break
        cursor = page[-1][0].customer_id
    return views.survey_read(result, definition, version, now)
