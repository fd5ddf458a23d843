"""Dunning's operations API: policies, back-tests and a customer's dunning."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Body, HTTPException, Path, Query, status

from arbor_dunning import policies as policy_store
from arbor_dunning.adapters import history
from arbor_dunning.adapters.past_events import PastEvents, read_past_events
from arbor_dunning.adapters.policy_document import PolicyDocument
from arbor_dunning.adapters.tables import contacts, customers, steps
from arbor_dunning.domain.calendar import Locale
from arbor_dunning.domain.errors import (
    DunningError,
    InvalidPolicyError,
    InvalidSimulationInputError,
    PolicyNotFoundError,
)
from arbor_dunning.domain.simulation import PastInvoice, simulate
from arbor_dunning.entrypoints.schemas import (
    SIMULATION_EXAMPLES,
    ActionRead,
    CustomerDunningRead,
    PolicyCreate,
    PolicyRead,
    SimulatedActionRead,
    SimulationCreate,
    SimulationRead,
)
from arbor_shared.auth import Operator
from arbor_shared.http import Runtime
from arbor_shared.runtime import ServiceRuntime

router = APIRouter(prefix="/v1", tags=["dunning"])

CohortPath = Annotated[str, Path(min_length=1, max_length=64)]
CustomerPath = Annotated[str, Path(min_length=1, max_length=128)]


def _http_error(error: DunningError) -> HTTPException:
    # The one place domain errors become HTTP answers.
    if isinstance(error, PolicyNotFoundError):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(error))
    if isinstance(error, InvalidPolicyError | InvalidSimulationInputError):
        return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error))
    return HTTPException(status.HTTP_400_BAD_REQUEST, str(error))


def _read(row: sa.Row[tuple[object, ...]]) -> PolicyRead:
    return PolicyRead(
        cohort=row.cohort,
        version=row.version,
        policy_id=f"policy-{row.cohort}",
        policy=PolicyDocument.model_validate(row.document, strict=False),
        created_by=row.created_by,
        created_at=row.created_at,
    )


@router.get("/policies")
async def list_policies(runtime: Runtime, _: Operator) -> list[PolicyRead]:
    """The newest policy version of every cohort."""
    async with runtime.sessions() as session:
        return [_read(r) for r in await policy_store.latest_policies(session)]


@router.get("/policies/{cohort}")
async def get_policy(
    runtime: Runtime,
    _: Operator,
    cohort: CohortPath,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> PolicyRead:
    """One cohort's policy: the newest, or the version asked for."""
    async with runtime.sessions() as session:
        try:
            return _read(await policy_store.get_policy(session, cohort, version))
        except DunningError as exc:
            raise _http_error(exc) from exc


@router.post("/policies", status_code=status.HTTP_201_CREATED)
async def create_policy(
    runtime: Runtime, operator: Operator, body: PolicyCreate
) -> PolicyRead:
    """Store a new version of a cohort's policy and hand open invoices over to it."""
    try:
        async with runtime.sessions.begin() as session:
            version = await policy_store.add_policy(
                session,
                runtime.outbox,
                cohort=body.cohort,
                document=body.policy,
                created_by=operator.subject,
                now=runtime.clock.now(),
            )
    except DunningError as exc:
        raise _http_error(exc) from exc
    async with runtime.sessions() as session:
        return _read(await policy_store.get_policy(session, body.cohort, version))


@router.post("/policies:simulate")
async def simulate_policy(
    runtime: Runtime,
    _: Operator,
    body: Annotated[SimulationCreate, Body(openapi_examples=SIMULATION_EXAMPLES)],
) -> SimulationRead:
    """Replay past invoices through a candidate policy; nothing is sent."""
    try:
        policy = body.policy.to_policy(body.cohort, 0)
        past, read = await _past_invoices(runtime, body)
        actions = simulate(policy, past, until=body.until or history.horizon(past))
    except DunningError as exc:
        raise _http_error(exc) from exc
    return SimulationRead(
        invoices=len(past),
        contacted_invoices=len({a.invoice_id for a in actions}),
        actions_total=len(actions),
        actions_by_step=dict(Counter(a.step for a in actions)),
        fees_minor=sum(a.fee_minor or 0 for a in actions),
        actions=[
            SimulatedActionRead.model_validate(a, from_attributes=True)
            for a in actions[: body.limit]
        ],
        truncated=len(actions) > body.limit,
        records_read=read.records_read if read else None,
        reached_end=read.reached_end if read else None,
    )


async def _past_invoices(
    runtime: ServiceRuntime, body: SimulationCreate
) -> tuple[list[PastInvoice], PastEvents | None]:
    locale = Locale(body.time_zone, body.country)
    source = body.past_source
    if source == "csv":
        assert body.csv is not None
        return history.from_csv(body.csv, currency=body.currency, locale=locale), None
    if source == "events":
        assert body.events is not None
        return history.from_events(body.events, default_locale=locale), None
    read = await read_past_events(
        runtime.settings.kafka,
        runtime.topics,
        event_types=history.HISTORY_TYPES,
        max_records=body.max_records,
    )
    return history.past_invoices(read.events, default_locale=locale), read


@router.get("/customers/{customer_id}/dunning")
async def customer_dunning(
    runtime: Runtime, _: Operator, customer_id: CustomerPath
) -> CustomerDunningRead:
    """Sent, upcoming and stopped actions for one customer, each with its reason."""
    async with runtime.sessions() as session:
        customer = (
            await session.execute(
                sa.select(customers).where(customers.c.customer_id == customer_id)
            )
        ).one_or_none()
        if customer is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"no customer {customer_id!r}"
            )
        made = (
            await session.execute(
                sa.select(contacts)
                .where(contacts.c.customer_id == customer_id)
                .order_by(contacts.c.decided_at)
            )
        ).all()
        planned = (
            await session.execute(
                sa.select(steps)
                .where(steps.c.customer_id == customer_id, steps.c.state != "done")
                .order_by(steps.c.due_at)
            )
        ).all()
    return CustomerDunningRead(
        customer_id=customer_id,
        cohort=customer.cohort,
        time_zone=customer.time_zone,
        sent=[_contact(r) for r in made],
        upcoming=[_step(r) for r in planned if r.state in ("planned", "paused")],
        stopped=[_step(r) for r in planned if r.state == "cancelled"],
    )


def _contact(row: sa.Row[tuple[object, ...]]) -> ActionRead:
    reason = dict(row.reason)
    return ActionRead(
        invoice_id=row.invoice_id,
        step=row.step,
        channel=row.channel,
        state=row.state,
        at=row.sent_at or row.decided_at,
        policy_version=row.policy_version,
        variant=reason.get("variant"),
        cohort=reason.get("cohort", ""),
        reason=reason,
    )


def _step(row: sa.Row[tuple[object, ...]]) -> ActionRead:
    return ActionRead(
        invoice_id=row.invoice_id,
        step=row.step,
        channel=row.channel,
        state=row.state,
        at=row.due_at,
        policy_version=row.policy_version,
        variant=row.variant,
        cohort=row.cohort,
        reason={
            "policy_id": f"policy-{row.cohort}",
            "policy_version": row.policy_version,
            "variant": row.variant,
            "cohort": row.cohort,
            "step": row.step,
            "facts": {"offset_days": row.offset_days, "spec": row.spec},
        },
        cancel_reason=row.cancel_reason,
    )
