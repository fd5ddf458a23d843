"""Customer routes that act: disputes, promises, payment plans, billing details."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Path, Request, status

from arbor_portal.adapters import readmodel
from arbor_portal.adapters.tables import disputes, payment_plans, promises
from arbor_portal.domain.errors import NotFoundError
from arbor_portal.entrypoints.deps import (
    Account,
    Acting,
    CustomerAccount,
    IdempotencyKey,
)
from arbor_portal.entrypoints.errors import (
    CONFLICT,
    ERROR_RESPONSES,
    NOT_FOUND,
    TOO_LARGE,
)
from arbor_portal.entrypoints.schemas import (
    BillingDetailsRead,
    BillingDetailsUpdate,
    DisputeCreate,
    DisputeRead,
    PaymentPlanCreate,
    PaymentPlanRead,
    PromiseCreate,
    PromiseRead,
)
from arbor_portal.handlers import actions, idempotency, profile
from arbor_portal.handlers.idempotency import fingerprint

router = APIRouter(prefix="/v1", tags=["actions"], responses=ERROR_RESPONSES)

InvoiceId = Annotated[str, Path(max_length=128, examples=["inv-2024-0001"])]
DisputeId = Annotated[str, Path(max_length=128, examples=["dsp_5f0c"])]
PromiseId = Annotated[str, Path(max_length=128, examples=["ptp_77ab"])]
RequestId = Annotated[str, Path(max_length=128, examples=["ppr_19cd"])]
CREATED = status.HTTP_201_CREATED
ACTION_ERRORS = NOT_FOUND | CONFLICT | TOO_LARGE


@router.post(
    "/invoices/{invoice_id}/disputes", status_code=CREATED, responses=ACTION_ERRORS
)
async def open_dispute(
    invoice_id: InvoiceId,
    dispute: DisputeCreate,
    actor: Acting,
    request: Request,
    key: IdempotencyKey = None,
) -> DisputeRead:
    """Dispute an amount up to the open balance; reminders pause while it is open."""

    async def act() -> DisputeRead:
        row = await actions.open_dispute(
            actor,
            invoice_id=invoice_id,
            amount_minor=dispute.amount_minor,
            reason=dispute.reason,
        )
        return DisputeRead(**row)

    same = fingerprint("POST", request.url.path, dispute)
    return await idempotency.once(actor, key, same, DisputeRead, act)


@router.post(
    "/invoices/{invoice_id}/promises", status_code=CREATED, responses=ACTION_ERRORS
)
async def make_promise(
    invoice_id: InvoiceId,
    promise: PromiseCreate,
    actor: Acting,
    request: Request,
    key: IdempotencyKey = None,
) -> PromiseRead:
    """Promise to pay an amount by a future date; reminders wait for it."""

    async def act() -> PromiseRead:
        row = await actions.make_promise(
            actor,
            invoice_id=invoice_id,
            amount_minor=promise.amount_minor,
            promised_date=promise.promised_date,
            horizon_days=request.app.state.promise_horizon_days,
        )
        return PromiseRead(**row)

    same = fingerprint("POST", request.url.path, promise)
    return await idempotency.once(actor, key, same, PromiseRead, act)


@router.post(
    "/invoices/{invoice_id}/payment-plans",
    status_code=CREATED,
    responses=ACTION_ERRORS,
)
async def request_payment_plan(
    invoice_id: InvoiceId,
    plan: PaymentPlanCreate,
    actor: Acting,
    request: Request,
    key: IdempotencyKey = None,
) -> PaymentPlanRead:
    """Ask the finance team to split the balance into instalments."""

    async def act() -> PaymentPlanRead:
        row = await actions.request_payment_plan(
            actor, invoice_id=invoice_id, installments=plan.installments, note=plan.note
        )
        return PaymentPlanRead(**row)

    same = fingerprint("POST", request.url.path, plan)
    return await idempotency.once(actor, key, same, PaymentPlanRead, act)


@router.get("/disputes/{dispute_id}", responses=NOT_FOUND)
async def get_dispute(dispute_id: DisputeId, me: CustomerAccount) -> DisputeRead:
    """One of your disputes and its outcome."""
    return DisputeRead(**await _case(me, disputes, dispute_id))


@router.get("/promises/{promise_id}", responses=NOT_FOUND)
async def get_promise(promise_id: PromiseId, me: CustomerAccount) -> PromiseRead:
    """One of your promises to pay: open, kept or broken."""
    return PromiseRead(**await _case(me, promises, promise_id))


@router.get("/payment-plans/{request_id}", responses=NOT_FOUND)
async def get_payment_plan(
    request_id: RequestId, me: CustomerAccount
) -> PaymentPlanRead:
    """One of your payment-plan requests."""
    return PaymentPlanRead(**await _case(me, payment_plans, request_id))


@router.get("/billing-details")
async def get_billing_details(me: CustomerAccount) -> BillingDetailsRead:
    """How we reach and bill you."""
    row = await readmodel.get_customer(me.db, me.customer_id)
    return _details(dict(row) if row else {})


@router.patch("/billing-details", responses=TOO_LARGE)
async def change_billing_details(
    changes: BillingDetailsUpdate, actor: Acting
) -> BillingDetailsRead:
    """Change contact, address, channel, language, time zone or payment token.

    A new e-mail address is announced to both the old and the new address.
    """
    values = changes.model_dump(exclude_unset=True)
    return _details(await profile.change_billing_details(actor, values))


async def _case(me: Account, table: sa.Table, case_id: str) -> dict[str, Any]:
    row = await readmodel.get_case(me.db, table, me.customer_id, case_id)
    if row is None:
        raise NotFoundError(table.name.rstrip("s").replace("_", " "), case_id)
    return dict(row)


def _details(row: dict[str, Any]) -> BillingDetailsRead:
    return BillingDetailsRead(
        **{name: row.get(name) for name in BillingDetailsRead.model_fields}
    )
